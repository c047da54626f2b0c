/**
 * Throughput at saturation: how many runner pods a second Gantry launches when a burst of jobs arrives
 * at once (all their webhooks together), against the bare loop's rate measured in the same run: the
 * same pods (Gantry's own pod builder) created by a plain client loop with as many creates in flight
 * as Gantry's controller.concurrency allows, against the same apiserver. The loop runs twice: pods
 * only (the floor), and pod then JIT config Secret per runner (the two writes Gantry makes, without
 * its GitHub call). A pod is launched when a watch sees it Running (KWOK plays the kubelet). Class
 * limits are far above the burst.
 *
 * Both rates are given over the whole burst (first webhook received, or the loop's start, to the last
 * pod Running) and sustained (from the 10th to the 90th percentile pod, without the ramp-up and tail).
 *
 *   node hack/bench/throughput.ts [--jobs 500] [--concurrency N]
 */
import { parseArgs } from 'node:util';
import {
  bareClient,
  createCleanups,
  createNamespace,
  deleteAllPods,
  LABELS,
  now,
  startGantry,
  startPlane,
  UNCAPPED,
  until,
  watchPods,
} from './lib/live.ts';
import { emitJson, type Headline, printTable, quantile, round, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: { jobs: { type: 'string', default: '500' }, concurrency: { type: 'string' } },
});
const JOBS = Number(options.jobs);
const CONCURRENCY = options.concurrency === undefined ? undefined : Number(options.concurrency);
if (
  !(Number.isInteger(JOBS) && JOBS >= 10) ||
  (CONCURRENCY !== undefined && !(Number.isInteger(CONCURRENCY) && CONCURRENCY > 0))
) {
  throw new Error('--jobs: expected a whole number >= 10; --concurrency: a whole number > 0');
}

const RUNNERS = 'bench-runners';
const FLOOR = 'bench-floor';
/** 10 KWOK nodes of 110 pods: a burst of 500 is all Running at once with room to spare. */
const NODES = 10;
const WARM_UP_PODS = 10;
const say = (message: string) => process.stderr.write(`[throughput] ${message}\n`);
const cleanups = createCleanups(say);

interface Rates {
  pods: number;
  seconds: number;
  /** Pods Running per second over the whole burst. */
  overall: number;
  /** Pods Running per second from the 10th to the 90th percentile pod. */
  sustained: number;
  /** Create requests sent per second over the whole burst. */
  createsPerSecond: number;
}

/** Rates from the burst's start and the moments each pod's create was sent and it was seen Running. */
function rates(start: number, createSent: number[], running: number[]): Rates {
  const last = (values: number[]) => Math.max(...values) - start;
  const p10 = quantile(running, 0.1);
  const p90 = quantile(running, 0.9);
  const between = running.filter((t) => t > p10 && t <= p90).length;
  return {
    pods: running.length,
    seconds: last(running) / 1000,
    overall: running.length / (last(running) / 1000),
    sustained: between / ((p90 - p10) / 1000),
    createsPerSecond: createSent.length / (last(createSent) / 1000),
  };
}

