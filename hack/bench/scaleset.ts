/**
 * Scale-set mode beside webhook mode, in the same run, on the same load and control plane: what each
 * costs GitHub per job (api.github.com quota points and requests; calls to the Actions service and
 * its message queue), how long a job waits from the moment Gantry hears of it to its runner pod
 * Running (against the floor: a bare loop creating the same pods at the same rate), and what each
 * sends while idle, per hour and per class.
 *
 * Both modes run Gantry in-process with three classes (one takes the load, two stay idle), against the
 * local control plane (KWOK runs the pods) and the fakes: the fake GitHub with signed webhooks for
 * webhook mode; the fake Actions service in front of it for scale sets, with immediate acquisition
 * (github.com's behaviour). A runner simulator plays each pod's runner, so every job runs its whole
 * life: JIT config, start, completion, removal. "Heard of" is the webhook's arrival at Gantry's
 * listener, or the delivery of the message that assigned the job to the scale set.
 *
 * Idle: the fake service answers a long poll after 5 s instead of GitHub's 50 s, so that a minute
 * holds a dozen polls per class; the hourly figures scale the measured polls to 50 s. Webhook mode
 * idles with its default poller settings (polls every 30 s while no delivery arrives).
 *
 *   node hack/bench/scaleset.ts [--jobs 60] [--rate 4] [--idle-seconds 60]
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { KWOK_NODE_LABEL } from '../../test/support/control-plane/control-plane.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../../test/support/fake-github/index.ts';
import { startRunnerSimulator } from '../../test/support/runner-simulator.ts';
import {
  type ScaleSetFakes,
  scaleSetGithubConfig,
  scaleSetOf,
  startScaleSetFakes,
} from '../../test/support/scaleset-fakes.ts';
import { startScaleSetRunnerSimulator } from '../../test/support/scaleset-simulator.ts';
import {
  bareClient,
  createCleanups,
  createNamespace,
  deleteAllPods,
  now,
  offerAtRate,
  startPlane,
  TimingKubeConfig,
  until,
  watchPods,
} from './lib/live.ts';
import { emitJson, type Headline, printTable, quantile, round, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: {
    jobs: { type: 'string', default: '60' },
    rate: { type: 'string', default: '4' },
    'idle-seconds': { type: 'string', default: '60' },
  },
});
const JOBS = Number(options.jobs);
const RATE = Number(options.rate);
const IDLE_SECONDS = Number(options['idle-seconds']);
if (!(JOBS > 0 && RATE > 0 && IDLE_SECONDS >= 10)) {
  throw new Error('--jobs and --rate: numbers > 0; --idle-seconds: at least 10');
}

const NODES = 4;
const REPOS = ['app', 'api', 'web', 'infra'];
const CLASSES = ['bench', 'idle-a', 'idle-b'];
const JOB_DURATION_MS = 500;
const BENCH_LONG_POLL_MS = 5_000;
const GITHUB_LONG_POLL_MS = 50_000;
/** The load rate users of the per-hour figures: 20 jobs a minute. */
const JOBS_PER_HOUR = 1_200;
const APP_ID = 6464;
const SECRET = 'bench-scaleset-secret';
const say = (message: string) => process.stderr.write(`[scaleset] ${message}\n`);
const cleanups = createCleanups(say);

/** What GitHub saw of one mode in one window. */
interface Counts {
  /** api.github.com requests (304s included) and the quota points they cost. */
  restRequests: number;
  restPoints: number;
  /** Actions service and message-queue requests. */
  serviceRequests: number;
}

interface ModeResult {
  mode: 'webhook' | 'scaleSets';
  startup: Counts;
  load: Counts & { jobs: number; seconds: number };
  idle: Counts & { seconds: number; pollsPerClass: number };
  heardToRunningMs: { p50: number; p99: number; samples: number };
  byRoute: Record<string, number>;
  /** Points of the load spent reading a repository's visibility for the first time (scale sets). */
  firstRepoReads: number;
}

