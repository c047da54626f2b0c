import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { githubConfigSchema } from '../../../../src/sources/github/config.ts';
import { judgeRun, type RunFacts } from '../../../../src/sources/github/run-origin.ts';
import { type Harness, startHarness } from '../../../support/github-harness.ts';
import { until } from '../../../support/until.ts';

const RUN_ROUTE = '/repos/{owner}/{repo}/actions/runs/{run_id}';
const LIST_ROUTE = '/repos/{owner}/{repo}/actions/runs';
const LABELS = ['self-hosted', 'linux'];
const HELD_MSG = 'cannot look up workflow run; holding the job until its origin is known';

describe('run origins', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('knows where a run comes from by its workflow_run delivery, with no request', async () => {
    h = await startHarness({ webhooks: true });
    const fork = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 2, fromFork: 'mallory/app' });
    const own = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    await h.settle();
    const untrusted = (ids: number[]) =>
      ids.map((id) => h.events.find((e) => e.job.key === `github:${id}`)?.job.untrusted);
    expect(untrusted(fork.jobIds)).toEqual([true, true]);
    expect(untrusted(own.jobIds)).toEqual([false]);
    expect(h.fake.requests.filter((r) => r.route === LIST_ROUTE || r.route === RUN_ROUTE)).toEqual([]);
  });

  it('without workflow_run deliveries, marks jobs of fork pull requests untrusted, looking each run up once', async () => {
    h = await startHarness({ webhooks: true, fake: { workflowRunWebhooks: false } });
    const fork = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 3, fromFork: 'mallory/app' });
    const own = h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 2 });
    await h.settle();
    const untrusted = (ids: number[]) =>
      ids.map((id) => h.events.find((e) => e.job.key === `github:${id}`)?.job.untrusted);
    expect(untrusted(fork.jobIds)).toEqual([true, true, true]);
    expect(untrusted(own.jobIds)).toEqual([false, false]);
    // One GET of each run (never a listing of the repository's runs), shared by the run's jobs.
    expect(h.fake.requests.filter((r) => r.route === LIST_ROUTE)).toHaveLength(0);
    expect(h.fake.requests.filter((r) => r.route === RUN_ROUTE)).toHaveLength(2);
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
    h = await startHarness({
      webhooks: true,
      fake: { workflowRunWebhooks: false },
      manualClock: true,
      github: { maxRetries: 0 },
    });
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
    h = await startHarness({
      webhooks: true,
      fake: { workflowRunWebhooks: false },
      manualClock: true,
      github: { maxRetries: 0 },
    });
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

  it('keeps the run’s event and branch with the job, for trusted-only classes', async () => {
    h = await startHarness({ webhooks: true });
    const { jobIds } = h.fake.queueJobs({
      repo: 'acme/app',
      labels: LABELS,
      count: 1,
      event: 'release',
      headBranch: 'v1.2.0',
    });
    await h.settle();
    expect(h.events.find((e) => e.job.key === `github:${jobIds[0]}`)?.job).toMatchObject({
      untrusted: false,
      origin: { event: 'release', headBranch: 'v1.2.0' },
    });
  });

  it('marks jobs of a public repository, of Dependabot and of untrusted events untrusted', async () => {
    h = await startHarness({
      webhooks: true,
      fake: { repos: ['acme/app', 'acme/oss'], publicRepos: ['acme/oss'] },
      github: { trust: { untrustedEvents: ['issue_comment'] } },
    });
    const runs = {
      public: h.fake.queueJobs({ repo: 'acme/oss', labels: LABELS, count: 1 }),
      dependabot: h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1, actor: 'dependabot[bot]' }),
      comment: h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1, event: 'issue_comment' }),
      push: h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 }),
    };
    await h.settle();
    const because = (ids: number[]) =>
      h.events.find((e) => e.job.key === `github:${ids[0]}`)?.job.origin?.untrustedBecause ?? 'trusted';
    expect(
      Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, because(run.jobIds)])),
    ).toEqual({
      public: 'public-repository',
      dependabot: 'untrusted-actor',
      comment: 'untrusted-event',
      push: 'trusted',
    });
  });
});

describe('judgeRun', () => {
  const policy = githubConfigSchema.parse({}).trust;
  const repo = { full_name: 'acme/app', private: true };
  const run = (fields: Partial<RunFacts>): RunFacts => ({
    id: 1,
    event: 'push',
    head_branch: 'main',
    repository: repo,
    head_repository: repo,
    actor: { login: 'dev' },
    ...fields,
  });
  const because = (fields: Partial<RunFacts>, custom = policy) =>
    judgeRun(run(fields), custom).untrustedBecause;

  it('judges a run by where its code comes from', () => {
    expect(because({})).toBeUndefined();
    expect(because({ event: 'pull_request', head_repository: { full_name: 'ACME/App' } })).toBeUndefined();
    expect(because({ event: 'pull_request', head_repository: { full_name: 'eve/app' } })).toBe('fork');
    // A deleted fork.
    expect(because({ event: 'pull_request', head_repository: null })).toBe('fork');
    expect(because({ event: 'schedule', head_repository: null })).toBeUndefined();
  });

  it('applies the policy to public repositories, actors and events', () => {
    const publicRepo = { full_name: 'acme/app', private: false };
    expect(because({ repository: publicRepo, head_repository: publicRepo })).toBe('public-repository');
    expect(
      because(
        { repository: publicRepo, head_repository: publicRepo },
        { ...policy, publicRepositories: 'trusted' },
      ),
    ).toBeUndefined();
    expect(because({ actor: { login: 'Dependabot[bot]' } })).toBe('untrusted-actor');
    expect(because({ triggering_actor: { login: 'dependabot[bot]' } })).toBe('untrusted-actor');
    expect(because({ event: 'workflow_run' })).toBeUndefined();
    expect(because({ event: 'workflow_run' }, { ...policy, untrustedEvents: ['workflow_run'] })).toBe(
      'untrusted-event',
    );
  });

  it('keeps the event and branch', () => {
    expect(judgeRun(run({ event: 'release', head_branch: 'v2' }), policy)).toEqual({
      event: 'release',
      headBranch: 'v2',
    });
  });
});
