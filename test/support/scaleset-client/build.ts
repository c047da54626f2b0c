import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir } from '../control-plane/binaries.ts';

const run = promisify(execFile);
const sourceDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(sourceDir, '../../..');
const SOURCES = ['main.go', 'go.mod', 'go.sum'];

/** The pinned github.com/actions/scaleset version (SCALESET_VERSION in hack/control-plane/versions.env). */
export async function scalesetVersion(): Promise<string> {
  const env = await readFile(join(repoRoot, 'hack/control-plane/versions.env'), 'utf8');
  const version = /^SCALESET_VERSION=(\S+)$/m.exec(env)?.[1];
  if (!version) throw new Error('hack/control-plane/versions.env has no SCALESET_VERSION');
  return version;
}

/** The go command (PATH, then /usr/local/go), or null when Go is not installed. */
export function findGo(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/go/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'go');
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

export interface ScalesetClientBuild {
  binary: string;
  version: string;
  /** False when the cache already held a build of these sources. */
  built: boolean;
  buildMs: number;
}

/**
 * The contract client, built once per library version and source into
 * ~/.cache/gantry/scaleset-client-<version>/ (never into the repository). The build happens in a
 * scratch copy of the sources, so `-mod=mod` cannot touch the committed go.mod or go.sum; a stamp of
 * the sources' hash makes an edited main.go rebuild.
 */
export async function buildScalesetClient(go: string): Promise<ScalesetClientBuild> {
  const version = await scalesetVersion();
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(await readFile(join(sourceDir, file)));
  const goMod = await readFile(join(sourceDir, 'go.mod'), 'utf8');
  if (!goMod.includes(`github.com/actions/scaleset ${version}`)) {
    throw new Error(
      `test/support/scaleset-client/go.mod does not require github.com/actions/scaleset ${version}`,
    );
  }
  const stamp = hash.digest('hex');
  const dest = join(cacheDir(), `scaleset-client-${version}`);
  const binary = join(dest, 'scaleset-client');
  const stampFile = join(dest, '.source-sha256');
  if (existsSync(binary) && (await readFile(stampFile, 'utf8').catch(() => '')) === stamp) {
    return { binary, version, built: false, buildMs: 0 };
  }

  const started = Date.now();
  const work = await mkdtemp(join(tmpdir(), 'gantry-scaleset-client-'));
  try {
    for (const file of SOURCES) await copyFile(join(sourceDir, file), join(work, file));
    const output = join(work, 'scaleset-client');
    await run(go, ['build', '-trimpath', '-o', output, '.'], {
      cwd: work,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`building the scaleset contract client failed: ${err.stderr || err.message}`);
    });
    // Rename into place so concurrent test files never run a half-written binary.
    await mkdir(dest, { recursive: true });
    const staged = `${binary}.${process.pid}`;
    await copyFile(output, staged);
    await rename(staged, binary);
    await writeFile(stampFile, stamp);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { binary, version, built: true, buildMs: Date.now() - started };
}
