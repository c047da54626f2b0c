/**
 * GitHub quota benchmark: how many primary rate-limit points Gantry's GitHub side spends per job, with
 * webhooks and with polling only, across the shapes of load users have (1, 3 and 10 jobs per workflow
 * run, at 2 and at 20 jobs a minute), and what it sends per hour at idle.
 *
 * It runs the real GitHub source and the real registrar (registration, removal by id, the sweep of
 * stale registrations) against the fake GitHub on loopback, in simulated time (a discrete-event loop),
 * so 40 minutes take seconds. Kubernetes is played by a launcher stand-in that does what the real one
 * does on GitHub's side: one runner per queued job; its pod connects 15 s later and takes whatever job
 * GitHub hands it; a runner that ran its job is gone (GitHub removes it, Gantry asks nothing); one
 * left idle for the idle timeout is unregistered. The fake sends workflow_run and workflow_job
 * deliveries as GitHub does. The baseline, measured in the same run on the same load, is a naive
 * poller: every repository every 30 s, no conditional requests.
 *
 *   node hack/bench/github-quota.ts   tables and JSON on stdout (npm run bench runs it with the others)
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { classesSchema } from '../../src/classes/schema.ts';
import { createWebhookServer } from '../../src/http/server.ts';
import type { JobEvent } from '../../src/model/job.ts';
import { githubConfigSchema } from '../../src/sources/github/config.ts';
import { createGithubRegistrar } from '../../src/sources/github/registrar.ts';
import { createGithubSource } from '../../src/sources/github/source.ts';
import { appKeys, FakeGithub, fakeAppAuth, ManualClock } from '../../test/support/fake-github/index.ts';
import { emitJson, type Headline, printTable, round, runBench } from './lib/report.ts';

const REPOS = ['acme/app', 'acme/api', 'acme/web', 'acme/infra'];
const LABELS = ['self-hosted', 'linux'];
const JOB_DURATION_MS = 3 * 60_000;
const POD_START_MS = 15_000;
const IDLE_TIMEOUT_MS = 5 * 60_000;
const SWEEP_EVERY_MS = 15 * 60_000;
const SIMULATED_MS = 40 * 60_000;
const IDLE_MS = 60 * 60_000;
const NAIVE_INTERVAL_MS = 30_000;
const SECRET = 'bench-secret';
const APP_ID = 5150;
const PAT = 'ghp_bench_baseline_token';
const CLASSES = classesSchema.parse({ bench: { match: { github: { labels: LABELS } } } });

/** A load: jobs arrive at `jobsPerMinute`, `jobsPerRun` to a workflow run, round robin over REPOS. */
interface Shape {
  jobsPerRun: number;
  jobsPerMinute: number;
}

const SHAPES: Shape[] = [1, 3, 10].flatMap((jobsPerRun) =>
  [20, 2].map((jobsPerMinute) => ({ jobsPerRun, jobsPerMinute })),
);

interface Result {
  scenario: string;
  shape?: Shape;
  jobs: number;
  simulatedMinutes: number;
  requests: number;
  notModified: number;
  quotaPoints: number;
  quotaPerJob: number | null;
  byRoute: Record<string, number>;
  jobsCompleted: number;
}

/** The runs of a shape over SIMULATED_MS. */
function arrivalsOf(shape: Shape | undefined): { at: number; repo: string; count: number }[] {
  if (!shape) return [];
  const runEveryMs = (60_000 * shape.jobsPerRun) / shape.jobsPerMinute;
  // Runs stop 5 minutes before the end, so the last jobs finish within the window.
  const runs = Math.floor((SIMULATED_MS - 5 * 60_000 - JOB_DURATION_MS) / runEveryMs);
  return Array.from({ length: runs }, (_, i) => ({
    at: i * runEveryMs,
    repo: REPOS[i % REPOS.length] as string,
    count: shape.jobsPerRun,
  }));
}

function summarize(
  scenario: string,
  shape: Shape | undefined,
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
    ...(shape ? { shape } : {}),
    jobs,
    simulatedMinutes: Math.round((endMs - startMs) / 60_000),
    requests: requests.length,
    notModified: requests.filter((r) => r.status === 304).length,
    quotaPoints: points,
    quotaPerJob: jobs ? points / jobs : null,
    byRoute,
    jobsCompleted: fake.jobs().filter((j) => j.status === 'completed').length,
  };
}

