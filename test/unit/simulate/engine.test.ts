import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { simulate, type WarmPoolPlan } from '../../../src/simulate/engine.ts';
import { modelSchema } from '../../../src/simulate/model.ts';
import type { ClassResult, SimulationResult } from '../../../src/simulate/result.ts';
import type { TraceJob } from '../../../src/trace/format.ts';

// The simulator replays jobs through Gantry's own classifier, ledger, planner and cost meter. With
// fixed delays the timings are exact, so each test states what GitHub and Gantry would do.

const T0 = Date.parse('2026-01-05T10:00:00Z');
const SMALL = ['self-hosted', 'linux'];
const BIG = ['self-hosted', 'linux', 'big'];

/** Fixed delays: a cold job waits webhook 1 + API 0.1 + start-up 30 + registration 2 + hand-off 1 = 34.1 s. */
const MODEL = {
  startup: 30,
  registration: 2,
  assignment: 1,
  webhook: 1,
  apiLatency: 0.1,
  exit: 1,
  deletion: 1,
};

let nextJob = 1;
function job(atSeconds: number, options: Partial<TraceJob> & { durationSeconds?: number } = {}): TraceJob {
  const id = nextJob++;
  const { durationSeconds, ...rest } = options;
  return {
    job: String(id),
    run: String(id),
    attempt: 1,
    repo: 'acme/app',
    labels: SMALL,
    created: T0 + atSeconds * 1000,
    durationMs: (durationSeconds ?? 60) * 1000,
    fork: false,
    visibility: 'private',
    event: 'push',
    branch: 'main',
    ...rest,
  };
}

function klass(labels: string[], extra: Record<string, unknown> = {}) {
  return {
    namespace: 'ci',
    match: { github: { labels } },
    maxRunners: 10,
    idleTimeout: '2m',
    resources: { requests: { cpu: '1', memory: '1Gi' } },
    cost: { perVcpuHour: 0.04, perGibHour: 0.01 },
    ...extra,
  };
}

function run(
  classes: Record<string, unknown>,
  jobs: TraceJob[],
  model: Record<string, unknown> = {},
  warmPools?: Map<string, WarmPoolPlan>,
  config: Record<string, unknown> = {},
): SimulationResult {
  return simulate({
    config: parseConfig({ ...config, classes }),
    trace: { jobs },
    model: modelSchema.parse({ ...MODEL, ...model }),
    ...(warmPools ? { warmPools } : {}),
  });
}

const of = (result: SimulationResult, name: string) =>
  result.classes.find((c) => c.name === name) as ClassResult;

