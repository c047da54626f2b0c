/**
 * Kubernetes write benchmark: the apiserver requests Gantry makes per job lifecycle (queued on GitHub,
 * runner pod created, job run, pod removed), end to end against the local control plane with the fake
 * GitHub sending webhooks, KWOK running the pods and the runner simulator playing the runner process.
 * Writes (post, put, patch, delete) are counted from the app's gantry_kube_requests_total; reads are the
 * counter's get and list plus the watch streams the informers open, which bypass that counter.
 *
 * The target is at most 3 writes per job: the Pod, its JIT config Secret and the Pod's deletion (the
 * Secret goes with the Pod through the garbage collector). Writes per runner pod do not depend on
 * timing; writes per job do when a pod ends before its runner took a job (the job then needs a second
 * runner), so those pods are reported. Reads include watch reconnects, which grow with the run's length.
 *
 * The baseline, measured in the same run, is a bare pod created and deleted by hand: 2 writes, and the
 * control plane's own time from create to Running and from Succeeded to gone, against which Gantry's
 * time from job queued to runner Running and from runner finished to pod gone are set.
 *
 *   node hack/bench/kube-writes.ts [--jobs 50] [--log gantry.log]
 */
import { parseArgs } from 'node:util';
import { KubeConfig, type RequestContext, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createKubeApis, describeRequest } from '../../src/kube/client.ts';
import { KWOK_NODE_LABEL } from '../../test/support/control-plane/control-plane.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../../test/support/fake-github/index.ts';
import { startRunnerSimulator } from '../../test/support/runner-simulator.ts';
import { createCleanups, createNamespace, LABELS, startPlane, until, watchPods } from './lib/live.ts';
import { emitJson, type Headline, printTable, quantile, round, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: { jobs: { type: 'string', default: '50' }, log: { type: 'string' } },
});
const JOBS = Number(options.jobs);
if (!Number.isInteger(JOBS) || JOBS < 1) throw new Error('--jobs: expected a whole number >= 1');

const TARGET_WRITES_PER_JOB = 3;
const WRITE_VERBS = new Set(['post', 'put', 'patch', 'delete']);
const NAMESPACE = 'bench-runners';
/**
 * The runner pod's longest life: long enough for the simulated runner to connect and finish its job on
 * a loaded machine, since a pod that ends first leaves its job to a second runner (three more writes).
 */
const RUNNER_SUCCEED_AFTER = '10s';
/** The bare pod's life: only its start and its removal are timed. */
const BARE_SUCCEED_AFTER = '1s';
const JOB_DURATION_MS = 1_000;
const JOBS_PER_RUN = 10;
const MAX_CREATE_PER_SECOND = 10;
const BASELINE_PODS = 3;
/** KWOK nodes: room for every runner pod of the run at once. */
const PLANE_NODES = 3;
const SECRET = 'bench-webhook-secret';
const APP_ID = 9191;
const RUNNER_SELECTOR = 'app.kubernetes.io/managed-by=gantry';

const say = (message: string) => process.stderr.write(`[kube-writes] ${message}\n`);

/** `verb resource code` → requests. */
type Counts = Map<string, number>;

/**
 * A kubeconfig that notes every watch stream opened with it: client-node's Watch authenticates each
 * stream through the kubeconfig but not through the counted transport of createKubeApis.
 */
class WatchCountingKubeConfig extends KubeConfig {
  readonly watches: Counts = new Map();
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    const url = context.getUrl();
    if (new URL(url).searchParams.get('watch') === 'true') {
      const { resource } = describeRequest('GET', url);
      increment(this.watches, `watch ${resource} -`);
    }
    await super.applySecurityAuthentication(context);
  }
}

