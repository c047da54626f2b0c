import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import type { JobRecord, LedgerChange } from '../../../src/ledger/ledger.ts';
import type { JobIdentity } from '../../../src/model/job.ts';
import { plan } from '../../../src/planner/plan.ts';
import { createWarmPoolLearner } from '../../../src/warm-pool/learner.ts';
import { withWarmPoolTargets } from '../../../src/warm-pool/schedule.ts';

const HOUR = 3_600_000;
const MONDAY = Date.UTC(2026, 0, 5);

const config = parseConfig({
  classes: {
    lint: {
      namespace: 'ci',
      match: { github: { labels: ['self-hosted', 'lint'] } },
      maxRunners: 30,
      warmPool: { queueTimeObjective: { p95: '30s' }, max: 20 },
    },
    build: { namespace: 'ci', match: { github: { labels: ['self-hosted', 'build'] } }, minIdle: 1 },
  },
});

function identity(id: number): JobIdentity {
  return {
    source: 'github',
    key: `github:${id}`,
    repo: 'acme/app',
    labels: ['self-hosted', 'lint'],
    runId: String(id),
    runAttempt: 1,
    untrusted: false,
    name: `lint ${id}`,
  };
}

function record(id: number, createdAt: number, runnerName?: string): JobRecord {
  return {
    identity: identity(id),
    classification: { matched: true, className: 'lint' },
    state: runnerName ? 'started' : 'queued',
    createdAt,
    ...(runnerName ? { runnerName, startedAt: createdAt } : {}),
  };
}

describe('the warm-pool learner', () => {
  it('learns a busy hour and its cold waits, and then keeps a pool for that hour the next week', () => {
    let now = MONDAY + 9 * HOUR;
    const runnerCreated = new Map<string, number>();
    const learner = createWarmPoolLearner({
      classes: config.classes,
      now: () => now,
      runnerCreatedAt: (name) => runnerCreated.get(name),
    });
    expect(learner.classNames).toEqual(['lint']);
    // Nothing learned: no pool, and the status says why.
    expect(learner.targetOf('lint')).toBe(0);
    expect(learner.status()[0]).toMatchObject({ className: 'lint', target: 0, unknown: 'no-arrivals' });

    // Monday 09:00–10:00: 240 jobs, each waiting 60 s for a runner made for it.
    for (let i = 0; i < 240; i++) {
      now = MONDAY + 9 * HOUR + i * 15_000;
      const change: LedgerChange = { kind: 'job-queued', job: record(i, now) };
      learner.observe(change);
      runnerCreated.set(`r${i}`, now + 2_000);
      learner.observe({ kind: 'job-started', job: record(i, now, `r${i}`), queuedForMs: 60_000 });
    }
    now = MONDAY + 10 * HOUR + 60_000;
    learner.tick();
    // Next Monday 09:00: a pool for what was learned (and ready a start-up before the hour begins).
    now = MONDAY + 168 * HOUR + 9 * HOUR + 5 * 60_000;
    const target = learner.targetOf('lint');
    expect(target).toBeGreaterThan(0);
    expect(target).toBeLessThanOrEqual(20);
    const status = learner.status()[0];
    expect(status).toMatchObject({ target, objective: { percentile: 'p95', seconds: 30 }, met: true });
    expect(status?.predictedSeconds).toBeLessThanOrEqual(30);
    // At 03:00 nothing was ever seen: none.
    now = MONDAY + 168 * HOUR + 3 * HOUR;
    expect(learner.targetOf('lint')).toBe(0);

    // The planner reads the target as the class's minIdle, and creates that many warm runners.
    now = MONDAY + 168 * HOUR + 9 * HOUR + 5 * 60_000;
    const classes = withWarmPoolTargets(config.classes, (name) => learner.targetOf(name));
    expect(classes.lint?.minIdle).toBe(target);
    expect(classes.build).toBe(config.classes.build);
    const actions = plan({ classes: {}, quotas: {} }, classes, now);
    expect(actions.filter((a) => a.kind === 'create-runner' && a.className === 'lint')).toHaveLength(target);
  });

  it('survives a restart through its saved state, keeping this hour’s own count', () => {
    let now = MONDAY + 9 * HOUR;
    const make = () =>
      createWarmPoolLearner({ classes: config.classes, now: () => now, runnerCreatedAt: () => undefined });
    const first = make();
    for (let i = 0; i < 30; i++) first.observe({ kind: 'job-queued', job: record(i, now) });
    now += 10 * 60_000;
    const saved = first.state();
    const second = make();
    // Relisted after the restart: queued before it, already counted.
    for (let i = 0; i < 30; i++) second.observe({ kind: 'job-queued', job: record(i, now - 10 * 60_000) });
    for (let i = 100; i < 140; i++) second.observe({ kind: 'job-queued', job: record(i, now) });
    second.restore(saved);
    now = MONDAY + 10 * HOUR + 1;
    second.tick();
    const state = second.state();
    // 40 of its own beat the 30 saved; the hour was watched from 09:00.
    expect(state.classes.lint?.jobsPerHour[9]).toBe(40);
    expect(Object.keys(state.classes)).toEqual(['lint']);
  });
});
