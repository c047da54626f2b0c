import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { isUntrustedRun } from '../../../src/sources/github/fork-detection.ts';
import { until } from '../../support/until.ts';
import { type Harness, startHarness } from './harness.ts';

const RUN_ROUTE = '/repos/{owner}/{repo}/actions/runs/{run_id}';
const LIST_ROUTE = '/repos/{owner}/{repo}/actions/runs';
const LABELS = ['self-hosted', 'linux'];
const HELD_MSG = 'cannot look up workflow run; holding the job until its origin is known';

describe('fork detection', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('marks jobs of fork pull requests untrusted, looking each run up once', async () => {
    h = await startHarness({ webhooks: true });
    const fork = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 3, fromFork: 'mallory/app' });
    const own = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 2 });
    await h.settle();
    const untrusted = (ids: number[]) =>
      ids.map((id) => h.events.find((e) => e.job.key === `github:${id}`)?.job.untrusted);
    expect(untrusted(fork.jobIds)).toEqual([true, true, true]);
    expect(untrusted(own.jobIds)).toEqual([false, false]);
    // Both runs were queued: one list of the repository's queued runs answered for both.
    expect(h.fake.requests.filter((r) => r.route === LIST_ROUTE || r.route === RUN_ROUTE)).toHaveLength(1);
  });

  it('reads the run itself when it is no longer queued', async () => {
    h = await startHarness({ webhooks: true });
    h.fake.faults.dropWebhooks = true;
    const { jobIds } = h.fake.queueJobs({
      repo: 'acme/app',
      labels: LABELS,
      count: 1,
      fromFork: 'mallory/app',
    });
    h.fake.faults.dropWebhooks = false;
    h.fake.registerRunner('r1', LABELS);
    h.fake.startRunner('r1');
    await h.settle();
    expect(h.events).toMatchObject([
      { kind: 'started', job: { key: `github:${jobIds[0]}`, untrusted: true } },
    ]);
    expect(h.fake.requests.filter((r) => r.route === RUN_ROUTE)).toHaveLength(1);
  });

  it('needs no look-up for runs the poller listed', async () => {
    h = await startHarness({ webhooks: false });
    const fork = h.fake.queueJobs({ repo: 'acme/lib', labels: LABELS, count: 2, fromFork: 'mallory/lib' });
    await h.source.pollOnce();
    expect(h.events.map((e) => e.job.untrusted)).toEqual([true, true]);
    expect(h.events.map((e) => e.job.key).sort()).toEqual(fork.jobIds.map((id) => `github:${id}`).sort());
    expect(h.fake.requests.filter((r) => r.route === RUN_ROUTE)).toHaveLength(0);
  });

  it('holds a job whose run cannot be looked up, retrying until GitHub answers, then emits it', async () => {
    h = await startHarness({ webhooks: true, manualClock: true, github: { maxRetries: 0 } });
    h.fake.faults.outageUntil = h.clock.now() + 5_000;
    const { jobIds, runIds } = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    await h.settle();
    // Not guessed untrusted (that verdict would stay with the job): no event until the origin is known.
    expect(h.events).toEqual([]);
    expect(await h.metricValue('gantry_github_jobs_awaiting_origin')).toBe(1);
    expect(h.clock.pendingSleeps).toEqual([1_000]);
    for (const [wait, next] of [
      [1_000, 2_000],
      [2_000, 4_000],
    ] as const) {
      h.clock.advance(wait);
      await until(`a retry after ${wait} ms`, async () => h.clock.pendingSleeps[0] === next);
    }
    expect(h.events).toEqual([]);
    // The outage is over by the third retry.
    h.clock.advance(4_000);
    await until('the held job', async () => h.events.length > 0);
    expect(h.events).toMatchObject([
      { kind: 'queued', job: { key: `github:${jobIds[0]}`, untrusted: false } },
    ]);
    expect(await h.metricValue('gantry_github_jobs_awaiting_origin')).toBe(0);
    expect(h.clock.pendingSleeps).toEqual([]);
    expect(h.logs.filter((l) => l.msg === HELD_MSG)).toMatchObject([{ repo: 'acme/app', run: runIds[0] }]);
  });

  it('ends the retries of held jobs on stop(), not on stopPolling()', async () => {
    h = await startHarness({ webhooks: true, manualClock: true, github: { maxRetries: 0 } });
    h.fake.faults.outageUntil = h.clock.now() + 3_600_000;
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    await h.settle();
    // A follower still applies webhooks: its held jobs keep being retried.
    await h.source.stopPolling();
    expect(h.clock.pendingSleeps).toEqual([1_000]);
    await h.source.stop();
    expect(h.clock.pendingSleeps).toEqual([]);
    expect(await h.metricValue('gantry_github_jobs_awaiting_origin')).toBe(0);
    h.fake.faults.outageUntil = 0;
    const sent = h.fake.requests.length;
    h.clock.advance(120_000);
    await sleep(300);
    expect(h.fake.requests.length).toBe(sent);
    expect(h.events).toEqual([]);
  });

  it('judges a run by where its code comes from', () => {
    const repo = { full_name: 'acme/app' };
    expect(isUntrustedRun({ id: 1, event: 'push', repository: repo, head_repository: repo })).toBe(false);
    expect(
      isUntrustedRun({
        id: 1,
        event: 'pull_request',
        repository: repo,
        head_repository: { full_name: 'ACME/App' },
      }),
    ).toBe(false);
    expect(
      isUntrustedRun({
        id: 1,
        event: 'pull_request',
        repository: repo,
        head_repository: { full_name: 'eve/app' },
      }),
    ).toBe(true);
    expect(isUntrustedRun({ id: 1, event: 'pull_request', repository: repo, head_repository: null })).toBe(
      true,
    );
    expect(isUntrustedRun({ id: 1, event: 'schedule', repository: repo, head_repository: null })).toBe(false);
  });
});