/** A runner pod as the stand-in launcher keeps it. */
interface Pod {
  name: string;
  connectsAt: number;
  connected: boolean;
  /** When it connected and took no job: it waits, idle. */
  idleSince?: number;
}

/** Gantry's GitHub side, the registrar and the launcher stand-in, over one load. */
async function runGantry(mode: 'webhook' | 'poll-only' | 'idle', shape?: Shape): Promise<Result> {
  const clock = new ManualClock({ autoAdvance: true });
  const keys = appKeys();
  const fake = new FakeGithub({
    clock,
    repos: REPOS,
    app: { appId: APP_ID, publicKey: keys.publicKey },
    quotaLimit: 100_000,
  });
  const apiUrl = await fake.start();
  const logger = pino({ level: 'silent' });
  const http = createWebhookServer(logger);
  const queued: JobEvent[] = [];
  const webhooks = mode !== 'poll-only';
  const config = githubConfigSchema.parse({
    enabled: true,
    apiUrl,
    auth: fakeAppAuth(fake, APP_ID),
    webhook: webhooks ? { secret: SECRET } : {},
    runners: { org: 'acme' },
  });
  const metrics = new Registry();
  const source = createGithubSource({
    config,
    logger,
    metrics,
    webhooks: http,
    runnerScopes: new Set(['org']),
    onEvent: (event) => {
      if (event.kind === 'queued') queued.push(event);
    },
    clock,
  });
  const pods = new Map<string, Pod>();
  const registrar = createGithubRegistrar({
    runners: source.runners,
    classes: CLASSES,
    livePods: () => new Set(pods.keys()),
    repositories: () => [],
    logger,
    metrics,
    cleanupIntervalMs: SWEEP_EVERY_MS,
    unsafePlacement: 'warn',
    placementCheckIntervalMs: 600_000,
  });
  if (webhooks) {
    const url = await http.listen({ host: '127.0.0.1', port: 0 });
    fake.setWebhookTarget(`${url}/webhooks/github`, SECRET);
  }
  const start = clock.now();
  const end = start + (mode === 'idle' ? IDLE_MS : SIMULATED_MS);
  const pending = arrivalsOf(mode === 'idle' ? undefined : shape);
  const jobs = pending.reduce((sum, run) => sum + run.count, 0);
  let runnersMade = 0;
  let nextPoll = start;
  let nextSweep = start + SWEEP_EVERY_MS;

  const settle = async () => {
    await fake.flushWebhooks();
    await source.whenIdle();
    // One runner per queued job, its pod connecting POD_START_MS later.
    while (queued.length) {
      queued.shift();
      const name = `gantry-bench-${(runnersMade++).toString(16).padStart(10, '0')}`;
      await registrar.register(
        {
          kind: 'create-runner',
          className: 'bench',
          namespace: 'bench',
          nameSeed: name,
          runnerName: name,
          reason: 'queued-jobs',
        },
        CLASSES.bench as (typeof CLASSES)[string],
      );
      pods.set(name, { name, connectsAt: clock.now() + POD_START_MS, connected: false });
    }
  };

  /** Pods connect, runners that ran their job are gone, idle ones past the timeout are unregistered. */
  const launcher = async (now: number) => {
    const registered = new Map(fake.runners().map((r) => [r.name, r]));
    for (const pod of [...pods.values()]) {
      const runner = registered.get(pod.name);
      if (!pod.connected && pod.connectsAt <= now) {
        pod.connected = true;
        if (fake.startRunner(pod.name) === null) pod.idleSince = now;
        continue;
      }
      // GitHub removed it after its job: the pod ends, and Gantry asks GitHub nothing about it.
      if (pod.connected && !runner) pods.delete(pod.name);
      else if (pod.idleSince !== undefined && runner?.busy) delete pod.idleSince;
      else if (pod.idleSince !== undefined && now - pod.idleSince >= IDLE_TIMEOUT_MS) {
        const answer = await registrar.unregister({ runnerName: pod.name, className: 'bench' });
        // Busy: it took a job as it was being removed; it goes when GitHub removes it.
        if (answer === 'busy') delete pod.idleSince;
        else pods.delete(pod.name);
      }
    }
  };

  while (clock.now() < end) {
    const times = [
      nextPoll,
      nextSweep,
      end,
      ...[...pods.values()].map((p) => (p.connected ? undefined : p.connectsAt)),
    ];
    const idleEnds = [...pods.values()].flatMap((p) =>
      p.idleSince === undefined ? [] : [p.idleSince + IDLE_TIMEOUT_MS],
    );
    const now = advanceToNextEvent(clock, fake, start, pending, [...times, ...idleEnds]);
    await settle();
    await launcher(now);
    await settle();
    if (nextPoll <= now) {
      await source.pollOnce();
      await settle();
      nextPoll = now + source.nextPollDelay().ms;
    }
    if (nextSweep <= now) {
      await registrar.sweep();
      nextSweep = now + SWEEP_EVERY_MS;
    }
  }
  const label =
    mode === 'idle'
      ? 'gantry, idle'
      : `gantry, ${mode}, ${shape?.jobsPerRun}/run at ${shape?.jobsPerMinute}/min`;
  const result = summarize(label, shape, fake, fake.installationPrincipal, start, end, jobs);
  await registrar.stop();
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
  pending: { at: number; repo: string; count: number }[],
  times: (number | undefined)[],
): number {
  const next = pending[0] ? start + pending[0].at : undefined;
  const candidates = [...times, next, fake.nextDueAt() ?? undefined].filter(
    (t): t is number => t !== undefined && t >= clock.now(),
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
        count: arrival.count,
        durationMs: JOB_DURATION_MS,
      });
    }
  }
  return now;
}