async function main(): Promise<void> {
  const wallStart = now();
  const { plane, kc, core } = await startPlane(cleanups, say, NODES);
  await Promise.all([createNamespace(core, RUNNERS), createNamespace(core, FLOOR)]);
  const gantry = await startGantry(cleanups, plane.kubeconfigPath, RUNNERS, CONCURRENCY);
  const concurrency = gantry.config.controller.concurrency;
  const runnerPods = await watchPods(cleanups, kc, core, RUNNERS);
  const floorPods = await watchPods(cleanups, kc, core, FLOOR);
  const bare = bareClient(plane.kubeconfigPath, gantry.runnerClass, FLOOR);
  const patience = 300_000;

  /**
   * `count` runners made by `concurrency` workers, each waiting for its writes' answers before the
   * next: the pod, and with `withSecret` then its JIT config Secret.
   */
  async function floor(count: number, withSecret: boolean) {
    const names: string[] = [];
    const start = now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          next++;
          const runner = bare.nextRunner();
          names.push(runner.pod.metadata?.name ?? '');
          const pod = await bare.core.createNamespacedPod({ namespace: FLOOR, body: runner.pod });
          if (withSecret) {
            await bare.core.createNamespacedSecret({
              namespace: FLOOR,
              body: runner.secret(pod.metadata?.uid ?? ''),
            });
          }
        }
      }),
    );
    await until(
      `${count} bare pods Running`,
      async () => names.every((name) => floorPods.pods.get(name)?.runningAt),
      patience,
      50,
    );
    const result = rates(
      start,
      names.map((name) => bare.kc.podCreates.get(name)?.at ?? Number.NaN),
      names.map((name) => floorPods.pods.get(name)?.runningAt ?? Number.NaN),
    );
    await deleteAllPods(core, floorPods, FLOOR);
    return result;
  }

  /** A burst of `count` jobs queued at once on the fake GitHub, timed from the first webhook Gantry received. */
  async function throughGantry(count: number) {
    const { jobIds } = gantry.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count, jobsPerRun: 50 });
    const jobs = jobIds.map((id) => `github:${id}`);
    await until(
      `the runner pods of ${count} jobs Running`,
      async () => jobs.every((job) => runnerPods.byJob.get(job)?.runningAt),
      patience,
      50,
    );
    const start = Math.min(...jobs.map((job) => gantry.queuedReceivedAt(job) ?? Number.NaN));
    const createSentAt = new Map<string, number>();
    for (const { at, job } of gantry.kc.podCreates.values())
      if (job && !createSentAt.has(job)) createSentAt.set(job, at);
    return rates(
      start,
      jobs.map((job) => createSentAt.get(job) ?? Number.NaN),
      jobs.map((job) => runnerPods.byJob.get(job)?.runningAt ?? Number.NaN),
    );
  }

  say(`warm-up: ${WARM_UP_PODS} pods, bare loop and Gantry`);
  await floor(WARM_UP_PODS, true);
  await throughGantry(WARM_UP_PODS);
  // The warm-up's runners stay (idle, waiting for their jobs); the burst's are counted by job.

  say(`bare loop: ${JOBS} pods, ${concurrency} creates in flight`);
  const bareRates = await floor(JOBS, false);
  say(`bare loop: ${JOBS} pods and their secrets, ${concurrency} runners in flight`);
  const bareWithSecretRates = await floor(JOBS, true);
  say(`Gantry: a burst of ${JOBS} jobs`);
  const gantryRates = await throughGantry(JOBS);

  const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
  const row = (name: string, r: Rates) => [
    name,
    String(r.pods),
    fixed(r.seconds, 2),
    fixed(r.overall),
    fixed(r.sustained),
    fixed(r.createsPerSecond),
    `${fixed(r.overall / bareRates.overall, 2)}x`,
    `${fixed(r.sustained / bareRates.sustained, 2)}x`,
  ];
  printTable(
    `Throughput at saturation: ${JOBS} runner pods (class limits: maxRunners ${UNCAPPED.maxRunners}, ` +
      `maxCreatePerSecond ${UNCAPPED.maxCreatePerSecond}; controller.concurrency ${concurrency}` +
      `${CONCURRENCY === undefined ? ' (the default)' : ''}; ${NODES} KWOK nodes).\n` +
      `Bare loop: the same pods, ${concurrency} in flight; Gantry per runner: pod create, GitHub JIT config, Secret create ` +
      '(the fake GitHub shares Gantry’s process).',
    ['case', 'pods', 'seconds', 'Running/s', 'sustained/s', 'creates/s', 'x floor', 'x floor sustained'],
    [
      row('floor: bare loop, pods', bareRates),
      row('bare loop, pod + secret', bareWithSecretRates),
      row('gantry (burst of jobs)', gantryRates),
    ],
  );

  const summary = (r: Rates) => ({
    pods: r.pods,
    seconds: round(r.seconds, 2),
    runningPerSecond: round(r.overall, 1),
    sustainedPerSecond: round(r.sustained, 1),
    createsPerSecond: round(r.createsPerSecond, 1),
  });
  const headline: Headline[] = [
    {
      what: `runner pods launched per second at saturation, burst of ${JOBS} jobs (\`throughput\`)`,
      figure:
        `${fixed(gantryRates.overall)}/s (sustained ${fixed(gantryRates.sustained)}/s), ` +
        `${fixed(gantryRates.overall / bareRates.overall, 2)}x the bare loop`,
      baseline:
        `bare loop, ${concurrency} in flight: ${fixed(bareRates.overall)}/s (sustained ${fixed(bareRates.sustained)}/s); ` +
        `pod + secret: ${fixed(bareWithSecretRates.overall)}/s (Gantry ${fixed(gantryRates.overall / bareWithSecretRates.overall, 2)}x)`,
    },
  ];
  emitJson({
    benchmark: 'throughput',
    jobs: JOBS,
    limits: { ...UNCAPPED, concurrency },
    nodes: NODES,
    gantry: summary(gantryRates),
    bareLoop: summary(bareRates),
    bareLoopPodAndSecret: summary(bareWithSecretRates),
    ratios: {
      overall: round(gantryRates.overall / bareRates.overall),
      sustained: round(gantryRates.sustained / bareRates.sustained),
      overallVsPodAndSecret: round(gantryRates.overall / bareWithSecretRates.overall),
    },
    headline,
    wallSeconds: round((now() - wallStart) / 1000, 1),
  });
}

runBench(main, cleanups.runAll);
