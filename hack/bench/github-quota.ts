/**
 * GitHub quota benchmark: how many primary rate-limit points the GitHub source spends per job, with
 * webhooks and with polling only, and what it sends per hour at idle. Runs against the fake GitHub on
 * loopback with simulated time (a discrete-event loop), so an hour takes seconds. The baseline, measured
 * in the same run on the same scenario, is a naive poller of the kind the issue describes: every
 * repository every 30 s, no conditional requests.
 *
 *   node hack/bench/github-quota.ts   table and JSON on stdout (npm run bench runs it with the others)
 */
import Fastify from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { JobEvent } from '../../src/model/job.ts';
import { githubConfigSchema } from '../../src/sources/github/config.ts';
import { createGithubSource } from '../../src/sources/github/source.ts';
import { appKeys, FakeGithub, fakeAppAuth, ManualClock } from '../../test/support/fake-github/index.ts';
import { type Headline, runBench } from './lib/report.ts';

const REPOS = ['acme/app', 'acme/api', 'acme/web', 'acme/infra'];
const LABELS = ['self-hosted', 'linux'];
const RUNS = 20;
const JOBS_PER_RUN = 10;
const RUN_EVERY_MS = 30_000;
const JOB_DURATION_MS = 3 * 60_000;
const POD_START_MS = 15_000;
const SIMULATED_MS = 40 * 60_000;
const IDLE_MS = 60 * 60_000;
const NAIVE_INTERVAL_MS = 30_000;
const SECRET = 'bench-secret';
const APP_ID = 5150;
const PAT = 'ghp_bench_baseline_token';

interface Result {
  scenario: string;
  jobs: number;
  simulatedMinutes: number;
  requests: number;
  notModified: number;
  quotaPoints: number;
  quotaPerJob: number | null;
  byRoute: Record<string, number>;
  jobsStarted: number;
  jobsCompleted: number;
}

/** Arrivals of the scripted load: one run of JOBS_PER_RUN jobs every RUN_EVERY_MS, round robin over repos. */
const arrivals = Array.from({ length: RUNS }, (_, i) => ({
  at: i * RUN_EVERY_MS,
  repo: REPOS[i % REPOS.length] as string,
}));
const arrivalAt = (start: number, pending: readonly { at: number }[]) =>
  pending[0] ? start + pending[0].at : undefined;

function summarize(
  scenario: string,
  fake: FakeGithub,
  principal: string,
  startMs: number,
  endMs: number,
  jobs: number,
): Result {
  const requests = fake.requests.filter((r) => r.principal === principal);
  const byRoute: Record<string, number> = {};
  for (const r of requests)
    if (r.cost) byRoute[`${r.method} ${r.route}`] = (byRoute[`${r.method} ${r.route}`] ?? 0) + r.cost;
  const points = requests.reduce((sum, r) => sum + r.cost, 0);
  return {
    scenario,
    jobs,
    simulatedMinutes: Math.round((endMs - startMs) / 60_000),
    requests: requests.length,
    notModified: requests.filter((r) => r.status === 304).length,
    quotaPoints: points,
    quotaPerJob: jobs ? points / jobs : null,
    byRoute,
    jobsStarted: fake.jobs().filter((j) => j.status !== 'queued').length,
    jobsCompleted: fake.jobs().filter((j) => j.status === 'completed').length,
  };
}

