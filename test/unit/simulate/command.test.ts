import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatTraceHeader, formatTraceJob } from '../../../src/trace/format.ts';
import { syntheticTrace } from '../../../src/trace/synthetic.ts';

const run = promisify(execFile);
const main = new URL('../../../src/main.ts', import.meta.url).pathname;

async function gantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const CLASSES = `
  lint:
    namespace: ci
    match: { github: { labels: [self-hosted, linux, lint] } }
    maxRunners: 40
    minIdle: 2
    cost: { perVcpuHour: 0.04, perGibHour: 0.005 }
  build:
    namespace: ci
    match: { github: { labels: [self-hosted, linux, build] } }
    maxRunners: 4
    cost: { perVcpuHour: 0.04, perGibHour: 0.005 }
`;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-simulate-'));
  const jobs = syntheticTrace({ jobsPerHour: 60, days: 0.25, start: Date.UTC(2026, 0, 5, 9) });
  await writeFile(
    join(dir, 'trace.jsonl'),
    `${[formatTraceHeader({ source: 'synthetic' }), ...jobs.map(formatTraceJob)].join('\n')}\n`,
  );
  await writeFile(join(dir, 'gantry.yaml'), `classes:${CLASSES}`);
  // Helm values: Gantry's config under config:, with a warm pool from an objective for lint.
  await writeFile(
    join(dir, 'values.yaml'),
    `replicaCount: 1\nconfig:\n  classes:${CLASSES.replaceAll('\n  ', '\n    ').replace('minIdle: 2', 'warmPool: { queueTimeObjective: { p95: 30s } }')}`,
  );
});

// Each test starts Node on the whole program.
describe('gantry simulate, the command', { timeout: 90_000 }, () => {
  it('prints per class figures and writes the HTML and JSON reports', async () => {
    const html = join(dir, 'out', 'report.html');
    const json = join(dir, 'out', 'report.json');
    const result = await gantry(
      'simulate',
      '--config',
      join(dir, 'gantry.yaml'),
      '--trace',
      join(dir, 'trace.jsonl'),
      '--startup',
      'lognormal:40s,75s',
      '--html',
      html,
      '--json',
      json,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^gantry\.yaml: [\d,]+ jobs, /);
    expect(result.stdout).toMatch(/\nbuild\s+[\d,]+\s/);
    expect(result.stdout).toMatch(/\nlint\s+[\d,]+\s/);
    const report = JSON.parse(await readFile(json, 'utf8')) as {
      runs: {
        label: string;
        result: { classes: { name: string; waitedOnMaxRunners: number; peakRunners: number }[] };
      }[];
    };
    expect(report.runs).toHaveLength(1);
    const build = report.runs[0]?.result.classes.find((c) => c.name === 'build');
    // Four runners for a few build runs at once: some wait.
    expect(build?.peakRunners).toBeLessThanOrEqual(4);
    expect((await readFile(html, 'utf8')).startsWith('<!doctype html>')).toBe(true);
  });

  it('shows Helm values with a warm-pool objective beside the config, with the pool it recommends', async () => {
    const result = await gantry(
      'simulate',
      '--config',
      join(dir, 'gantry.yaml'),
      '--compare',
      join(dir, 'values.yaml'),
      '--trace',
      join(dir, 'trace.jsonl'),
      '--startup',
      '45s',
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/CLASS\s+FIGURE\s+gantry\.yaml\s+values\.yaml\s+CHANGE/);
    expect(result.stdout).toMatch(/lint\s+queue p50/);
    expect(result.stdout).toContain('values.yaml: Warm pool for lint (objective p95 <= 30 s)');
    expect(result.stdout).toMatch(/\nMon\s+(\d+\s+){23}\d+\n/);
  });

  it('refuses bad input with one line naming what is wrong, and exit code 2', async () => {
    const badTrace = join(dir, 'bad.jsonl');
    await writeFile(
      badTrace,
      `${formatTraceJob(syntheticTrace({ jobsPerHour: 10, days: 0.1 })[0] as never)}\n{"job":"x","run":"y","repo":"a/b","labels":["l"],"created":"soon","duration":1}\n`,
    );
    const bad = await gantry('simulate', '--config', join(dir, 'gantry.yaml'), '--trace', badTrace);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      `gantry: trace ${badTrace} line 2: field created: expected an RFC 3339 time such as 2026-01-05T09:00:00Z\n`,
    );
    const flag = await gantry('simulate', '--config', 'a', '--trace', 'b', '--speed', 'max');
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim().split('\n')).toHaveLength(1);
    expect(flag.stderr).toMatch(
      /^gantry: gantry simulate: Unknown option '--speed'.* \(see gantry --help\)\n$/,
    );
    const badConfig = join(dir, 'bad.yaml');
    await writeFile(
      badConfig,
      'classes:\n  lint:\n    match: { github: { labels: [x] } }\n    maxRunners: -1\n',
    );
    const config = await gantry('simulate', '--config', badConfig, '--trace', join(dir, 'trace.jsonl'));
    expect(config.code).toBe(2);
    expect(config.stderr.trim().split('\n')).toHaveLength(1);
    expect(config.stderr).toContain('classes.lint.maxRunners');
    const startup = await gantry(
      'simulate',
      '--config',
      join(dir, 'gantry.yaml'),
      '--trace',
      join(dir, 'trace.jsonl'),
      '--startup',
      'fast',
    );
    expect(startup.code).toBe(2);
    expect(startup.stderr).toContain('option --startup: expected seconds (40s), lognormal:MEDIAN,P95');
  });
});
