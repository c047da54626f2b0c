import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/http/server.ts';
import { spawnGantry } from '../support/gantry-process.ts';

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

// Each test starts Node on the whole program (about 1.5 s idle, far more on a busy machine).
describe('the gantry command', { timeout: 30_000 }, () => {
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

  it('prints a running Gantry’s status as a table, and fails clearly when there is none', async () => {
    const server = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => true,
      status: () => ({
        generatedAt: '2026-01-15T12:00:00.000Z',
        classes: [
          {
            name: 'integration',
            queued: 12,
            starting: 3,
            idle: 0,
            busy: 9,
            terminating: 1,
            admitted: 0,
            maxRunners: 20,
            queueP95Seconds: 95,
            costTodayDollars: 4.5,
          },
        ],
        events: [{ at: '2026-01-15T11:59:58.000Z', class: 'integration', message: 'runner removed: r1' }],
      }),
    });
    const url = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const result = await gantry('status', '--url', url);
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines[2]).toMatch(
        /^CLASS\s+QUEUED\s+STARTING\s+IDLE\s+BUSY\s+ADMITTED\s+MAX\s+QUEUE P95\s+COST TODAY$/,
      );
      expect(lines[3]?.split(/\s{2,}/)).toEqual([
        'integration',
        '12',
        '3',
        '0',
        '9',
        '0',
        '20',
        '1.6 min',
        '$4.50',
      ]);
      expect(result.stdout).toContain('11:59:58  integration: runner removed: r1');
    } finally {
      await server.close();
    }
    const down = await gantry('status', '--url', url);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^gantry: http:\/\/127\.0\.0\.1:\d+\/api\/status: /);
    expect((await gantry('status', '--frobnicate')).code).toBe(2);
  }, 30_000);
});

describe('a running gantry and its config file', () => {
  it('keeps running on an invalid edit and restarts (exits 0) on a valid change', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-reload-'));
    const path = join(dir, 'gantry.yaml');
    const valid = 'http:\n  port: 0\n  address: 127.0.0.1\n';
    await writeFile(path, valid);
    let output = '';
    const { child, exited } = spawnGantry({
      configPath: path,
      stderr: 'ignore',
      onLine: (line) => {
        output += `${line}\n`;
      },
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    let code: number | null | undefined;
    void exited.then((c) => {
      code = c;
    });
    const until = async (condition: () => boolean) => {
      while (!condition()) {
        if (code !== undefined) throw new Error(`gantry exited early (${code}):\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      await until(() => output.includes('gantry started'));
      await writeFile(path, 'http:\n  port: 70000\n');
      await until(() => output.includes('configuration change ignored'));
      const refused = output.split('\n').find((line) => line.includes('configuration change ignored'));
      expect(JSON.parse(refused ?? '{}')).toMatchObject({ level: 50 });
      expect(refused).toContain('http.port');
      expect(code).toBeUndefined();

      await writeFile(path, `${valid}log:\n  level: warn\n`);
      expect(await exited).toBe(0);
      expect(output).toContain('configuration changed; restarting to apply it');
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  }, 30_000);
});