/** Gantry's GitHub source with a stand-in launcher: every queued event gets a JIT runner whose pod starts later. */
async function runGantry(
  mode: 'webhook' | 'poll-only' | 'idle',
  backstopIntervalSeconds = 300,
): Promise<Result> {
  const clock = new ManualClock({ autoAdvance: true });
  const keys = appKeys();
  const fake = new FakeGithub({
    clock,
    repos: REPOS,
    app: { appId: APP_ID, publicKey: keys.publicKey },
    quotaLimit: 50_000,
  });
  const apiUrl = await fake.start();
  const http = Fastify();
  const queued: JobEvent[] = [];
  const webhooks = mode !== 'poll-only';
  const source = createGithubSource({
    config: githubConfigSchema.parse({
      enabled: true,
      apiUrl,
      auth: fakeAppAuth(fake, APP_ID),
      webhook: webhooks ? { secret: SECRET } : {},
      poll: { backstopIntervalSeconds },
      runners: { org: 'acme' },
    }),
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    webhooks: http,
    onEvent: (event) => {
      if (event.kind === 'queued') queued.push(event);
    },
    clock,
  });
  if (webhooks) {
    const url = await http.listen({ host: '127.0.0.1', port: 0 });
    fake.setWebhookTarget(`${url}/webhooks/github`, SECRET);
  }
  const start = clock.now();
  const end = start + (mode === 'idle' ? IDLE_MS : SIMULATED_MS);
  const pending = mode === 'idle' ? [] : [...arrivals];
  const podStarts: { at: number; name: string }[] = [];
  // Names come from a count of runners made, not of pods still starting: a reused name would replace
  // a runner that is busy with a job.
  let runnersMade = 0;
  let nextPoll = start;

  const settle = async () => {
    await fake.flushWebhooks();
    await source.whenIdle();
    // The launcher: one runner per queued job, its pod connecting POD_START_MS later.
    while (queued.length) {
      queued.shift();
      const name = `gantry-bench-${runnersMade++}`;
      await source.runners.create({ name, labels: LABELS, placement: { scope: 'org', group: 'Default' } });
      podStarts.push({ at: clock.now() + POD_START_MS, name });
    }
  };

  while (clock.now() < end) {
    const now = advanceToNextEvent(clock, fake, start, pending, [nextPoll, podStarts[0]?.at, end]);
    await settle();
    while (podStarts[0] && podStarts[0].at <= now) {
      const pod = podStarts.shift();
      if (pod) fake.startRunner(pod.name);
    }
    await settle();
    if (nextPoll <= now) {
      await source.pollOnce();
      await settle();
      nextPoll = now + source.nextPollDelay().ms;
    }
  }
  const result = summarize(
    `gantry, ${mode}${backstopIntervalSeconds === 300 ? '' : `, backstop ${backstopIntervalSeconds / 60} min`}`,
    fake,
    fake.installationPrincipal,
    start,
    end,
    mode === 'idle' ? 0 : RUNS * JOBS_PER_RUN,
  );
  await source.stop();
  await http.close();
  await fake.stop();
  return result;
}

/**
 * Moves simulated time to the next thing that happens (one of `times`, the next run arriving, or a
 * job the fake completes), lets the fake act on it and queues the runs that have arrived.
 */
function advanceToNextEvent(
  clock: ManualClock,
  fake: FakeGithub,
  start: number,
  pending: typeof arrivals,
  times: (number | undefined)[],
): number {
  const candidates = [...times, arrivalAt(start, pending), fake.nextDueAt() ?? undefined].filter(
    (t): t is number => t !== undefined,
  );
  clock.set(Math.max(clock.now(), Math.min(...candidates)));
  const now = clock.now();
  fake.tick();
  while (pending[0] && start + pending[0].at <= now) {
    const arrival = pending.shift();
    if (arrival) {
      fake.queueJobs({
        repo: arrival.repo,
        labels: LABELS,
        count: JOBS_PER_RUN,
        durationMs: JOB_DURATION_MS,
      });
    }
  }
  return now;
}