const classConfig = (namespace: string) =>
  Object.fromEntries(
    CLASSES.map((name) => [
      name,
      {
        namespace,
        match: { github: { labels: ['self-hosted', name] } },
        nodeSelector: { [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value },
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '32Mi' } },
        maxRunners: 1_000,
        maxCreatePerSecond: 1_000,
        idleTimeout: '30s',
      },
    ]),
  );

function githubCounts(fake: FakeGithub, since: number, until = Number.POSITIVE_INFINITY) {
  const requests = fake.requests.filter((r) => r.at >= since && r.at < until);
  return { requests: requests.length, points: requests.reduce((sum, r) => sum + r.cost, 0), list: requests };
}

function scaleSetCounts(fakes: ScaleSetFakes, since: number, until = Number.POSITIVE_INFINITY): Counts {
  const github = githubCounts(fakes.github, since, until);
  const served = fakes.actions.requests.filter((r) => r.at >= since && r.at < until);
  // The Actions fake serves the registration bootstrap itself and passes other REST calls on.
  const rest = served.filter((r) => r.route.startsWith('/api/v3/'));
  const registrationTokens = rest.filter((r) => r.route.endsWith('/registration-token')).length;
  return {
    restRequests: github.requests + rest.length,
    // A registration token is a POST on the installation's quota; runner-registration is paid with it.
    restPoints: github.points + registrationTokens,
    serviceRequests: served.filter((r) => r.route.startsWith('/tenant/') || r.route.startsWith('/broker/'))
      .length,
  };
}