function increment(counts: Counts, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

/** What the app counted so far, plus the watch streams it opened. */
async function snapshot(app: App, kc: WatchCountingKubeConfig): Promise<Counts> {
  const counts: Counts = new Map(kc.watches);
  const metric = await app.metrics.getSingleMetric('gantry_kube_requests_total')?.get();
  for (const { labels, value } of metric?.values ?? [])
    increment(counts, `${labels.verb} ${labels.resource} ${labels.code}`, value);
  return counts;
}

function difference(after: Counts, before: Counts): Counts {
  const counts: Counts = new Map();
  for (const [key, value] of after)
    if (value - (before.get(key) ?? 0) > 0) counts.set(key, value - (before.get(key) ?? 0));
  return counts;
}

const isWrite = (key: string) => WRITE_VERBS.has(key.split(' ')[0] ?? '');
const sum = (counts: Counts, keep: (key: string) => boolean) =>
  [...counts].reduce((total, [key, value]) => (keep(key) ? total + value : total), 0);

/** A pod as bare as Pod Security "restricted" allows, the runner class's size. */
function barePod(name: string): V1Pod {
  return {
    metadata: { name, annotations: { 'kwok.gantry.dev/succeed-after': BARE_SUCCEED_AFTER } },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      nodeSelector: { [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value },
      securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'main',
          image: 'ghcr.io/actions/actions-runner:latest',
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

const median = (values: number[]) => quantile(values, 0.5);
const cleanups = createCleanups(say);

async function main(): Promise<void> {
  const wallStart = performance.now();
  // The bench's own client (the baseline's reads, the waits): none of it reaches the app's counter.
  const { plane, kc: plainKc, core } = await startPlane(cleanups, say, PLANE_NODES);
  await createNamespace(core, NAMESPACE);
  // Wall-clock times, to set against the fake GitHub's job timestamps.
  const tracker = await watchPods(cleanups, plainKc, core, NAMESPACE, Date.now);

  // Baseline: bare pods created, run to Succeeded and deleted, their writes counted as the app's are.
  say(`baseline: ${BASELINE_PODS} bare pods`);
  const baselineCounts: Counts = new Map();
  const counted = createKubeApis(plainKc, {
    timeoutMs: 15_000,
    onResponse: ({ verb, resource, code }) => increment(baselineCounts, `${verb} ${resource} ${code}`),
  });
  const baseline = await Promise.all(
    Array.from({ length: BASELINE_PODS }, async (_, i) => {
      const name = `bare-${i}`;
      const createdAt = Date.now();
      await counted.core.createNamespacedPod({ namespace: NAMESPACE, body: barePod(name) });
      const runningAt = await until(`${name} Running`, async () => tracker.pods.get(name)?.runningAt, 60_000);
      const finishedAt = await until(
        `${name} Succeeded`,
        async () => tracker.pods.get(name)?.finishedAt,
        60_000,
      );
      await counted.core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
      const goneAt = await until(`${name} gone`, async () => tracker.pods.get(name)?.goneAt, 60_000);
      return { start: runningAt - createdAt, cleanup: goneAt - finishedAt };
    }),
  );

  const keys = appKeys();
  const fake = new FakeGithub({ repos: ['acme/app'], app: { appId: APP_ID, publicKey: keys.publicKey } });
  await fake.start();
  cleanups.push('the fake GitHub', () => fake.stop());
  fake.runInRealTime(100);

  const kc = new WatchCountingKubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  const config = parseConfig({
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    github: fakeGithubConfig(fake, APP_ID, SECRET),
    controller: { reconcilePeriodSeconds: 0.5 },
    classes: {
      bench: {
        namespace: NAMESPACE,
        match: { github: { labels: LABELS } },
        nodeSelector: { [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value },
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
        podAnnotations: { 'kwok.gantry.dev/succeed-after': RUNNER_SUCCEED_AFTER },
        // No cap below the load: every job gets its own runner, as the per-job count assumes.
        maxRunners: JOBS,
        maxCreatePerSecond: MAX_CREATE_PER_SECOND,
        idleTimeout: '5s',
      },
    },
  });
  // --log FILE keeps Gantry's own log, for when a run does not finish.
  const logger = options.log
    ? pino({ level: 'debug' }, pino.destination({ dest: options.log, sync: true }))
    : pino({ level: 'silent' });
  const app = createApp(config, { kubeConfig: kc, logger });
  cleanups.push('Gantry', () => app.stop());
  const { webhookUrl } = await app.start();
  fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, SECRET);
  const simulator = startRunnerSimulator(plainKc, fake, [NAMESPACE]);
  cleanups.push('the runner simulator', () => simulator.stop());

  const startup = await snapshot(app, kc);
  say(`queueing ${JOBS} jobs`);
  const runStart = performance.now();
  const { jobIds } = fake.queueJobs({
    repo: 'acme/app',
    labels: LABELS,
    count: JOBS,
    jobsPerRun: JOBS_PER_RUN,
    durationMs: JOB_DURATION_MS,
  });
  const patience = 120_000 + JOBS * 2_000;
  await until(
    `all ${JOBS} jobs completed`,
    async () => jobIds.every((id) => fake.job(id)?.status === 'completed'),
    patience,
  ).catch((err: unknown) => {
    // Where it stuck: the jobs on GitHub's side and the runner pods on the cluster's.
    const tally = (values: (string | undefined)[]) =>
      [...Map.groupBy(values, (v) => v ?? 'none')].map(([k, v]) => `${k} ${v.length}`).join(', ');
    const podStates = [...tracker.pods]
      .filter(([name]) => !name.startsWith('bare-'))
      .map(([, times]) => (times.goneAt !== undefined ? 'gone' : (times.phase ?? 'none')));
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}; jobs: ${tally(jobIds.map((id) => fake.job(id)?.status))}; ` +
        `runner pods: ${tally(podStates)}; GitHub runners: ${tally(fake.runners().map((r) => r.status))}`,
    );
  });
  await until(
    'every runner pod and secret gone',
    async () => {
      const [pods, secrets] = await Promise.all([
        core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: RUNNER_SELECTOR }),
        core.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: RUNNER_SELECTOR }),
      ]);
      return pods.items.length === 0 && secrets.items.length === 0;
    },
    patience,
  );
  const runSeconds = (performance.now() - runStart) / 1000;
  const lifecycle = difference(await snapshot(app, kc), startup);

  // Per job, from the pod that ran it: queued on GitHub → Running, finished → gone, queued → gone.
  const toRunning: number[] = [];
  const cleanup: number[] = [];
  const whole: number[] = [];
  const failures: string[] = [];
  for (const id of jobIds) {
    const job = fake.job(id);
    if (job?.conclusion !== 'success') failures.push(`job ${id} ended ${job?.conclusion}`);
    const times = tracker.pods.get(job?.runner?.name ?? '');
    if (!job || !times) continue;
    if (times.runningAt) toRunning.push(times.runningAt - job.createdAt);
    if (times.finishedAt && times.goneAt) cleanup.push(times.goneAt - times.finishedAt);
    if (times.goneAt) whole.push(times.goneAt - job.createdAt);
  }
  const runnerPods = [...tracker.pods.keys()].filter((name) => !name.startsWith('bare-')).length;
  const podsWithJob = new Set(jobIds.map((id) => fake.job(id)?.runner?.name).filter(Boolean)).size;
  const githubRunnersLeft = fake.runners().length;

  const writes = sum(lifecycle, isWrite);
  const reads = sum(lifecycle, (key) => !isWrite(key));
  const baselineWrites = sum(baselineCounts, isWrite) / BASELINE_PODS;
  const writesPerJob = writes / JOBS;
  const met = writesPerJob <= TARGET_WRITES_PER_JOB;

  const byKey = (counts: Counts) =>
    [...counts]
      .sort(([a], [b]) => Number(isWrite(b)) - Number(isWrite(a)) || a.localeCompare(b))
      .map(([key, count]) => {
        const [verb = '', resource = '', code = ''] = key.split(' ');
        return { kind: isWrite(key) ? 'write' : 'read', verb, resource, code, count };
      });
  const requestRows = byKey(lifecycle);
  printTable(
    `Kubernetes API requests by Gantry over ${JOBS} job lifecycles (queued → runner pod gone), ` +
      `${runnerPods} runner pods (${runnerPods - podsWithJob} ended without a job)`,
    ['kind', 'verb', 'resource', 'code', 'requests', 'per job'],
    [
      ...requestRows.map((r) => [
        r.kind,
        r.verb,
        r.resource,
        r.code,
        String(r.count),
        (r.count / JOBS).toFixed(2),
      ]),
      ['writes', '', '', '', String(writes), writesPerJob.toFixed(2)],
      ['reads', '', '', '', String(reads), (reads / JOBS).toFixed(2)],
    ],
  );
  process.stdout.write(
    `writes per job ${writesPerJob.toFixed(2)}: target <= ${TARGET_WRITES_PER_JOB} ${met ? 'met' : 'MISSED'}; ` +
      `per runner pod ${(writes / Math.max(1, runnerPods)).toFixed(2)}; ` +
      `baseline (bare pod) ${baselineWrites.toFixed(2)}, so x${(writesPerJob / baselineWrites).toFixed(2)}\n` +
      `startup, before the first job and not counted above: ` +
      `${byKey(startup)
        .map((r) => `${r.verb} ${r.resource} ${r.count}`)
        .join(', ')}\n\n`,
  );

  const stat = (values: number[]) => ({
    median: round(median(values) / 1000),
    p95: round(quantile(values, 0.95) / 1000),
  });
  const baselineStart = stat(baseline.map((b) => b.start));
  const baselineCleanup = stat(baseline.map((b) => b.cleanup));
  const timing = {
    baselineStart,
    baselineCleanup,
    jobQueuedToRunning: stat(toRunning),
    finishedToGone: stat(cleanup),
    jobQueuedToGone: stat(whole),
  };
  const ratio = (value: number, base: number) => (base > 0 ? (value / base).toFixed(2) : '-');
  const timeRow = (name: string, values: { median: number; p95: number }, base?: number) => [
    name,
    values.median.toFixed(3),
    values.p95.toFixed(3),
    base === undefined ? '-' : ratio(values.median, base),
  ];
  printTable(
    `Wall time: ${JOBS} jobs in ${runSeconds.toFixed(1)} s (${(runSeconds / JOBS).toFixed(3)} s/job); ` +
      `${githubRunnersLeft} GitHub runner registrations left`,
    ['case', 'median s', 'p95 s', 'x baseline'],
    [
      timeRow('baseline: bare pod created → Running', baselineStart, baselineStart.median),
      timeRow(
        `gantry: job queued → its runner pod Running (<= ${MAX_CREATE_PER_SECOND} creations/s)`,
        timing.jobQueuedToRunning,
        baselineStart.median,
      ),
      timeRow(
        'baseline: bare pod Succeeded → deleted by hand, gone',
        baselineCleanup,
        baselineCleanup.median,
      ),
      timeRow('gantry: runner pod finished → gone', timing.finishedToGone, baselineCleanup.median),
      timeRow(
        `gantry: job queued → runner pod gone (${JOB_DURATION_MS / 1000} s job)`,
        timing.jobQueuedToGone,
      ),
    ],
  );
  emitJson({
    benchmark: 'kube-writes',
    jobs: JOBS,
    runnerPods,
    runnerPodsWithoutJob: runnerPods - podsWithJob,
    target: { writesPerJob: TARGET_WRITES_PER_JOB, met },
    writes: {
      total: writes,
      perJob: round(writesPerJob),
      perRunnerPod: round(writes / Math.max(1, runnerPods)),
    },
    reads: { total: reads, perJob: round(reads / JOBS) },
    requests: requestRows,
    startup: byKey(startup),
    baseline: { pods: BASELINE_PODS, writesPerPod: round(baselineWrites), requests: byKey(baselineCounts) },
    seconds: timing,
    ratios: {
      writesVsBaseline: round(writesPerJob / baselineWrites),
      startVsBaseline: round(timing.jobQueuedToRunning.median / baselineStart.median),
      cleanupVsBaseline: round(timing.finishedToGone.median / baselineCleanup.median),
    },
    githubRunnersLeft,
    headline: [
      {
        what: `Kubernetes API writes per job lifecycle (\`kube-writes\`, ${JOBS} jobs)`,
        figure:
          `${writesPerJob.toFixed(2)} (${requestRows
            .filter((r) => r.kind === 'write')
            .map((r) => `${r.verb} ${r.resource} ${(r.count / JOBS).toFixed(2)}`)
            .join(', ')}); ` + `${(reads / JOBS).toFixed(2)} reads after start-up`,
        baseline: `bare pod: ${baselineWrites.toFixed(2)}`,
      },
      {
        what: `job queued → runner pod Running, median (\`kube-writes\`, creation capped at ${MAX_CREATE_PER_SECOND}/s)`,
        figure: `${timing.jobQueuedToRunning.median.toFixed(2)} s (p95 ${timing.jobQueuedToRunning.p95.toFixed(2)} s)`,
        baseline: `bare pod created → Running: ${baselineStart.median.toFixed(2)} s`,
      },
    ] satisfies Headline[],
    runSeconds: round(runSeconds, 1),
    wallSeconds: round((performance.now() - wallStart) / 1000, 1),
  });
  if (failures.length) throw new Error(`jobs did not succeed: ${failures.join('; ')}`);
}

runBench(main, cleanups.runAll);
