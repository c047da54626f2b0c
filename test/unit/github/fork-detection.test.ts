import { afterEach, describe, expect, it } from 'vitest';
import { isUntrustedRun } from '../../../src/sources/github/fork-detection.ts';
import { type Harness, startHarness } from './harness.ts';

const RUN_ROUTE = '/repos/{owner}/{repo}/actions/runs/{run_id}';
const LIST_ROUTE = '/repos/{owner}/{repo}/actions/runs';
const LABELS = ['self-hosted', 'linux'];

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

  it('fails closed: a job whose run cannot be looked up is untrusted', async () => {
    h = await startHarness({ webhooks: true });
    h.fake.faults.serverErrors = 100;
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    await h.settle();
    h.fake.faults.serverErrors = 0;
    expect(h.events.map((e) => e.job.untrusted)).toEqual([true]);
    expect(h.logs.some((l) => l.msg === 'cannot look up workflow run; treating its jobs as untrusted')).toBe(
      true,
    );
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
