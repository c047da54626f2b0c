import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenAuth } from '../../../src/sources/github/auth.ts';
import { type CachedBody, createGithubClient } from '../../../src/sources/github/client.ts';
import { createGithubMetrics } from '../../../src/sources/github/metrics.ts';
import { runTraceExport } from '../../../src/trace/command.ts';
import { parseTrace, readTraceFile } from '../../../src/trace/format.ts';
import { exportFromGithub, reducedEtagStore } from '../../../src/trace/github-export.ts';
import {
  appKeys,
  FakeGithub,
  fakeAppAuth,
  loadOpenApiValidators,
  ManualClock,
} from '../../support/fake-github/index.ts';

// `gantry trace export` against the fake GitHub, which answers as GitHub's REST description says:
// Link pagination, ETag/304, x-ratelimit-* over a quota that runs out and resets, secondary limits,
// the 1,000-result cap of filtered listings.

const PAT = 'ghp_export_test_token';
const START = Date.parse('2026-01-05T09:00:00Z');
const LABELS = ['self-hosted', 'linux', 'lint'];

const fakes: FakeGithub[] = [];
afterEach(async () => {
  for (const fake of fakes.splice(0)) await fake.stop();
});

/** A GitHub client of the fake, authenticated with the test's token. */
function patClient(
  fake: FakeGithub,
  clock: ManualClock,
  extra: Partial<Parameters<typeof createGithubClient>[0]> = {},
) {
  return createGithubClient({
    baseUrl: fake.apiUrl,
    authorize: () => createTokenAuth(PAT).authorization(),
    onUnauthorized: () => false,
    clock,
    logger: pino({ level: 'silent' }),
    metrics: createGithubMetrics(new Registry()),
    timeoutMs: 5_000,
    maxRetries: 2,
    ...extra,
  });
}

async function startFake(options: { quotaLimit?: number; repos?: string[] } = {}) {
  const clock = new ManualClock({ startMs: START, autoAdvance: true });
  const fake = new FakeGithub({
    clock,
    repos: options.repos ?? ['acme/app', 'acme/lib'],
    publicRepos: ['acme/lib'],
    // The test's runners are in the Default group: let it take the public repository's jobs too.
    defaultGroup: { allowsPublicRepositories: true },
    pats: [PAT],
    recordResponses: true,
    ...(options.quotaLimit !== undefined ? { quotaLimit: options.quotaLimit } : {}),
  });
  await fake.start();
  fakes.push(fake);
  return { fake, clock };
}

let runnerCount = 0;

/** Queues runs of `jobsPerRun` jobs, lets runners take them after `waitMs`, and runs them for `durationMs`. */
function runJobs(
  fake: FakeGithub,
  clock: ManualClock,
  options: {
    repo: string;
    runs: number;
    jobsPerRun: number;
    waitMs: number;
    durationMs: number;
    fromFork?: string;
  },
) {
  const queued = fake.queueJobs({
    repo: options.repo,
    labels: LABELS,
    count: options.runs * options.jobsPerRun,
    jobsPerRun: options.jobsPerRun,
    durationMs: options.durationMs,
    ...(options.fromFork ? { fromFork: options.fromFork } : {}),
  });
  clock.advance(options.waitMs);
  for (let i = 0; i < queued.jobIds.length; i++) {
    const name = `runner-${++runnerCount}`;
    fake.registerRunner(name, LABELS);
    fake.startRunner(name);
  }
  clock.advance(options.durationMs);
  fake.tick();
  return queued;
}

async function tempDir() {
  return mkdtemp(join(tmpdir(), 'gantry-export-'));
}

