import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../../../../src/model/job.ts';
import { githubConfigSchema } from '../../../../src/sources/github/config.ts';
import { GithubApiError } from '../../../../src/sources/github/errors.ts';
import { createJobApplier } from '../../../../src/sources/github/job-events.ts';
import { JobTracker } from '../../../../src/sources/github/job-tracker.ts';
import { createGithubMetrics } from '../../../../src/sources/github/metrics.ts';
import { createRunOrigins, type RunFacts } from '../../../../src/sources/github/run-origin.ts';
import type { JobPhase, WorkflowJobFields } from '../../../../src/sources/github/workflow-job.ts';
import { ManualClock } from '../../../support/fake-github/index.ts';
import { capturingLogger } from '../../../support/github-harness.ts';

const REPO = 'acme/app';
const HELD_MSG = 'cannot look up workflow run; holding the job until its origin is known';

/** The applier over a run look-up that fails while `failures` lasts, driven by a manual clock. */
function setup(
  options: {
    failures?: number;
    fork?: boolean;
    maxHeld?: number;
    fetchRun?: (repo: string, runId: number) => Promise<RunFacts>;
    isServable?: (labels: readonly string[]) => boolean;
  } = {},
) {
  const clock = new ManualClock();
  const registry = new Registry();
  const metrics = createGithubMetrics(registry);
  const { logs, logger } = capturingLogger();
  const state = { failures: options.failures ?? 0, lookups: [] as number[] };
  const fetchRun = async (repo: string, runId: number): Promise<RunFacts> => {
    state.lookups.push(runId);
    if (state.failures > 0) {
      state.failures--;
      throw new Error('GET /repos/{owner}/{repo}/actions/runs/{run_id}: 502 Bad Gateway');
    }
    return {
      id: runId,
      event: options.fork ? 'pull_request' : 'push',
      repository: { full_name: repo },
      head_repository: { full_name: options.fork ? 'mallory/app' : repo },
    };
  };
  const tracker = new JobTracker();
  const events: JobEvent[] = [];
  const applier = createJobApplier({
    tracker,
    origins: createRunOrigins({
      fetchRun: options.fetchRun ?? fetchRun,
      policy: githubConfigSchema.parse({}).trust,
      cacheSize: 100,
      logger,
    }),
    emit: (event) => events.push(event),
    clock,
    logger,
    metrics,
    ...(options.maxHeld !== undefined ? { maxHeld: options.maxHeld } : {}),
    ...(options.isServable ? { isServable: options.isServable } : {}),
  });
  const job = (id: number, runId: number, status = 'queued'): WorkflowJobFields => ({
    id,
    run_id: runId,
    name: `build (${id})`,
    status,
    labels: ['self-hosted', 'linux'],
    created_at: '2026-01-05T08:59:00Z',
    started_at: '2026-01-05T08:59:30Z',
    completed_at: status === 'completed' ? '2026-01-05T09:00:00Z' : null,
    conclusion: status === 'completed' ? 'success' : null,
    runner_name: status === 'queued' ? null : 'r1',
  });
  const apply = (id: number, runId: number, phase: JobPhase = 'queued') =>
    applier.apply(job(id, runId, phase === 'started' ? 'in_progress' : phase), REPO, phase, 'webhook');
  /** Moves time and lets the retries it wakes run to their end (the look-up here settles in microtasks). */
  const advance = async (ms: number) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  const gauge = async () =>
    (await registry.getSingleMetric('gantry_github_jobs_awaiting_origin')?.get())?.values[0]?.value;
  const heldLogs = () => logs.filter((l) => l.msg === HELD_MSG);
  const ignored = async () =>
    (await registry.getSingleMetric('gantry_github_jobs_ignored_total')?.get())?.values.find(
      (v) => v.labels.reason === 'no-class',
    )?.value ?? 0;
  return { clock, state, tracker, events, applier, apply, advance, gauge, logs, heldLogs, ignored };
}

