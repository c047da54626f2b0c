import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/ledger/ledger.ts';
import { createGantryMetrics } from '../../../src/metrics/gantry-metrics.ts';
import type { RunnerObservation } from '../../../src/model/runner-observation.ts';
import { classes, githubJob, NOW, runnerPod, seconds, testLedger } from '../../support/builders.ts';

const config = classes({
  lint: {
    maxRunners: 7,
    resources: { requests: { cpu: '1', memory: '1Gi' }, limits: {} },
    cost: { perVcpuHour: 3, perGibHour: 0.6, perRunnerHour: 0 },
  },
  build: {},
});

function setup() {
  let now = NOW;
  const ledger = testLedger(config);
  const registry = new Registry();
  const metrics = createGantryMetrics({
    registry,
    classes: config,
    snapshot: (at) => ledger.snapshot(config, at),
    now: () => now,
    costSettleMs: 0,
  });
  const apply = (changes: ReturnType<Ledger['applyJobEvent']>) => {
    for (const change of changes) metrics.onChange(change);
  };
  const value = async (name: string, labels: Record<string, string>) =>
    (await registry.getSingleMetric(name)?.get())?.values.find((v) =>
      Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l),
    )?.value;
  return {
    ledger,
    registry,
    metrics,
    apply,
    value,
    setNow: (at: number) => {
      now = at;
    },
  };
}

const identity = (id: number, labels?: string[]) =>
  githubJob(id, { name: `job <${id}>`, ...(labels ? { labels } : {}) });

const pod = (name: string, options: Partial<RunnerObservation> = {}) =>
  runnerPod(name, { createdAt: NOW - seconds(4), runningSince: NOW, ...options });