describe('gantry trace export from GitHub', () => {
  it('follows every page of runs and jobs in the window, and writes a trace the simulator reads', async () => {
    const { fake, clock } = await startFake();
    // Before the window: left out.
    runJobs(fake, clock, { repo: 'acme/app', runs: 1, jobsPerRun: 2, waitMs: 5_000, durationMs: 60_000 });
    clock.advance(3_600_000);
    const since = clock.now();
    const inWindow = [
      runJobs(fake, clock, { repo: 'acme/app', runs: 3, jobsPerRun: 3, waitMs: 12_000, durationMs: 90_000 }),
      runJobs(fake, clock, { repo: 'acme/lib', runs: 2, jobsPerRun: 1, waitMs: 2_000, durationMs: 30_000 }),
      runJobs(fake, clock, {
        repo: 'acme/app',
        runs: 1,
        jobsPerRun: 2,
        waitMs: 40_000,
        durationMs: 45_000,
        fromFork: 'someone/app',
      }),
    ];
    // Still queued at the export: listed, but left out of the trace.
    fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1 });
    clock.advance(60_000);

    const dir = await tempDir();
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${PAT}\n`);
    const out = join(dir, 'trace.jsonl');
    const stderr: string[] = [];
    await runTraceExport(
      {
        repos: ['acme/app', 'acme/lib'],
        since: new Date(since).toISOString(),
        tokenFile,
        apiUrl: fake.apiUrl,
        outPath: out,
      },
      { stdout: { write: () => true }, stderr: { write: (t: string) => stderr.push(t) }, clock, perPage: 2 },
    );

    const trace = await readTraceFile(out);
    expect(trace.header).toMatchObject({ source: 'github', repositories: ['acme/app', 'acme/lib'] });
    const exported = new Set(trace.jobs.map((j) => j.job));
    const expected = inWindow.flatMap((q) => q.jobIds.map(String));
    expect([...exported].sort()).toEqual([...expected].sort());
    // What GitHub recorded: created, started after the wait, ran for its duration.
    const first = trace.jobs.find((j) => j.job === String(inWindow[0]?.jobIds[0]));
    expect(first).toMatchObject({
      repo: 'acme/app',
      labels: LABELS,
      fork: false,
      visibility: 'private',
      event: 'push',
    });
    expect((first?.started ?? 0) - (first?.created ?? 0)).toBe(12_000);
    expect(first?.durationMs).toBe(90_000);
    expect(trace.jobs.find((j) => j.repo === 'acme/lib')?.visibility).toBe('public');
    const forked = trace.jobs.filter((j) => j.fork);
    expect(forked.map((j) => j.job).sort()).toEqual(inWindow[2]?.jobIds.map(String).sort());
    expect(forked[0]?.event).toBe('pull_request');

    // Both listings were paginated (2 per page) and asked for the window only.
    const runsPages = fake.requests.filter((r) => r.route === '/repos/{owner}/{repo}/actions/runs');
    expect(runsPages.some((r) => new URL(r.url).searchParams.get('page') === '2')).toBe(true);
    expect(runsPages.every((r) => new URL(r.url).searchParams.get('created')?.includes('..'))).toBe(true);
    const jobPages = fake.requests.filter((r) => r.route.endsWith('/jobs'));
    expect(jobPages.some((r) => new URL(r.url).searchParams.get('page') === '2')).toBe(true);
    expect(stderr.join('')).toContain(`exported ${expected.length} jobs`);
    expect(stderr.join('')).toContain('left out 1 unfinished jobs');

    // Every answer the export got is one GitHub documents.
    const validators = loadOpenApiValidators();
    for (const response of fake.responses.filter((r) => r.status === 200)) {
      const validate = validators.response(response.method, response.route, response.status);
      expect(
        validate(response.body),
        `${response.route}: ${JSON.stringify(validate.errors?.slice(0, 2))}`,
      ).toBe(true);
    }
  });

  it('waits for the rate limit to reset and for a secondary limit, and finishes', async () => {
    const { fake, clock } = await startFake({ quotaLimit: 6 });
    for (let i = 0; i < 4; i++)
      runJobs(fake, clock, { repo: 'acme/app', runs: 2, jobsPerRun: 1, waitMs: 1_000, durationMs: 10_000 });
    fake.faults.secondaryLimit = { count: 1, status: 403, retryAfterSeconds: 60 };
    const client = patClient(fake, clock);
    const jobs: string[] = [];
    const waits: number[] = [];
    const report = await exportFromGithub({
      client,
      clock,
      repos: ['acme/app'],
      since: START,
      until: clock.now(),
      perPage: 3,
      onProgress: (p) => {
        if (p.waitingUntil !== undefined) waits.push(p.waitingUntil);
      },
      onJob: (job) => jobs.push(job.job),
    });
    // 8 runs: 3 pages of runs and 8 of jobs, more than twice the quota of 6.
    expect(jobs).toHaveLength(8);
    expect(report.runs).toBe(8);
    expect(new Set(jobs).size).toBe(8);
    // It waited: for the secondary limit's minute, then for each reset of the primary quota.
    expect(waits.length).toBeGreaterThanOrEqual(2);
    const secondary = fake.requests.filter((r) => r.status === 403 && r.cost === 0);
    expect(secondary.length).toBeGreaterThanOrEqual(1);
    expect(clock.sleeps.some((ms) => ms >= 59_000 && ms <= 61_000)).toBe(true);
    expect(clock.sleeps.some((ms) => ms > 30 * 60_000)).toBe(true);
    // Never more than the quota in one window: the export held back instead of being refused for it.
    const refusedForQuota = fake.responses.filter(
      (r) => r.status === 403 && JSON.stringify(r.body).includes('API rate limit exceeded'),
    );
    expect(refusedForQuota).toHaveLength(0);
  });

  it('keeps some quota for Gantry: it waits for the reset rather than spend the last of it', async () => {
    const { fake, clock } = await startFake({ quotaLimit: 10 });
    for (let i = 0; i < 3; i++)
      runJobs(fake, clock, { repo: 'acme/app', runs: 2, jobsPerRun: 1, waitMs: 1_000, durationMs: 10_000 });
    const client = patClient(fake, clock);
    const jobs: string[] = [];
    let lowest = Number.POSITIVE_INFINITY;
    await exportFromGithub({
      client,
      clock,
      repos: ['acme/app'],
      since: START,
      until: clock.now(),
      keepQuota: 4,
      onProgress: (p) => {
        if (p.quota) lowest = Math.min(lowest, p.quota.remaining);
      },
      onJob: (job) => jobs.push(job.job),
    });
    expect(jobs).toHaveLength(6);
    expect(lowest).toBeGreaterThanOrEqual(4);
    expect(clock.sleeps.some((ms) => ms > 30 * 60_000)).toBe(true);
  });

  it('asks conditionally: exporting the same window again costs no quota', async () => {
    const { fake, clock } = await startFake();
    for (let i = 0; i < 3; i++)
      runJobs(fake, clock, { repo: 'acme/app', runs: 2, jobsPerRun: 2, waitMs: 1_000, durationMs: 10_000 });
    const dir = await tempDir();
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, PAT);
    const cachePath = join(dir, 'etags.json');
    const exportOnce = async (out: string) => {
      const before = fake.requests.length;
      const stderr: string[] = [];
      await runTraceExport(
        {
          repos: ['acme/app'],
          since: new Date(START).toISOString(),
          until: new Date(clock.now()).toISOString(),
          tokenFile,
          apiUrl: fake.apiUrl,
          cachePath,
          outPath: out,
        },
        {
          stdout: { write: () => true },
          stderr: { write: (t: string) => stderr.push(t) },
          clock,
          perPage: 2,
        },
      );
      const requests = fake.requests.slice(before);
      return { requests, cost: requests.reduce((sum, r) => sum + r.cost, 0), stderr: stderr.join('') };
    };
    const first = await exportOnce(join(dir, 'first.jsonl'));
    const second = await exportOnce(join(dir, 'second.jsonl'));
    expect(first.cost).toBeGreaterThan(5);
    expect(second.requests.length).toBe(first.requests.length);
    expect(second.requests.every((r) => r.status === 304)).toBe(true);
    expect(second.cost).toBe(0);
    expect(second.stderr).toContain(`(${second.requests.length} pages unchanged since the cache)`);
    // The same jobs, read from the cached pages: everything but the header's export time.
    const jobLines = async (name: string) => (await readFile(join(dir, name), 'utf8')).split('\n').slice(1);
    expect(await jobLines('second.jsonl')).toEqual(await jobLines('first.jsonl'));
    expect((await jobLines('first.jsonl')).filter(Boolean)).toHaveLength(12);
    // The cache keeps only what a trace needs of each page.
    const cache = JSON.parse(await readFile(cachePath, 'utf8')) as { entries: [string, CachedBody][] };
    const runsPage = cache.entries.find(([key]) => key.includes('/actions/runs?'))?.[1].data as {
      workflow_runs: Record<string, unknown>[];
    };
    expect(Object.keys(runsPage.workflow_runs[0] ?? {}).sort()).toEqual(
      [
        'actor',
        'event',
        'head_branch',
        'head_repository',
        'id',
        'repository',
        'run_attempt',
        'triggering_actor',
      ].sort(),
    );
  });

  it('splits a window GitHub would cut at 1,000 runs until each half lists all of its runs', async () => {
    const { fake, clock } = await startFake({ repos: ['acme/busy'] });
    for (let i = 0; i < 1_010; i++) {
      fake.queueJobs({ repo: 'acme/busy', labels: LABELS, count: 1 });
      clock.advance(1_000);
    }
    const client = patClient(fake, clock, { etagStore: reducedEtagStore(new Map()) });
    const report = await exportFromGithub({
      client,
      clock,
      repos: ['acme/busy'],
      since: START,
      until: clock.now(),
      onJob: () => {},
    });
    expect(report.runs).toBe(1_010);
    expect(report.unfinished).toBe(1_010);
    expect(report.truncatedWindows).toBe(0);
    const windows = new Set(
      fake.requests
        .filter((r) => r.route === '/repos/{owner}/{repo}/actions/runs')
        .map((r) => new URL(r.url).searchParams.get('created')),
    );
    expect(windows.size).toBe(3);
  });

  it('reads with the GitHub App of a Gantry config, asking only to read Actions', async () => {
    const clock = new ManualClock({ startMs: START, autoAdvance: true });
    const fake = new FakeGithub({
      clock,
      repos: ['acme/app'],
      app: { appId: 99, publicKey: appKeys().publicKey },
    });
    await fake.start();
    fakes.push(fake);
    runJobs(fake, clock, { repo: 'acme/app', runs: 2, jobsPerRun: 2, waitMs: 3_000, durationMs: 20_000 });
    const dir = await tempDir();
    const configPath = join(dir, 'gantry.yaml');
    await writeFile(
      configPath,
      JSON.stringify({
        github: { apiUrl: fake.apiUrl, auth: fakeAppAuth(fake, 99), repositories: ['acme/app'] },
      }),
    );
    const out: string[] = [];
    await runTraceExport(
      { repos: [], since: new Date(START).toISOString(), configPath },
      { stdout: { write: (t: string) => out.push(t) }, stderr: { write: () => true }, clock },
    );
    const trace = parseTrace(out.join(''));
    expect(trace.jobs).toHaveLength(4);
    expect(fake.issuedTokens).toEqual([{ permissions: { actions: 'read', metadata: 'read' } }]);
  });

  it('names a repository GitHub does not know', async () => {
    const { fake, clock } = await startFake();
    const dir = await tempDir();
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, PAT);
    await expect(
      runTraceExport(
        { repos: ['acme/nope'], since: '1d', tokenFile, apiUrl: fake.apiUrl },
        { stdout: { write: () => true }, stderr: { write: () => true }, clock },
      ),
    ).rejects.toThrow('repository acme/nope: not found, or these credentials cannot read its Actions runs');
  });

  it('refuses a bad window and a missing repository with one clear line', async () => {
    const io = { stdout: { write: () => true }, stderr: { write: () => true } };
    await expect(
      runTraceExport({ repos: ['a/b'], since: 'last week', tokenFile: '/nonexistent' }, io),
    ).rejects.toThrow(
      'option --since: expected an RFC 3339 time (2026-01-05T00:00:00Z) or an age (7d, 12h), got "last week"',
    );
    await expect(
      runTraceExport({ repos: ['a/b'], since: '1d', until: '2d', tokenFile: '/x' }, io),
    ).rejects.toThrow('option --until: expected a time after --since');
    await expect(
      runTraceExport({ repos: ['a/b'], since: '1d', tokenFile: '/nonexistent/token' }, io),
    ).rejects.toThrow('cannot read token file /nonexistent/token: no such file');
  });
});
