import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../../../src/http/server.ts';
import type { JobRecord, LedgerChange } from '../../../src/ledger/ledger.ts';
import type { StatusReport } from '../../../src/metrics/status.ts';
import type { JobIdentity } from '../../../src/model/job.ts';
import { parseTrace } from '../../../src/trace/format.ts';
import { JobRecorder } from '../../../src/trace/recorder.ts';

const T0 = Date.parse('2026-01-05T09:00:00Z');

function identity(id: number, extra: Partial<JobIdentity> = {}): JobIdentity {
  return {
    source: 'github',
    key: `github:${id}`,
    repo: 'acme/app',
    labels: ['self-hosted', 'lint'],
    runId: '77',
    runAttempt: 1,
    untrusted: false,
    origin: { event: 'push', headBranch: 'main' },
    name: `lint ${id}`,
    ...extra,
  };
}

function record(job: JobIdentity, createdAt: number): JobRecord {
  return { identity: job, classification: { matched: true, className: 'lint' }, state: 'queued', createdAt };
}

function lifecycle(
  recorder: JobRecorder,
  job: JobIdentity,
  created: number,
  started: number | null,
  completed: number,
) {
  const changes: LedgerChange[] = [{ kind: 'job-queued', job: record(job, created) }];
  if (started !== null) {
    changes.push({
      kind: 'job-started',
      job: { ...record(job, created), state: 'started', startedAt: started, runnerName: `runner-${job.key}` },
      queuedForMs: started - created,
    });
  }
  changes.push({
    kind: 'job-completed',
    job,
    className: 'lint',
    startedAt: started,
    completedAt: completed,
    ...(started !== null ? { runnerName: `runner-${job.key}` } : {}),
  });
  for (const change of changes) recorder.observe(change);
}

describe('Gantry’s own record of the jobs it saw', () => {
  it('keeps the last jobs that ended as trace lines, and serves them at GET /api/trace', async () => {
    const recorder = new JobRecorder(3);
    lifecycle(recorder, identity(1), T0, T0 + 12_000, T0 + 72_000);
    lifecycle(
      recorder,
      identity(2, {
        untrusted: true,
        origin: { event: 'pull_request', headBranch: 'fix', untrustedBecause: 'fork' },
      }),
      T0 + 1_000,
      T0 + 40_000,
      T0 + 100_000,
    );
    lifecycle(recorder, identity(3), T0 + 2_000, null, T0 + 30_000);
    lifecycle(recorder, identity(4), T0 + 3_000, T0 + 5_000, T0 + 9_000);
    // Ended without Gantry having seen it queued: its creation is unknown, so it is not recorded.
    recorder.observe({
      kind: 'job-completed',
      job: identity(5),
      className: 'lint',
      startedAt: T0,
      completedAt: T0 + 1_000,
    });

    const app = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => true,
      trace: (since) => recorder.trace(since, T0 + 200_000),
    });
    const res = await app.inject('/api/trace');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-ndjson');
    const trace = parseTrace(res.body, 'served');
    expect(trace.header?.source).toBe('gantry');
    // Three kept: the oldest went.
    expect(trace.jobs.map((j) => j.job)).toEqual(['2', '3', '4']);
    expect(trace.jobs[0]).toMatchObject({
      fork: true,
      event: 'pull_request',
      branch: 'fix',
      started: T0 + 40_000,
      durationMs: 60_000,
    });
    expect(trace.jobs[1]).toMatchObject({ cancelledAt: T0 + 30_000 });
    expect(trace.jobs[1]?.durationMs).toBeUndefined();
    const since = await app.inject(`/api/trace?since=${new Date(T0 + 2_500).toISOString()}`);
    expect(parseTrace(since.body).jobs.map((j) => j.job)).toEqual(['4']);
    expect((await app.inject('/api/trace?since=yesterday')).statusCode).toBe(400);
    await app.close();
  });

  it('shows a class’s warm pool and its objective on the status page', async () => {
    const report: StatusReport = {
      generatedAt: new Date(T0).toISOString(),
      events: [],
      classes: [
        {
          name: 'lint',
          queued: 0,
          starting: 0,
          idle: 4,
          busy: 1,
          terminating: 0,
          admitted: 0,
          maxRunners: 20,
          queueP95Seconds: 12,
          costTodayDollars: 1,
          warmPool: {
            target: 4,
            objective: { percentile: 'p95', seconds: 30 },
            predictedSeconds: 21,
            met: true,
          },
        },
        {
          name: 'build',
          queued: 0,
          starting: 0,
          idle: 0,
          busy: 0,
          terminating: 0,
          admitted: 0,
          maxRunners: 5,
          queueP95Seconds: null,
          costTodayDollars: 0,
        },
      ],
    };
    const app = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => true,
      status: () => report,
    });
    const page = (await app.inject('/')).body;
    expect(page).toContain('<th>warm pool (objective)</th>');
    expect(page).toContain('<td class="num warm">4 (p95 ≤ 30 s)</td>');
    expect(page).toContain('<td class="num warm">–</td>');
    await app.close();
  });
});