describe('gantry simulate: the replay', () => {
  it('makes a job without a runner wait for a whole cold start: webhook, create, start-up, registration, hand-off', () => {
    const result = run({ small: klass(SMALL) }, [job(0)]);
    const small = of(result, 'small');
    expect(small.jobs).toBe(1);
    expect(small.started).toBe(1);
    // GitHub reports whole seconds: created at 0, started at 34.1 s.
    expect(small.queueSeconds?.p50).toBe(34);
    expect(small.runnersCreated).toBe(1);
    expect(small.peakRunners).toBe(1);
  });

  it('hands a job to a warm runner at once', () => {
    const result = run({ small: klass(SMALL, { minIdle: 1 }) }, [job(600)]);
    expect(of(result, 'small').queueSeconds?.p50).toBe(1);
  });

  it('lets GitHub give a job to ANY idle runner whose labels and group fit, not the one Gantry planned', () => {
    // A [self-hosted, linux] job is the small class's; the big class's warm runners have those labels too.
    const classes = { small: klass(SMALL), big: klass(BIG, { minIdle: 2 }) };
    const result = run(classes, [job(600)]);
    expect(of(result, 'small').servedByOtherClass).toBe(1);
    expect(of(result, 'big').tookOtherClassJobs).toBe(1);
    expect(of(result, 'small').queueSeconds?.p50).toBe(1);
    // Gantry still planned (and started) a runner for it, which then idles out.
    expect(of(result, 'small').runnersCreated).toBe(1);
    expect(of(result, 'small').cost.idle).toBeGreaterThan(0);

    // A runner group that does not admit the repository keeps its runners out of it.
    const grouped = run(
      { small: klass(SMALL), big: klass(BIG, { minIdle: 2, runnerGroup: 'big' }) },
      [job(600)],
      { runnerGroups: { big: { visibility: 'selected', repositories: ['acme/other'] } } },
    );
    expect(of(grouped, 'small').servedByOtherClass).toBe(0);
    expect(of(grouped, 'small').queueSeconds?.p50).toBe(34);
  });

  it('counts the jobs that waited while the class was at maxRunners', () => {
    const jobs = Array.from({ length: 6 }, () => job(0, { run: 'matrix', durationSeconds: 100 }));
    const small = of(run({ small: klass(SMALL, { maxRunners: 2 }) }, jobs), 'small');
    expect(small.peakRunners).toBe(2);
    expect(small.waitedOnMaxRunners).toBe(4);
    expect(small.waitedOnQuota).toBe(0);
    // Three rounds of two: the last pair waits for two jobs of 100 s and their runners' replacements.
    expect(small.queueSeconds?.max).toBeGreaterThan(200);
    expect(small.started).toBe(6);
  });

  it('counts the jobs that waited for room in the namespace quota', () => {
    const jobs = Array.from({ length: 5 }, () => job(0, { run: 'matrix', durationSeconds: 100 }));
    const small = of(run({ small: klass(SMALL) }, jobs, { quotas: { ci: { pods: 3 } } }), 'small');
    expect(small.waitedOnQuota).toBe(2);
    expect(small.waitedOnMaxRunners).toBe(0);
    // The last two got runners only once pods of the first three had finished (and left the quota).
    expect(small.queueSeconds?.max).toBeGreaterThan(100);
    expect(small.started).toBe(5);
  });

  it('accounts cost as Gantry does: busy for the job, idle for the rest of the runner’s life', () => {
    // $3.60 a runner-hour: a tenth of a cent a second.
    const cost = { perVcpuHour: 0, perGibHour: 0, perRunnerHour: 3.6 };
    const small = of(run({ small: klass(SMALL, { cost }) }, [job(0, { durationSeconds: 100 })]), 'small');
    // Running from 31.1 s, job 34 s → 134 s (whole seconds), pod ended at 135.1 s.
    expect(small.cost.busy).toBeCloseTo(0.1, 6);
    expect(small.cost.idle).toBeCloseTo(0.004, 6);
  });

  it('stops a trusted runner that an untrusted job landed on, and says so', () => {
    const classes = {
      build: klass(SMALL, { minIdle: 1 }),
      forks: klass(SMALL, {
        untrusted: true,
        namespace: 'sandbox',
        runnerGroup: 'sandbox',
        runtimeClassName: 'gvisor',
      }),
    };
    // A pull request from a fork of a private repository: the trusted group admits the repository.
    const result = run(classes, [job(600, { fork: true, event: 'pull_request', durationSeconds: 300 })]);
    expect(of(result, 'forks').jobs).toBe(1);
    expect(of(result, 'forks').servedByOtherClass).toBe(1);
    expect(of(result, 'build').trustViolations).toBe(1);
  });

  it('leaves alone what no class takes, and a job cancelled while it waited', () => {
    const result = run({ small: klass(SMALL) }, [
      job(0, { labels: ['ubuntu-latest'] }),
      job(0, { fork: true, event: 'pull_request' }),
      { ...job(10), durationMs: undefined, cancelledAt: T0 + 15_000 },
    ]);
    expect(result.notForGantry).toBe(1);
    expect(result.unclassified).toEqual({ 'untrusted-no-class': 1 });
    const small = of(result, 'small');
    expect(small.jobs).toBe(1);
    expect(small.started).toBe(0);
  });

  it('keeps each hour’s warm-pool target, and the pool is warm when the hour begins', () => {
    const targets = Array.from({ length: 168 }, () => 0);
    // Monday 11:00 UTC is hour 11 of the week.
    targets[11] = 3;
    const warm = new Map([['small', { targets, leadMs: 60_000 }]]);
    const classes = { small: klass(SMALL, { warmPool: { queueTimeObjective: { p95: '30s' } } }) };
    // Three jobs at 11:00:10, one at 10:30 (no pool then).
    const jobs = [job(1800), job(3610, { run: 'r' }), job(3610, { run: 'r' }), job(3610, { run: 'r' })];
    const result = run(classes, jobs, {}, warm);
    const small = of(result, 'small');
    const series = result.series.classes.small;
    expect(series?.warmTarget?.some((t) => t === 3)).toBe(true);
    // The 10:30 job waited cold; the three at 11:00:10 found warm runners.
    expect(small.queueSeconds?.max).toBe(34);
    expect(small.queueSeconds?.p50).toBe(1);
    expect(small.cost.idle).toBeGreaterThan(0);
  });

  it('gives the same result for the same inputs', () => {
    const jobs = Array.from({ length: 40 }, (_, i) => job(i * 7, { durationSeconds: 30 + (i % 5) * 20 }));
    const model = { startup: { lognormal: { median: '20s', p95: '60s' } }, seed: 42 };
    const a = run({ small: klass(SMALL, { maxRunners: 4 }) }, jobs, model);
    const b = run({ small: klass(SMALL, { maxRunners: 4 }) }, jobs, model);
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
    const c = run({ small: klass(SMALL, { maxRunners: 4 }) }, jobs, { ...model, seed: 43 });
    expect(of(c, 'small').queueSeconds).not.toEqual(of(a, 'small').queueSeconds);
  });
});