describe('jobs whose workflow run cannot be looked up', () => {
  it('are held, then emitted once with the verdict when a later look-up succeeds', async () => {
    const t = setup({ failures: 2 });
    expect(await t.apply(1, 10)).toBeNull();
    expect(t.events).toEqual([]);
    expect(t.tracker.get('github:1')).toBeUndefined();
    expect(await t.gauge()).toBe(1);
    expect(t.heldLogs()).toMatchObject([{ level: 40, repo: REPO, run: 10, job: 'github:1' }]);
    expect(t.heldLogs()[0]?.err).toMatch(/502/);

    await t.advance(999);
    expect(t.state.lookups).toHaveLength(1);
    await t.advance(1);
    // Second failure: the wait doubles.
    expect(t.state.lookups).toHaveLength(2);
    expect(t.events).toEqual([]);
    await t.advance(1_999);
    expect(t.events).toEqual([]);
    await t.advance(1);
    expect(t.state.lookups).toHaveLength(3);
    expect(t.events).toMatchObject([
      { kind: 'queued', via: 'webhook', job: { key: 'github:1', untrusted: false } },
    ]);
    expect(t.clock.sleeps).toEqual([1_000, 2_000]);
    expect(t.clock.pendingSleeps).toEqual([]);
    expect(await t.gauge()).toBe(0);
    expect(t.tracker.get('github:1')?.phase).toBe('queued');
    // Logged once for the job, not per retry.
    expect(t.heldLogs()).toHaveLength(1);

    // Settled for good: a redelivery is not news.
    expect(await t.apply(1, 10)).toBeNull();
    expect(t.events).toHaveLength(1);
  });

  it('emit no late queued event once the job was seen completing', async () => {
    const t = setup({ failures: 1 });
    await t.apply(1, 10);
    // GitHub answers again by the time the job's completion arrives: it is emitted at once.
    const completed = await t.apply(1, 10, 'completed');
    expect(completed).toMatchObject({ kind: 'completed', job: { untrusted: false } });
    expect(await t.gauge()).toBe(0);
    await t.advance(60_000);
    expect(t.events.map((e) => e.kind)).toEqual(['completed']);

    // Still failing when the completion arrives: the hold keeps the completion, not the queued.
    const u = setup({ failures: 3 });
    await u.apply(2, 20);
    expect(await u.apply(2, 20, 'started')).toBeNull();
    expect(await u.apply(2, 20, 'completed')).toBeNull();
    expect(await u.gauge()).toBe(1);
    await u.advance(1_000);
    expect(u.events.map((e) => e.kind)).toEqual(['completed']);
    expect(u.tracker.get('github:2')?.phase).toBe('completed');
    expect(u.heldLogs()).toHaveLength(1);
  });

  it('are untrusted at once when GitHub refuses the run for good (gone, not readable)', async () => {
    for (const status of [403, 404, 410]) {
      const lookups: number[] = [];
      const t = setup({
        fetchRun: async (_repo, runId) => {
          lookups.push(runId);
          throw new GithubApiError('get_run', status, 'Not Found');
        },
      });
      expect(await t.apply(1, 10)).toMatchObject({ kind: 'queued', job: { untrusted: true } });
      expect(await t.apply(2, 10)).toMatchObject({ kind: 'queued', job: { untrusted: true } });
      // The answer is kept: one look-up for the run, no hold, a warning naming the run.
      expect(lookups).toEqual([10]);
      expect(await t.gauge()).toBe(0);
      expect(t.logs.filter((l) => l.run === 10 && l.level === 40)).toHaveLength(1);
    }
  });

  it('still fail closed: a fork run held at first is untrusted once known', async () => {
    const t = setup({ failures: 1, fork: true });
    await t.apply(1, 10);
    expect(t.events).toEqual([]);
    await t.advance(1_000);
    expect(t.events).toMatchObject([{ kind: 'queued', job: { key: 'github:1', untrusted: true } }]);
  });

  it('share one look-up per attempt among the jobs of a run, waiting up to 60 s', async () => {
    const t = setup({ failures: 1_000 });
    for (const id of [1, 2, 3]) await t.apply(id, 10);
    await t.apply(4, 11);
    const initial = t.state.lookups.length;
    for (const ms of [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]) await t.advance(ms);
    // Eight attempts for each of the two runs, whatever the number of jobs held.
    expect(t.state.lookups.length - initial).toBe(16);
    expect(t.clock.pendingSleeps).toEqual([60_000, 60_000]);
    expect(t.heldLogs()).toHaveLength(4);

    t.state.failures = 0;
    await t.advance(60_000);
    expect(t.events.map((e) => e.job.key).sort()).toEqual(['github:1', 'github:2', 'github:3', 'github:4']);
    expect(t.state.lookups.length - initial).toBe(18);
    expect(await t.gauge()).toBe(0);
  });

  it('are bounded: beyond the bound the oldest hold is dropped', async () => {
    const t = setup({ failures: 3, maxHeld: 2 });
    for (const [id, run] of [
      [1, 10],
      [2, 20],
      [3, 30],
    ] as const)
      await t.apply(id, run);
    expect(await t.gauge()).toBe(2);
    expect(t.logs.some((l) => l.job === 'github:1' && String(l.msg).startsWith('too many jobs'))).toBe(true);
    await t.advance(1_000);
    expect(t.events.map((e) => e.job.key).sort()).toEqual(['github:2', 'github:3']);
    // Never tracked, so a poll that sees it again emits it.
    expect(t.tracker.get('github:1')).toBeUndefined();
  });

  it('stop being retried on stop(), which emits nothing after', async () => {
    const t = setup({ failures: 1 });
    await t.apply(1, 10);
    expect(t.clock.pendingSleeps).toEqual([1_000]);
    await t.applier.stop();
    expect(t.clock.pendingSleeps).toEqual([]);
    expect(await t.gauge()).toBe(0);
    await t.advance(120_000);
    expect(t.state.lookups).toHaveLength(1);
    expect(t.events).toEqual([]);
  });

  it('emit nothing when stop() comes while a retry is looking the run up', async () => {
    let answer: (run: RunFacts) => void = () => {};
    let calls = 0;
    const t = setup({
      fetchRun: () => {
        calls++;
        if (calls === 1) return Promise.reject(new Error('timed out'));
        return new Promise<RunFacts>((resolve) => {
          answer = resolve;
        });
      },
    });
    await t.apply(1, 10);
    await t.advance(1_000);
    expect(calls).toBe(2);
    const stopped = t.applier.stop();
    answer({ id: 10, event: 'push', repository: { full_name: REPO }, head_repository: { full_name: REPO } });
    await stopped;
    expect(t.events).toEqual([]);
  });
});

describe('jobs no class could take', () => {
  it('are dropped before their run is looked up, kept nowhere and counted once', async () => {
    const t = setup({ isServable: (labels) => labels.includes('lint') });
    expect(await t.apply(1, 10)).toBeNull();
    expect(await t.apply(1, 10, 'completed')).toBeNull();
    expect(t.state.lookups).toEqual([]);
    expect(t.tracker.get('github:1')).toBeUndefined();
    expect(t.events).toEqual([]);
    expect(await t.ignored()).toBe(1);
  });
});
