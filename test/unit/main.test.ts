import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = new URL('../../src/main.ts', import.meta.url).pathname;

/** Runs the gantry command and returns its exit code and output. */
async function gantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the gantry command', () => {
  it('prints usage and its version', async () => {
    const help = await gantry('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: gantry [--config FILE]');
    const version = await gantry('--version');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^gantry \d+\.\d+\.\d+\n$/);
  });

  it('refuses an unknown flag with one line and exit code 2', async () => {
    const result = await gantry('--frobnicate');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("gantry: Unknown option '--frobnicate' (see gantry --help)\n");
  });

  it('refuses an unreadable or invalid config file with one line and exit code 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-main-'));
    const missing = await gantry('--config', join(dir, 'absent.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `gantry: cannot read config file ${join(dir, 'absent.yaml')}: no such file\n`,
    );

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'http:\n  port: 70000\n');
    const invalid = await gantry('--config', bad);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr.trim().split('\n')).toHaveLength(1);
    expect(invalid.stderr).toContain('http.port');
  });
});