describe('Gantry metrics from ledger changes', () => {
  it('observes queue times, runner start-up and job durations, and charges the scripted runner', async () => {
    const { ledger, apply, value, registry, setNow } = setup();
    apply(
      ledger.applyJobEvent({
        kind: 'queued',
        job: identity(1),
        via: 'webhook',
        createdAt: NOW - seconds(30),
      }),
    );
    apply(ledger.observeRunner(pod('r1')));
    const startedAt = NOW + seconds(12);
    apply(
      ledger.applyJobEvent({
        kind: 'started',
        job: identity(1),
        via: 'webhook',
        createdAt: NOW - seconds(30),
        startedAt,
        runnerName: 'r1',
      }),
    );
    apply(
      ledger.applyJobEvent({
        kind: 'completed',
        job: identity(1),
        via: 'webhook',
        createdAt: NOW - seconds(30),
        startedAt,
        completedAt: startedAt + seconds(600),
        conclusion: 'success',
        runnerName: 'r1',
      }),
    );
    const end = startedAt + seconds(603);
    apply(ledger.observeRunner(pod('r1', { phase: 'Succeeded', endedAt: end })));
    setNow(end + seconds(2));
    apply(ledger.forgetRunner('r1', end + seconds(2)));

    expect(await value('gantry_job_queue_seconds', { class: 'lint', le: '30' })).toBe(0);
    expect(await value('gantry_job_queue_seconds', { class: 'lint', le: '60' })).toBe(1);
    expect(await value('gantry_runner_startup_seconds', { class: 'lint', le: '5' })).toBe(1);
    expect(await value('gantry_job_duration_seconds', { class: 'lint', le: '600' })).toBe(1);
    // $3.60 an hour is $0.001 a second: 600 s busy, 12 s + 3 s idle.
    const text = await registry.metrics();
    expect(text).toContain('gantry_cost_dollars_total{class="lint",source="github",use="busy"} 0.6');
    expect(await value('gantry_cost_dollars_total', { use: 'idle' })).toBeCloseTo(0.015, 12);
  });

  it('reports pools, queues, max runners and quota limits from the snapshot at scrape time', async () => {
    const { ledger, apply, value, setNow } = setup();
    apply(ledger.applyJobEvent({ kind: 'queued', job: identity(1), via: 'poll', createdAt: NOW }));
    apply(ledger.applyJobEvent({ kind: 'queued', job: identity(2), via: 'poll', createdAt: NOW }));
    ledger.observeRunner(pod('idle-1'));
    ledger.observeRunner(pod('starting-1', { phase: 'Pending', runningSince: undefined }));
    expect(await value('gantry_jobs_queued', { class: 'lint', source: 'github' })).toBe(2);
    expect(await value('gantry_jobs_queued', { class: 'build', source: 'github' })).toBe(0);
    expect(await value('gantry_runners', { class: 'lint', state: 'idle' })).toBe(1);
    expect(await value('gantry_runners', { class: 'lint', state: 'starting' })).toBe(1);
    expect(await value('gantry_runners', { class: 'lint', state: 'busy' })).toBe(0);
    expect(await value('gantry_class_max_runners', { class: 'lint' })).toBe(7);
    expect(await value('gantry_class_quota_limited', { class: 'lint' })).toBe(0);
    ledger.noteQuotaExceeded('gantry-runners', NOW + seconds(10));
    expect(await value('gantry_class_quota_limited', { class: 'lint' })).toBe(1);
    setNow(NOW + seconds(11));
    expect(await value('gantry_class_quota_limited', { class: 'lint' })).toBe(0);
    ledger.forgetRunner('idle-1');
    expect(await value('gantry_runners', { class: 'lint', state: 'idle' })).toBe(0);
  });

  it('projects the ledger once per scrape, however many gauges read it', async () => {
    const ledger = testLedger(config);
    let projections = 0;
    const registry = new Registry();
    createGantryMetrics({
      registry,
      classes: config,
      snapshot: (at) => {
        projections += 1;
        return ledger.snapshot(config, at);
      },
      now: () => NOW,
    });
    await registry.metrics();
    expect(projections).toBe(1);
    await registry.metrics();
    expect(projections).toBe(2);
  });

  it('builds the status report: counts per class, queue p95 and recent events', () => {
    const { ledger, apply, metrics } = setup();
    for (const [id, waited] of [
      [1, 5],
      [2, 10],
      [3, 40],
    ] as const) {
      apply(
        ledger.applyJobEvent({
          kind: 'started',
          job: identity(id),
          via: 'webhook',
          createdAt: NOW - seconds(waited),
          startedAt: NOW,
          runnerName: `r${id}`,
        }),
      );
    }
    apply(ledger.applyJobEvent({ kind: 'queued', job: identity(4), via: 'webhook', createdAt: NOW }));
    const report = metrics.status();
    expect(report.classes.map((c) => c.name)).toEqual(['lint', 'build']);
    expect(report.classes[0]).toMatchObject({ name: 'lint', queued: 1, maxRunners: 7, queueP95Seconds: 40 });
    expect(report.classes[1]).toMatchObject({ name: 'build', queued: 0, queueP95Seconds: null });
    expect(report.events[0]).toMatchObject({ class: 'lint', message: 'job queued: acme/app job <4>' });
    expect(report.events).toHaveLength(4);
  });

  it('counts runners lost mid-job by reason, failed starts by reason, and runners waiting for a node', async () => {
    const { ledger, apply, value, metrics } = setup();
    // Every class and reason is exported at zero from the start, so rate() sees the first loss.
    expect(await value('gantry_runners_lost_total', { class: 'build', reason: 'oom-killed' })).toBe(0);
    expect(await value('gantry_runner_start_failures_total', { class: 'build', reason: 'refused' })).toBe(0);
    apply(ledger.observeRunner(pod('busy')));
    apply(ledger.observeRunner(pod('idle')));
    apply(
      ledger.applyJobEvent({
        kind: 'started',
        job: identity(1),
        via: 'webhook',
        createdAt: NOW - seconds(5),
        startedAt: NOW,
        runnerName: 'busy',
      }),
    );
    apply(ledger.observeRunner(pod('busy', { phase: 'Failed', lost: 'node-lost' })));
    apply(ledger.observeRunner(pod('idle', { phase: 'Failed', lost: 'node-lost' })));
    // Only the runner that held a job lost one.
    expect(await value('gantry_runners_lost_total', { class: 'lint', reason: 'node-lost' })).toBe(1);
    apply(
      ledger.observeRunner(
        pod('pull', {
          phase: 'Pending',
          runningSince: undefined,
          startFailure: {
            reason: 'image-pull',
            detail: 'ErrImagePull',
            container: 'runner',
            message: 'not found',
          },
        }),
      ),
    );
    expect(await value('gantry_runner_start_failures_total', { class: 'lint', reason: 'image-pull' })).toBe(
      1,
    );
    ledger.observeRunner(pod('wait', { phase: 'Pending', runningSince: undefined, unschedulable: true }));
    expect(await value('gantry_runners_waiting_for_capacity', { class: 'lint' })).toBe(1);
    expect(await value('gantry_runners_waiting_for_capacity', { class: 'build' })).toBe(0);
    expect(await value('gantry_runners', { class: 'lint', state: 'starting' })).toBe(1);
    const messages = metrics.status().events.map((e) => e.message);
    expect(messages).toContain(
      `runner failed to start, ErrImagePull (container runner): pull: not found; creations of the class held`,
    );
    expect(messages).toContain('runner lost mid-job (node-lost): busy, job github:1; the job fails');
    expect(messages).toContain('runner lost before it took a job (node-lost): idle');
  });
});