async function main(): Promise<void> {
  const wallStart = now();
  const { plane, kc, core } = await startPlane(cleanups, say, NODES);
  const namespaces = {
    webhook: 'ss-bench-webhook',
    scaleSets: 'ss-bench-scalesets',
    floor: 'ss-bench-floor',
  };
  await Promise.all(Object.values(namespaces).map((ns) => createNamespace(core, ns)));
  const floorPods = await watchPods(cleanups, kc, core, namespaces.floor);
  const seconds = JOBS / RATE;

  // ── the floor ────────────────────────────────────────────────────────────────────────────────
  say(`floor: a bare loop creating ${JOBS} pods at ${RATE}/s`);
  const floorClass = parseConfig({ classes: classConfig(namespaces.floor) }).classes.bench;
  if (!floorClass) throw new Error('no bench class');
  const bare = bareClient(plane.kubeconfigPath, floorClass, namespaces.floor);
  const decidedAt = new Map<string, number>();
  await offerAtRate(RATE, seconds, (count) => {
    for (let i = 0; i < count; i++) {
      const body = bare.nextPod();
      decidedAt.set(body.metadata?.name ?? '', now());
      void bare.core.createNamespacedPod({ namespace: namespaces.floor, body });
    }
  });
  await until(
    'the bare pods Running',
    async () => [...decidedAt.keys()].every((n) => floorPods.pods.get(n)?.runningAt),
    120_000,
    50,
  );
  const floorRunning = [...decidedAt].map(
    ([name, at]) => (floorPods.pods.get(name)?.runningAt ?? Number.NaN) - at,
  );
  await deleteAllPods(core, floorPods, namespaces.floor);

  // ── webhook mode ─────────────────────────────────────────────────────────────────────────────
  const webhook = await (async (): Promise<ModeResult> => {
    say('webhook mode: starting');
    const fake = new FakeGithub({
      repos: REPOS.map((r) => `acme/${r}`),
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
    });
    await fake.start();
    fake.runInRealTime(100);
    const config = parseConfig({
      log: { level: 'silent' },
      http: { address: '127.0.0.1', port: 0 },
      github: {
        ...fakeGithubConfig(fake, APP_ID, SECRET),
        // The defaults, not the tests' quick ones.
        poll: {},
        runners: { org: fake.org },
      },
      classes: classConfig(namespaces.webhook),
    });
    const timing = new TimingKubeConfig();
    timing.loadFromFile(plane.kubeconfigPath);
    const started = fake.clock.now();
    const app = createApp(config, { kubeConfig: timing, logger: pino({ level: 'silent' }) });
    const received = new Map<string, number>();
    app.webhooks?.addHook('onRequest', (request, _reply, done) => {
      const id = request.headers['x-github-delivery'];
      if (typeof id === 'string' && !received.has(id)) received.set(id, now());
      done();
    });
    const stopApp = async () => app.stop();
    cleanups.push('Gantry (webhook mode)', stopApp);
    const { webhookUrl } = await app.start();
    fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, SECRET);
    const pods = await watchPods(cleanups, kc, core, namespaces.webhook);
    const simulator = startRunnerSimulator(kc, fake, [namespaces.webhook]);
    await waitReady(app);
    const loadStart = fake.clock.now();
    const startup = githubCounts(fake, started, loadStart);

    say(`webhook mode: ${JOBS} jobs at ${RATE}/s`);
    const jobs: number[] = [];
    let next = 0;
    await offerAtRate(RATE, seconds, (count) => {
      for (let i = 0; i < count; i++) {
        const repo = `acme/${REPOS[next++ % REPOS.length]}`;
        jobs.push(
          ...fake.queueJobs({ repo, labels: ['self-hosted', 'bench'], count: 1, durationMs: JOB_DURATION_MS })
            .jobIds,
        );
      }
    });
    await until(
      'every job completed',
      async () => jobs.every((id) => fake.job(id)?.status === 'completed'),
      180_000,
      100,
    );
    await until('every runner pod gone', async () => pods.live() === 0, 180_000, 200);
    const loadEnd = fake.clock.now();
    const heard = new Map<string, number>();
    for (const d of fake.deliveries) {
      const at = received.get(d.id);
      if (d.action === 'queued' && at !== undefined && !heard.has(`github:${d.jobId}`))
        heard.set(`github:${d.jobId}`, at);
    }
    const latencies = jobs.map(
      (id) =>
        (pods.byJob.get(`github:${id}`)?.runningAt ?? Number.NaN) - (heard.get(`github:${id}`) ?? Number.NaN),
    );

    say(`webhook mode: idle for ${IDLE_SECONDS} s`);
    const idleStart = fake.clock.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    const idle = githubCounts(fake, idleStart);
    const load = githubCounts(fake, loadStart, loadEnd);
    await simulator.stop();
    await stopApp();
    await fake.stop();
    return {
      mode: 'webhook',
      startup: { restRequests: startup.requests, restPoints: startup.points, serviceRequests: 0 },
      load: {
        restRequests: load.requests,
        restPoints: load.points,
        serviceRequests: 0,
        jobs: jobs.length,
        seconds: (loadEnd - loadStart) / 1000,
      },
      idle: {
        restRequests: idle.requests,
        restPoints: idle.points,
        serviceRequests: 0,
        seconds: IDLE_SECONDS,
        pollsPerClass: 0,
      },
      heardToRunningMs: summarize(latencies),
      byRoute: routes(load.list.map((r) => ({ key: `REST ${r.method} ${r.route}`, cost: 1 }))),
      firstRepoReads: 0,
    };
  })();

  // ── scale-set mode ───────────────────────────────────────────────────────────────────────────
  const scaleSets = await (async (): Promise<ModeResult> => {
    say('scale-set mode: starting');
    const fakes = await startScaleSetFakes({
      github: { repos: REPOS.map((r) => `acme/${r}`) },
      actions: { longPollMs: BENCH_LONG_POLL_MS, acquisition: 'immediate', pickupTimeoutMs: 600_000 },
    });
    cleanups.push('the scale-set fakes', () => fakes.stop());
    fakes.actions.runInRealTime(100);
    fakes.github.runInRealTime(100);
    const config = parseConfig({
      log: { level: 'silent' },
      http: { address: '127.0.0.1', port: 0 },
      github: scaleSetGithubConfig(fakes),
      classes: classConfig(namespaces.scaleSets),
    });
    const started = Date.now();
    const app = createApp(config, { kubeConfig: kc, logger: pino({ level: 'silent' }) });
    cleanups.push('Gantry (scale-set mode)', () => app.stop());
    await app.start();
    await until('every session', async () => fakes.actions.sessions().length === CLASSES.length, 60_000, 50);
    const pods = await watchPods(cleanups, kc, core, namespaces.scaleSets);
    const durations = new Map<number, number>();
    const simulator = startScaleSetRunnerSimulator(
      kc,
      fakes.actions,
      [namespaces.scaleSets],
      durations,
      JOB_DURATION_MS,
    );
    await waitReady(app);
    const loadStart = Date.now();
    const startup = scaleSetCounts(fakes, started, loadStart);

    say(`scale-set mode: ${JOBS} jobs at ${RATE}/s`);
    const bench = scaleSetOf(fakes, 'bench');
    const jobs: number[] = [];
    let next = 0;
    await offerAtRate(RATE, seconds, (count) => {
      for (let i = 0; i < count; i++) {
        const repository = REPOS[next++ % REPOS.length] ?? 'app';
        const [id] = fakes.actions.queueJobs(bench.id, 1, {
          repository,
          eventName: 'push',
          workflowRef: `acme/${repository}/.github/workflows/ci.yml@refs/heads/main`,
        });
        if (id !== undefined) jobs.push(id);
      }
    });
    await until(
      'every job completed',
      async () => jobs.every((id) => fakes.actions.job(id)?.state === 'completed'),
      180_000,
      100,
    );
    await until('every runner pod gone', async () => pods.live() === 0, 180_000, 200);
    const loadEnd = Date.now();
    // Heard of: the delivery of the message that assigned the job (epoch ms, turned into this process's clock).
    const heard = new Map<number, number>();
    for (const d of fakes.actions.deliveries) {
      for (const m of d.jobMessages) {
        if (m.messageType === 'JobAssigned' && !heard.has(m.runnerRequestId)) {
          heard.set(m.runnerRequestId, d.at - performance.timeOrigin);
        }
      }
    }
    const latencies = jobs.map(
      (id) =>
        (pods.byJob.get(`github:scaleset/${bench.id}/${id}`)?.runningAt ?? Number.NaN) -
        (heard.get(id) ?? Number.NaN),
    );

    say(`scale-set mode: idle for ${IDLE_SECONDS} s`);
    const idleStart = Date.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    const idle = scaleSetCounts(fakes, idleStart);
    const polls = fakes.actions.requests.filter(
      (r) => r.at >= idleStart && r.route === '/broker/sessions/{sid}/messages',
    ).length;
    const load = scaleSetCounts(fakes, loadStart, loadEnd);
    const loadRoutes = [
      ...githubCounts(fakes.github, loadStart, loadEnd).list.map((r) => ({
        key: `REST ${r.method} ${r.route}`,
        cost: 1,
      })),
      // REST calls the Actions fake passed on are counted on the fake GitHub's side, above.
      ...fakes.actions.requests
        .filter((r) => r.at >= loadStart && r.at < loadEnd && r.route !== 'forwarded')
        .map((r) => ({ key: `${r.method} ${r.route.replace(/^\/tenant\/\{tenant\}\//, '')}`, cost: 1 })),
    ];
    const firstRepoReads = githubCounts(fakes.github, loadStart, loadEnd).list.filter(
      (r) => r.route === '/repos/{owner}/{repo}' && r.cost > 0,
    ).length;
    await simulator.stop();
    await app.stop();
    return {
      mode: 'scaleSets',
      firstRepoReads,
      startup,
      load: { ...load, jobs: jobs.length, seconds: (loadEnd - loadStart) / 1000 },
      idle: { ...idle, seconds: IDLE_SECONDS, pollsPerClass: polls / CLASSES.length },
      heardToRunningMs: summarize(latencies),
      byRoute: routes(loadRoutes),
    };
  })();

  // ── figures ──────────────────────────────────────────────────────────────────────────────────
  const floor = summarize(floorRunning);
  const perJob = (r: ModeResult, pick: (c: Counts) => number) => pick(r.load) / r.load.jobs;
  /** Idle requests per hour per class: scale sets' polls scaled to GitHub's 50 s long poll. */
  const idlePerHour = (r: ModeResult) => {
    const hours = r.idle.seconds / 3600;
    if (r.mode === 'webhook') {
      return { rest: r.idle.restRequests / hours, points: r.idle.restPoints / hours, service: 0 };
    }
    const pollScale = BENCH_LONG_POLL_MS / GITHUB_LONG_POLL_MS;
    return {
      rest: r.idle.restRequests / hours,
      points: r.idle.restPoints / hours,
      service: (r.idle.serviceRequests * pollScale) / hours,
    };
  };
  // The Actions service's token lives an hour: one registration token (a point) and one
  // runner-registration call an hour, whatever the load; the measured idle adds the rest.
  const recurringPointsPerHour = (r: ModeResult) => idlePerHour(r).points + (r.mode === 'scaleSets' ? 1 : 0);
  /**
   * An hour at 20 jobs a minute over the same repositories: the start, the first read of each
   * repository's visibility (later reads are free 304s), the recurring points, and what each job
   * costs beyond those first reads.
   */
  const amortized = (r: ModeResult) => {
    const perJobBeyondFirstReads = (r.load.restPoints - r.firstRepoReads) / r.load.jobs;
    const hour =
      r.startup.restPoints +
      r.firstRepoReads +
      recurringPointsPerHour(r) +
      perJobBeyondFirstReads * JOBS_PER_HOUR;
    return hour / JOBS_PER_HOUR;
  };
  const rows = [webhook, scaleSets];
  const fmt = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '-');

  printTable(
    `Per job, ${JOBS} jobs offered at ${RATE}/s over ${REPOS.length} repositories (3 classes, one loaded; ${NODES} KWOK nodes)`,
    [
      'mode',
      'REST points/job',
      'of which first repository reads',
      'REST requests/job',
      'Actions calls/job',
      'points/job at 20 jobs/min, 1 h',
      'startup points',
      'startup REST',
      'startup Actions',
    ],
    rows.map((r) => [
      r.mode,
      fmt(perJob(r, (c) => c.restPoints)),
      fmt(r.firstRepoReads / r.load.jobs),
      fmt(perJob(r, (c) => c.restRequests)),
      fmt(
        perJob(r, (c) => c.serviceRequests),
        2,
      ),
      fmt(amortized(r)),
      String(r.startup.restPoints),
      String(r.startup.restRequests),
      String(r.startup.serviceRequests),
    ]),
  );
  printTable(
    'Heard of the job → its runner pod Running (webhook received; or the message assigning it delivered), ms',
    ['path', 'p50', 'p99', 'x floor p50', 'x floor p99', 'samples'],
    [
      ...rows.map((r) => [
        r.mode,
        fmt(r.heardToRunningMs.p50, 0),
        fmt(r.heardToRunningMs.p99, 0),
        `${fmt(r.heardToRunningMs.p50 / floor.p50, 2)}x`,
        `${fmt(r.heardToRunningMs.p99 / floor.p99, 2)}x`,
        String(r.heardToRunningMs.samples),
      ]),
      [
        'floor (bare loop, decided → Running)',
        fmt(floor.p50, 0),
        fmt(floor.p99, 0),
        '1.00x',
        '1.00x',
        String(floor.samples),
      ],
    ],
  );
  printTable(
    `Idle, measured for ${IDLE_SECONDS} s (scale sets: long polls of ${BENCH_LONG_POLL_MS / 1000} s scaled to GitHub's 50 s), per hour`,
    [
      'mode',
      'REST requests/h',
      'REST points/h',
      'Actions calls/h',
      'Actions calls/h per class',
      'REST requests/h per class',
    ],
    rows.map((r) => {
      const h = idlePerHour(r);
      return [
        r.mode,
        fmt(h.rest, 0),
        fmt(h.points, 1),
        fmt(h.service, 0),
        fmt(h.service / CLASSES.length, 0),
        fmt(h.rest / CLASSES.length, 0),
      ];
    }),
  );
  process.stdout.write(
    'Beyond the measured idle, on their own schedules: scale sets renew the Actions service token once an ' +
      'hour (installation token, registration token: 1 point, runner-registration); both modes read the ' +
      'runner groups every 10 min (conditional, free while unchanged).\n\n',
  );
  printTable(
    'Per job by route during the load (scale sets: REST and Actions service)',
    ['mode', 'route', 'per job'],
    rows.flatMap((r) =>
      Object.entries(r.byRoute)
        .sort((a, b) => b[1] - a[1])
        .map(([route, n]) => [r.mode, route, fmt(n / r.load.jobs, 3)]),
    ),
  );

  const headline: Headline[] = [
    {
      what: 'api.github.com quota points per job, scale sets (`scaleset`)',
      figure: `${fmt(amortized(scaleSets))} at 20 jobs/min over an hour; ${fmt(perJob(scaleSets, (c) => c.restPoints))} in the ${JOBS}-job burst, all first reads of the ${REPOS.length} repositories' visibility`,
      baseline: `webhook mode, same run: ${fmt(amortized(webhook))}; ${fmt(perJob(webhook, (c) => c.restPoints))} in the burst (the JIT config: 1.000)`,
    },
    {
      what: 'Actions service calls per job, scale sets',
      figure: fmt(
        perJob(scaleSets, (c) => c.serviceRequests),
        2,
      ),
      baseline: 'webhook mode: 0 (its calls are REST, above)',
    },
    {
      what: 'heard of a job → runner pod Running, p50 / p99, scale sets',
      figure: `${fmt(scaleSets.heardToRunningMs.p50, 0)} / ${fmt(scaleSets.heardToRunningMs.p99, 0)} ms (${fmt(scaleSets.heardToRunningMs.p50 / floor.p50, 2)}x / ${fmt(scaleSets.heardToRunningMs.p99 / floor.p99, 2)}x the floor)`,
      baseline: `webhook mode ${fmt(webhook.heardToRunningMs.p50, 0)} / ${fmt(webhook.heardToRunningMs.p99, 0)} ms; floor ${fmt(floor.p50, 0)} / ${fmt(floor.p99, 0)} ms`,
    },
    {
      what: 'idle calls per hour per class, scale sets (long polls at 50 s)',
      figure: `${fmt(idlePerHour(scaleSets).service / CLASSES.length, 0)} Actions calls, ${fmt(idlePerHour(scaleSets).points, 1)} REST points/h in all`,
      baseline: `webhook mode: ${fmt(idlePerHour(webhook).rest, 0)} REST requests (${fmt(idlePerHour(webhook).points, 1)} points)/h in all, whatever the classes`,
    },
  ];
  emitJson({
    benchmark: 'scaleset',
    jobs: JOBS,
    rate: RATE,
    idleSeconds: IDLE_SECONDS,
    floorMs: floor,
    results: rows.map((r) => ({
      ...r,
      idlePerHour: idlePerHour(r),
      pointsPerJobAmortized: round(amortized(r), 4),
    })),
    headline,
    wallSeconds: round((now() - wallStart) / 1000, 1),
  });
}

function summarize(values: number[]): { p50: number; p99: number; samples: number } {
  const valid = values.filter(Number.isFinite);
  if (valid.length < values.length)
    say(`${values.length - valid.length} of ${values.length} samples missing`);
  return { p50: quantile(valid, 0.5), p99: quantile(valid, 0.99), samples: valid.length };
}

function routes(entries: readonly { key: string; cost: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { key, cost } of entries) out[key] = (out[key] ?? 0) + cost;
  return out;
}

async function waitReady(app: App): Promise<void> {
  await until('the runner watches ready', async () => app.runners !== undefined, 30_000, 50);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
}

runBench(main, cleanups.runAll);
