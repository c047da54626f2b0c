import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Harness, jobIdsOf, startHarness } from '../../../support/github-harness.ts';

const LABELS = ['self-hosted', 'linux'];

describe('poller backstop', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('with every webhook dropped, discovers every queued job across pagination', async () => {
    h = await startHarness({ webhooks: true, perPage: 2 });
    h.fake.faults.dropWebhooks = true;
    const app = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 9, jobsPerRun: 3 });
    const lib = h.fake.queueJobs({
      repo: 'acme/lib',
      labels: ['self-hosted', 'gpu'],
      count: 5,
      jobsPerRun: 5,
    });
    // A run that is in progress can still hold queued jobs.
    h.fake.registerRunner('other-runner', ['self-hosted', 'gpu']);
    const taken = h.fake.startRunner('other-runner');
    await h.settle();
    expect(h.events).toEqual([]);

    const report = await h.source.pollOnce();
    expect(report.result).toBe('ok');
    const queued = [...app.jobIds, ...lib.jobIds].filter((id) => id !== taken).sort((a, b) => a - b);
    expect(jobIdsOf(h.events, 'queued')).toEqual(queued);
    expect(jobIdsOf(h.events, 'started')).toEqual([taken]);
    expect(report.foundByPoll).toBe(queued.length);
    expect(await h.metricValue('gantry_github_jobs_found_by_poll_total')).toBe(queued.length);
    // Pages were followed: lists and jobs of more than per_page items were read page by page.
    expect(h.fake.requests.some((r) => r.route.endsWith('/jobs') && r.url.includes('page=3'))).toBe(true);
    expect(h.fake.requests.some((r) => r.route.endsWith('/actions/runs') && r.url.includes('page=2'))).toBe(
      true,
    );
    expect(h.logs.some((l) => l.msg === 'queued job found by polling: no webhook announced it')).toBe(true);

    // A second sweep finds nothing new: each transition is emitted once.
    const count = h.events.length;
    await h.source.pollOnce();
    expect(h.events.length).toBe(count);
  });

  it('follows jobs to completion without webhooks, and does not repeat what webhooks said', async () => {
    h = await startHarness({ webhooks: true });
    const { jobIds } = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 2, durationMs: 120_000 });
    await h.settle();
    expect(jobIdsOf(h.events, 'queued')).toEqual(jobIds);
    await h.source.pollOnce();
    expect(h.events).toHaveLength(2);

    h.fake.faults.dropWebhooks = true;
    h.fake.registerRunner('r1', LABELS);
    h.fake.startRunner('r1');
    // Webhooks vouch for a run until it has been quiet for a backstop interval (300 s).
    await h.advance(150_000);
    await h.source.pollOnce();
    expect(h.events.filter((e) => e.kind === 'completed')).toHaveLength(0);
    await h.advance(200_000);
    await h.source.pollOnce();
    const [first] = jobIds;
    const completed = h.events.find((e) => e.kind === 'completed');
    expect(completed).toMatchObject({
      kind: 'completed',
      conclusion: 'success',
      runnerName: 'r1',
      via: 'poll',
    });
    expect(completed?.job.key).toBe(`github:${first}`);
  });

  it('at idle sends only conditional requests that GitHub answers 304, spending no quota', async () => {
    h = await startHarness({ webhooks: true });
    const { jobIds } = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1, durationMs: 10_000 });
    h.fake.registerRunner('r1', LABELS);
    h.fake.startRunner('r1');
    await h.advance(20_000);
    await h.source.pollOnce();
    await h.source.pollOnce();
    expect(jobIds).toHaveLength(1);

    const mark = h.fake.requests.length;
    const quota = h.fake.quotaUsed();
    for (let i = 0; i < 5; i++) {
      await h.advance(30_000);
      expect((await h.source.pollOnce()).result).toBe('ok');
    }
    const steady = h.fake.requests.slice(mark);
    // Installation repositories plus queued and in-progress runs of two repositories, five times.
    expect(steady).toHaveLength(5 * 5);
    expect(steady.map((r) => r.status)).toEqual(steady.map(() => 304));
    expect(h.fake.quotaUsed()).toBe(quota);
  });

  it('stretches the backstop while it finds nothing webhooks missed, and snaps back when it does', async () => {
    h = await startHarness({
      webhooks: true,
      github: { poll: { backstopIntervalSeconds: 60, backstopMaxIntervalSeconds: 300 } },
    });
    const delays: number[] = [];
    const sweep = async () => {
      h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
      await h.settle();
      expect((await h.source.pollOnce()).result).toBe('ok');
      const next = h.source.nextPollDelay();
      expect(next.mode).toBe('backstop');
      delays.push(next.ms);
    };
    for (let i = 0; i < 4; i++) await sweep();
    expect(delays).toEqual([120_000, 240_000, 300_000, 300_000]);

    // A job whose webhook was lost: the sweep that finds it brings the interval back to its base.
    h.fake.faults.dropWebhooks = true;
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    h.fake.faults.dropWebhooks = false;
    h.fake.queueJobs({ repo: 'acme/lib', labels: LABELS, count: 1 });
    await h.settle();
    expect((await h.source.pollOnce()).foundByPoll).toBe(1);
    // Caught missing one, webhooks are not trusted for a backstop interval: polling at the poll interval.
    expect(h.source.nextPollDelay().mode).toBe('poll');
    await h.advance(61_000);
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    await h.settle();
    expect(h.source.nextPollDelay()).toEqual({ mode: 'backstop', ms: 60_000, reason: 'normal' });
  });

  it('with the quota exhausted sends nothing until the reset, and says so', async () => {
    h = await startHarness({ webhooks: true });
    await h.source.pollOnce();
    h.fake.exhaustQuota();
    h.fake.faults.dropWebhooks = true;
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });

    const refused = await h.source.pollOnce();
    expect(refused.result).toBe('rate_limited');
    const state = h.source.rateLimit();
    expect(state).toMatchObject({ blocked: true, blockedReason: 'primary', remaining: 0 });
    expect(await h.metricValue('gantry_github_rate_limit_blocked', { reason: 'primary' })).toBe(1);
    expect(
      h.logs.some((l) => l.msg === 'github rate limit reached: holding all requests until it resets'),
    ).toBe(true);

    const sent = h.fake.requests.length;
    for (let i = 0; i < 3; i++) {
      await h.advance(60_000);
      expect((await h.source.pollOnce()).result).toBe('rate_limited');
    }
    await expect(
      h.source.runners.create({
        name: 'gantry-lint-1',
        labels: LABELS,
        placement: { scope: 'org', group: 'Default' },
      }),
    ).rejects.toThrow(/rate limit/);
    expect(h.fake.requests.length).toBe(sent);
    const delay = h.source.nextPollDelay();
    expect(delay.reason).toBe('blocked');
    expect(h.clock.now() + delay.ms).toBeGreaterThanOrEqual(h.fake.quota().resetAt);

    h.clock.set(h.fake.quota().resetAt + 1_000);
    const after = await h.source.pollOnce();
    expect(after.result).toBe('ok');
    expect(after.foundByPoll).toBe(1);
    expect(h.source.rateLimit().blocked).toBe(false);
    expect(await h.metricValue('gantry_github_rate_limit_blocked', { reason: 'primary' })).toBe(0);
  });

  it('slows down under half the quota and stops under a tenth until the reset', async () => {
    h = await startHarness({ webhooks: false, quotaLimit: 100 });
    await h.source.pollOnce();
    expect(h.source.nextPollDelay()).toMatchObject({ reason: 'normal', ms: 30_000, mode: 'poll' });

    // Another client of the same installation spends most of the quota.
    h.fake.spendQuota(50);
    await h.source.pollOnce();
    expect(h.fake.quota().remaining).toBeLessThan(50);
    expect(h.source.nextPollDelay()).toMatchObject({ reason: 'slow', ms: 120_000 });

    h.fake.spendQuota(40);
    await h.source.pollOnce();
    expect(h.fake.quota().remaining).toBeLessThan(10);
    const delay = h.source.nextPollDelay();
    expect(delay.reason).toBe('reserve');
    expect(h.clock.now() + delay.ms).toBeGreaterThanOrEqual(h.fake.quota().resetAt);
  });

  it('obeys Retry-After on a secondary rate limit', async () => {
    h = await startHarness({ webhooks: false });
    h.fake.faults.secondaryLimit = { count: 1, status: 429, retryAfterSeconds: 90 };
    expect((await h.source.pollOnce()).result).toBe('rate_limited');
    expect(h.source.rateLimit()).toMatchObject({ blocked: true, blockedReason: 'secondary' });
    const sent = h.fake.requests.length;
    await h.advance(60_000);
    expect((await h.source.pollOnce()).result).toBe('rate_limited');
    expect(h.fake.requests.length).toBe(sent);
    await h.advance(31_000);
    expect((await h.source.pollOnce()).result).toBe('ok');
  });

  it('retries 5xx answers with jittered backoff and gives up after the bound', async () => {
    h = await startHarness({ webhooks: false, github: { maxRetries: 2 } });
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    h.fake.faults.serverErrors = 2;
    const report = await h.source.pollOnce();
    expect(report.result).toBe('ok');
    expect(jobIdsOf(h.events, 'queued')).toHaveLength(1);
    expect(h.clock.sleeps.length).toBe(2);

    h.fake.faults.serverErrors = 100;
    const failing = await h.source.pollOnce();
    expect(failing.result).toBe('partial');
    expect(100 - h.fake.faults.serverErrors).toBe(3);
    h.fake.faults.serverErrors = 0;
  });

  it('times out a request that hangs', async () => {
    h = await startHarness({ webhooks: false, github: { requestTimeoutSeconds: 0.05, maxRetries: 1 } });
    h.fake.faults.latencyMs = 150;
    const report = await h.source.pollOnce();
    expect(report.result).toBe('partial');
    expect(h.logs.some((l) => String(l.err).includes('timed out'))).toBe(true);
    h.fake.faults.latencyMs = 0;
  });

  it('sweeps at its own pace once started, and stops', async () => {
    h = await startHarness({ webhooks: false, manualClock: true });
    h.source.start();
    await vi.waitFor(() => expect(h.clock.pendingSleeps).toEqual([30_000]));
    const firstSweep = h.fake.requests.length;
    expect(firstSweep).toBeGreaterThan(0);
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    h.clock.advance(30_000);
    await vi.waitFor(() => expect(h.events).toHaveLength(1));
    await vi.waitFor(() => expect(h.clock.pendingSleeps).toEqual([30_000]));
    await h.source.stop();
    expect(h.clock.pendingSleeps).toEqual([]);
    const sent = h.fake.requests.length;
    h.clock.advance(60_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.fake.requests.length).toBe(sent);
  });
});