/** The baseline: poll every repository every 30 s without If-None-Match, read every active run's jobs. */
async function runNaive(mode: 'load' | 'idle'): Promise<Result> {
  const clock = new ManualClock({ autoAdvance: true });
  const fake = new FakeGithub({ clock, repos: REPOS, pats: [PAT], quotaLimit: 50_000 });
  const api = await fake.start();
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${api}${path}`, { headers: { authorization: `token ${PAT}` } });
    return (await res.json()) as T;
  };
  const start = clock.now();
  const end = start + (mode === 'idle' ? IDLE_MS : SIMULATED_MS);
  const pending = mode === 'idle' ? [] : [...arrivals];
  const podStarts: { at: number; name: string }[] = [];
  const seen = new Set<number>();
  let runners = 0;
  let nextPoll = start;
  while (clock.now() < end) {
    const now = advanceToNextEvent(clock, fake, start, pending, [nextPoll, podStarts[0]?.at, end]);
    while (podStarts[0] && podStarts[0].at <= now) {
      const pod = podStarts.shift();
      if (pod) fake.startRunner(pod.name);
    }
    if (nextPoll <= now) {
      for (const repo of REPOS) {
        for (const status of ['queued', 'in_progress']) {
          const { workflow_runs } = await get<{ workflow_runs: { id: number }[] }>(
            `/repos/${repo}/actions/runs?status=${status}&per_page=100`,
          );
          for (const run of workflow_runs) {
            const { jobs } = await get<{ jobs: { id: number; status: string }[] }>(
              `/repos/${repo}/actions/runs/${run.id}/jobs?per_page=100`,
            );
            for (const job of jobs) {
              if (job.status !== 'queued' || seen.has(job.id)) continue;
              seen.add(job.id);
              const name = `naive-${++runners}`;
              await fetch(`${api}/orgs/acme/actions/runners/generate-jitconfig`, {
                method: 'POST',
                headers: { authorization: `token ${PAT}`, 'content-type': 'application/json' },
                body: JSON.stringify({ name, runner_group_id: 1, labels: LABELS }),
              });
              podStarts.push({ at: now + POD_START_MS, name });
            }
          }
        }
      }
      nextPoll = now + NAIVE_INTERVAL_MS;
    }
  }
  const principal = fake.requests.find((r) => r.principal?.startsWith('pat:'))?.principal ?? '';
  const result = summarize(
    `baseline (naive 30 s poll), ${mode}`,
    fake,
    principal,
    start,
    end,
    mode === 'idle' ? 0 : RUNS * JOBS_PER_RUN,
  );
  await fake.stop();
  return result;
}

const round = (n: number | null, digits = 3) =>
  n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const started = performance.now();
  const webhook = await runGantry('webhook');
  const webhookSlowBackstop = await runGantry('webhook', 900);
  const pollOnly = await runGantry('poll-only');
  const idle = await runGantry('idle');
  const naive = await runNaive('load');
  const naiveIdle = await runNaive('idle');
  const perHour = (r: Result) => ({
    requestsPerHour: round((r.requests * 60) / r.simulatedMinutes, 1),
    quotaPerHour: round((r.quotaPoints * 60) / r.simulatedMinutes, 1),
  });

  const rows = [
    ['scenario', 'jobs', 'sim min', 'requests', '304s', 'quota points', 'points/job', 'vs baseline'],
    ...[webhook, webhookSlowBackstop, pollOnly, naive].map((r) => [
      r.scenario,
      String(r.jobs),
      String(r.simulatedMinutes),
      String(r.requests),
      String(r.notModified),
      String(r.quotaPoints),
      String(round(r.quotaPerJob)),
      naive.quotaPerJob ? `${round((r.quotaPerJob ?? 0) / naive.quotaPerJob, 3)}x` : '-',
    ]),
    ...[idle, naiveIdle].map((r) => [
      `${r.scenario} (per hour)`,
      '-',
      String(r.simulatedMinutes),
      String(perHour(r).requestsPerHour),
      String(r.notModified),
      String(perHour(r).quotaPerHour),
      '-',
      naiveIdle.quotaPoints ? `${round(r.quotaPoints / naiveIdle.quotaPoints, 3)}x quota` : '-',
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(
    `GitHub quota benchmark: ${RUNS} runs x ${JOBS_PER_RUN} jobs over ${REPOS.length} repos, a run every ${RUN_EVERY_MS / 1000} s, ` +
      `jobs ${JOB_DURATION_MS / 60_000} min, pods connect after ${POD_START_MS / 1000} s; idle = ${IDLE_MS / 60_000} min without jobs\n\n`,
  );
  process.stdout.write(`${line(rows[0] ?? [])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of rows.slice(1)) process.stdout.write(`${line(row)}\n`);
  process.stdout.write('\nquota points by route (webhook mode):\n');
  for (const [route, points] of Object.entries(webhook.byRoute))
    process.stdout.write(`  ${points}\t${route}\n`);
  process.stdout.write('quota points by route (poll-only mode):\n');
  for (const [route, points] of Object.entries(pollOnly.byRoute))
    process.stdout.write(`  ${points}\t${route}\n`);

  const json = {
    benchmark: 'github-quota',
    scenario: {
      runs: RUNS,
      jobsPerRun: JOBS_PER_RUN,
      repos: REPOS.length,
      runEverySeconds: RUN_EVERY_MS / 1000,
    },
    webhook: { ...webhook, quotaPerJob: round(webhook.quotaPerJob) },
    webhookBackstop15min: { ...webhookSlowBackstop, quotaPerJob: round(webhookSlowBackstop.quotaPerJob) },
    pollOnly: { ...pollOnly, quotaPerJob: round(pollOnly.quotaPerJob) },
    idle: { ...perHour(idle), ...idle },
    baseline: { load: naive, idle: { ...perHour(naiveIdle), ...naiveIdle } },
    ratios: {
      webhookVsBaselinePerJob: round((webhook.quotaPerJob ?? 0) / (naive.quotaPerJob ?? 1)),
      pollOnlyVsBaselinePerJob: round((pollOnly.quotaPerJob ?? 0) / (naive.quotaPerJob ?? 1)),
      idleQuotaVsBaseline: round(idle.quotaPoints / Math.max(1, naiveIdle.quotaPoints)),
      idleRequestsVsBaseline: round(idle.requests / Math.max(1, naiveIdle.requests)),
    },
    headline: headline(webhook, pollOnly, idle, naive, naiveIdle, perHour),
    wallSeconds: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(`\n${JSON.stringify(json)}\n`);
}

/** The lines of `npm run bench`'s summary: quota per job in both modes, and the idle hour. */
function headline(
  webhook: Result,
  pollOnly: Result,
  idle: Result,
  naive: Result,
  naiveIdle: Result,
  perHour: (r: Result) => { requestsPerHour: number | null; quotaPerHour: number | null },
): Headline[] {
  const perJob = (r: Result) => (r.quotaPerJob ?? 0).toFixed(2);
  // By the route's last segment (generate-jitconfig, runs, jobs), the small ones together.
  const routes = (r: Result) => {
    const perJob = new Map<string, number>();
    for (const [route, points] of Object.entries(r.byRoute)) {
      const share = points / Math.max(1, r.jobs);
      const name = share < 0.02 ? 'other' : (route.split('/').at(-1) ?? route);
      perJob.set(name, (perJob.get(name) ?? 0) + share);
    }
    return [...perJob]
      .sort(([a, x], [b, y]) => Number(a === 'other') - Number(b === 'other') || y - x)
      .map(([name, share]) => `${name} ${share.toFixed(2)}`)
      .join('; ');
  };
  return [
    {
      what: 'GitHub quota points per job, webhook mode (`github-quota`)',
      figure: `${perJob(webhook)} (${routes(webhook)})`,
      baseline: `naive poller: ${perJob(naive)}`,
    },
    {
      what: 'GitHub quota points per job, poll-only',
      figure: `${perJob(pollOnly)} (${routes(pollOnly)})`,
      baseline: `naive poller: ${perJob(naive)}`,
    },
    {
      what: 'GitHub requests per idle hour',
      figure:
        `${perHour(idle).requestsPerHour?.toLocaleString('en')} requests, ${perHour(idle).quotaPerHour} quota points ` +
        '(the rest are free 304s)',
      baseline: `naive poller: ${perHour(naiveIdle).quotaPerHour} points`,
    },
  ];
}

runBench(main);
