import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where builds and runs are cached, outside the repository. */
export function cacheDir(): string {
  return (
    process.env.GANTRY_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'gantry')
  );
}

/**
 * Folder holding the control-plane binaries: GANTRY_BIN_DIR when set (checked, not built), otherwise
 * the cached build of the pinned versions, built now if missing (progress goes to stderr).
 */
export function controlPlaneBinDir(): string {
  const out = execFileSync('bash', [join(repoRoot, 'hack/control-plane/build.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  const dir = out.trim().split('\n').pop();
  if (!dir) throw new Error('hack/control-plane/build.sh printed no binary folder');
  return dir;
}