/** The baseline: poll every repository every 30 s without If-None-Match, read every active run's jobs. */
async function runNaive(mode: 'load' | 'idle', shape?: Shape): Promise<Result> {
  const clock = new ManualClock({ autoAdvance: true });
  const fake = new FakeGithub({ clock, repos: REPOS, pats: [PAT], quotaLimit: 100_000 });
  const api = await fake.start();
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${api}${path}`, { headers: { authorization: `token ${PAT}` } });
    return (await res.json()) as T;
  };
  const start = clock.now();
  const end = start + (mode === 'idle' ? IDLE_MS : SIMULATED_MS);
  const pending = arrivalsOf(mode === 'idle' ? undefined : shape);
  const jobs = pending.reduce((sum, run) => sum + run.count, 0);
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
            const { jobs: runJobs } = await get<{ jobs: { id: number; status: string }[] }>(
              `/repos/${repo}/actions/runs/${run.id}/jobs?per_page=100`,
            );
            for (const job of runJobs) {
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
  const label =
    mode === 'idle'
      ? 'naive poller, idle'
      : `naive poller, ${shape?.jobsPerRun}/run at ${shape?.jobsPerMinute}/min`;
  const result = summarize(label, shape, fake, principal, start, end, jobs);
  await fake.stop();
  return result;
}

/** Quota points per job, split by route's last path segment (generate-jitconfig, runs, jobs, …). */
function perJobByRoute(r: Result): string {
  const perJob = new Map<string, number>();
  for (const [route, points] of Object.entries(r.byRoute)) {
    const name =
      route
        .replace(/\{[^}]+\}/g, '')
        .split('/')
        .filter(Boolean)
        .slice(-1)[0] ?? route;
    perJob.set(name, (perJob.get(name) ?? 0) + points / Math.max(1, r.jobs));
  }
  return [...perJob]
    .sort(([, a], [, b]) => b - a)
    .map(([name, share]) => `${name} ${share.toFixed(3)}`)
    .join('; ');
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows: { shape: Shape; webhook: Result; pollOnly: Result; naive: Result }[] = [];
  for (const shape of SHAPES) {
    rows.push({
      shape,
      webhook: await runGantry('webhook', shape),
      pollOnly: await runGantry('poll-only', shape),
      naive: await runNaive('load', shape),
    });
  }
  const idle = await runGantry('idle');
  const naiveIdle = await runNaive('idle');
  const perJob = (r: Result) => (r.quotaPerJob ?? 0).toFixed(3);
  printTable(
    `GitHub quota points per job: ${REPOS.length} repositories, jobs of ${JOB_DURATION_MS / 60_000} min, pods connect after ${POD_START_MS / 1000} s, ${SIMULATED_MS / 60_000} min simulated`,
    ['jobs/run', 'jobs/min', 'jobs', 'webhook', 'poll-only', 'naive poller', 'webhook vs naive'],
    rows.map(({ shape, webhook, pollOnly, naive }) => [
      String(shape.jobsPerRun),
      String(shape.jobsPerMinute),
      String(webhook.jobs),
      perJob(webhook),
      perJob(pollOnly),
      perJob(naive),
      `${round((webhook.quotaPerJob ?? 0) / (naive.quotaPerJob ?? 1), 3)}x`,
    ]),
  );
  printTable(
    'Where the points go, per job',
    ['load', 'webhook mode', 'poll-only'],
    rows.map(({ shape, webhook, pollOnly }) => [
      `${shape.jobsPerRun}/run at ${shape.jobsPerMinute}/min`,
      perJobByRoute(webhook),
      perJobByRoute(pollOnly),
    ]),
  );
  const hour = (r: Result) => ({
    requests: round((r.requests * 60) / r.simulatedMinutes, 1),
    points: round((r.quotaPoints * 60) / r.simulatedMinutes, 1),
  });
  printTable(
    'An idle hour',
    ['who', 'requests/h', '304s', 'points/h'],
    [idle, naiveIdle].map((r) => [
      r.scenario,
      String(hour(r).requests),
      String(r.notModified),
      String(hour(r).points),
    ]),
  );
  const incomplete = rows.flatMap(({ webhook, pollOnly }) =>
    [webhook, pollOnly]
      .filter((r) => r.jobsCompleted < r.jobs)
      .map((r) => `${r.scenario}: ${r.jobsCompleted}/${r.jobs}`),
  );
  if (incomplete.length) throw new Error(`jobs left unfinished: ${incomplete.join(', ')}`);
  const range = (pick: (row: (typeof rows)[number]) => Result) => {
    const values = rows.map((row) => pick(row).quotaPerJob ?? 0);
    return `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
  };
  const headline: Headline[] = [
    {
      what: 'GitHub quota points per job, webhook mode, 1/3/10 jobs per run at 2 and 20 jobs/min (`github-quota`)',
      figure: rows
        .map(({ shape, webhook }) => `${shape.jobsPerRun}/run ${shape.jobsPerMinute}/min: ${perJob(webhook)}`)
        .join('; '),
      baseline: `naive poller: ${range((row) => row.naive)}`,
    },
    {
      what: 'GitHub quota points per job, poll-only, same loads',
      figure: rows
        .map(
          ({ shape, pollOnly }) => `${shape.jobsPerRun}/run ${shape.jobsPerMinute}/min: ${perJob(pollOnly)}`,
        )
        .join('; '),
      baseline: `naive poller: ${range((row) => row.naive)}`,
    },
    {
      what: 'GitHub requests per idle hour',
      figure: `${hour(idle).requests} requests, ${hour(idle).points} quota points (the rest are free 304s)`,
      baseline: `naive poller: ${hour(naiveIdle).points} points`,
    },
  ];
  emitJson({
    benchmark: 'github-quota',
    load: {
      repos: REPOS.length,
      jobMinutes: JOB_DURATION_MS / 60_000,
      podStartSeconds: POD_START_MS / 1000,
      simulatedMinutes: SIMULATED_MS / 60_000,
    },
    shapes: rows.map(({ shape, webhook, pollOnly, naive }) => ({
      ...shape,
      jobs: webhook.jobs,
      webhook: { perJob: round(webhook.quotaPerJob ?? 0), byRoute: webhook.byRoute },
      pollOnly: { perJob: round(pollOnly.quotaPerJob ?? 0), byRoute: pollOnly.byRoute },
      naive: { perJob: round(naive.quotaPerJob ?? 0) },
    })),
    idle: { ...hour(idle), notModified: idle.notModified, byRoute: idle.byRoute },
    naiveIdle: hour(naiveIdle),
    headline,
    wallSeconds: round((performance.now() - started) / 1000, 1),
  });
}

runBench(main);
