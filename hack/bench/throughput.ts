/**
 * Throughput at saturation: how many runner pods a second Gantry launches when a burst of jobs arrives
 * at once (all their webhooks together), against bare loops measured in the same run: the same pods
 * (Gantry's own pod builder) created by a plain client loop with a fixed number of creates in flight
 * (8, Gantry's old fixed concurrency and its adaptive limit's start, and 64, its ceiling), against the
 * same apiserver. Each loop runs twice: pods only, and pod then JIT config Secret per runner (the two
 * writes Gantry makes, without its GitHub call). The floor of each kind is the faster of its loops.
 * A pod is launched when a watch sees it Running (KWOK plays the kubelet). Class limits are far above
 * the burst.
 *
 * Both rates are given over the whole burst (first webhook received, or the loop's start, to the last
 * pod Running) and sustained (from the 10th to the 90th percentile pod, without the ramp-up and tail).
 *
 * Then the runners' end, measured twice:
 * - alone: the burst's runners take their jobs (1 s each), exit, and Gantry removes their pods, with
 *   nothing else going on;
 * - in a whole lifecycle: a second burst whose runners take a job as soon as they run (as a runner
 *   process does once its pod starts and its JIT config is there), so launches and removals overlap.
 * Per finishing runner: job completed (on the fake GitHub) → pod gone, runner pod finished (seen
 * Succeeded) → gone, and the Kubernetes API requests Gantry sent naming the runner's pod or Secret
 * from its job's completion on. The lifecycle gives jobs completed per second. A runner "exits"
 * by the bench annotating its pod for KWOK to end it, as soon as its job is completed.
 *
 * actions-runner-controller's own published figures are printed beside these, as published (not
 * measured here): 3.26 jobs completed/s and job finished → runner removed p50 10.8 s, p99 17.6 s
 * (actions/actions-runner-controller PR #4670), about 10 Kubernetes API calls per finishing runner
 * (PR #4673).
 *
 *   node hack/bench/throughput.ts [--jobs 500] [--concurrency N] [--bare-concurrency 8,64]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import {
  bareClient,
  createCleanups,
  createNamespace,
  deleteAllPods,
  LABELS,
  now,
  type PodTimes,
  startGantry,
  startPlane,
  UNCAPPED,
  until,
  watchPods,
} from './lib/live.ts';
import { emitJson, type Headline, printTable, quantile, round, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: {
    jobs: { type: 'string', default: '500' },
    concurrency: { type: 'string' },
    'bare-concurrency': { type: 'string', default: '8,64' },
  },
});
const JOBS = Number(options.jobs);
const CONCURRENCY = options.concurrency === undefined ? undefined : Number(options.concurrency);
const BARE_CONCURRENCY = options['bare-concurrency'].split(',').map(Number);
if (
  !(Number.isInteger(JOBS) && JOBS >= 10) ||
  (CONCURRENCY !== undefined && !(Number.isInteger(CONCURRENCY) && CONCURRENCY > 0)) ||
  !BARE_CONCURRENCY.every((n) => Number.isInteger(n) && n > 0)
) {
  throw new Error(
    '--jobs: expected a whole number >= 10; --concurrency: a whole number > 0; ' +
      '--bare-concurrency: whole numbers > 0, comma-separated',
  );
}

const RUNNERS = 'bench-runners';
const FLOOR = 'bench-floor';
/** 10 KWOK nodes of 110 pods: a burst of 500 is all Running at once with room to spare. */
const NODES = 10;
const WARM_UP_PODS = 10;
const JOB_DURATION_MS = 1_000;
/** actions-runner-controller's published figures (not measured here). */
const ARC = {
  jobsCompletedPerSecond: 3.26,
  finishedToRemovedSeconds: { p50: 10.8, p99: 17.6 },
  kubeCallsPerFinishingRunner: 10,
  sources: 'actions/actions-runner-controller PR #4670 (jobs/s, finished → removed), PR #4673 (kube calls)',
} as const;
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

interface Ending {
  runners: number;
  /** Seconds from the job's completion on the fake GitHub to its pod gone. */
  jobCompletedToGone: { p50: number; p99: number };
  /** Seconds from the runner pod seen finished (Succeeded) to gone. */
  finishedToGone: { p50: number; p99: number };
  /** Requests Gantry sent naming a finishing runner's pod or Secret, from its job's completion on. */
  kubeCallsPerRunner: number;
  /** The same, by verb and resource. */
  kubeCalls: Record<string, number>;
  /** Jobs completed per second, first webhook received → last job completed (the lifecycle only). */
  jobsCompletedPerSecond?: number;
}

async function main(): Promise<void> {
  const wallStart = now();
  const { plane, kc, core } = await startPlane(cleanups, say, NODES);
  await Promise.all([createNamespace(core, RUNNERS), createNamespace(core, FLOOR)]);
  const gantry = await startGantry(cleanups, plane.kubeconfigPath, RUNNERS, CONCURRENCY);
  const maxConcurrency = gantry.config.controller.concurrency;
  const runnerPods = await watchPods(cleanups, kc, core, RUNNERS);
  const floorPods = await watchPods(cleanups, kc, core, FLOOR);
  const bare = bareClient(plane.kubeconfigPath, gantry.runnerClass, FLOOR);
  const patience = 300_000;
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  /**
   * `count` runners made by `concurrency` workers, each waiting for its writes' answers before the
   * next: the pod, and with `withSecret` then its JIT config Secret.
   */
  async function floor(count: number, withSecret: boolean, concurrency: number) {
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

  function queue(count: number): string[] {
    const { jobIds } = gantry.fake.queueJobs({
      repo: 'acme/app',
      labels: LABELS,
      count,
      jobsPerRun: 50,
      durationMs: JOB_DURATION_MS,
    });
    return jobIds.map((id) => `github:${id}`);
  }

  /** A burst of `count` jobs queued at once on the fake GitHub, timed from the first webhook Gantry received. */
  async function throughGantry(count: number) {
    const jobs = queue(count);
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

  /**
   * Plays the runner processes until every pod of `jobs` is gone: a Running pod whose runner is
   * registered connects and takes a job; once that job is completed the runner exits (its pod is
   * annotated for KWOK to end it Succeeded). Resolves with each runner's job.
   */
  async function playRunners(jobs: readonly string[]) {
    const connected = new Map<string, number>();
    const exiting = new Set<string>();
    const gone = () => jobs.every((job) => runnerPods.byJob.get(job)?.goneAt !== undefined);
    const deadline = now() + patience;
    while (!gone()) {
      if (now() > deadline) throw new Error('runners did not finish in time');
      for (const pod of runnerPods.pods.values()) {
        if (pod.runningAt === undefined || pod.goneAt !== undefined || connected.has(pod.name)) continue;
        try {
          const job = gantry.fake.startRunner(pod.name);
          if (job !== null) connected.set(pod.name, job);
        } catch {
          // Not registered yet: its create is still under way.
        }
      }
      for (const [name, jobId] of connected) {
        if (exiting.has(name) || gantry.fake.job(jobId)?.status !== 'completed') continue;
        exiting.add(name);
        void core
          .patchNamespacedPod(
            {
              name,
              namespace: RUNNERS,
              body: { metadata: { annotations: { 'kwok.gantry.dev/succeed-after': '0s' } } },
            },
            mergePatch,
          )
          .catch(() => exiting.delete(name));
      }
      await sleep(10);
    }
    return connected;
  }

  /** The runners' end, from the runner each job ran on and the times the watch saw. */
  function ending(connected: ReadonlyMap<string, number>): Ending {
    const toGone: number[] = [];
    const finishedToGone: number[] = [];
    const calls: Record<string, number> = {};
    let total = 0;
    for (const [name, jobId] of connected) {
      const pod = runnerPods.pods.get(name) as PodTimes;
      const completed = completedAt(jobId);
      if (completed === undefined || pod.goneAt === undefined) continue;
      toGone.push(pod.goneAt - completed);
      if (pod.finishedAt !== undefined) finishedToGone.push(pod.goneAt - pod.finishedAt);
      for (const request of gantry.kc.requests) {
        if (request.at < completed || request.at > pod.goneAt + 1_000) continue;
        const path = request.path.split('?')[0] ?? '';
        const resource = path.endsWith(`/pods/${name}`)
          ? 'pods'
          : path.endsWith(`/secrets/${name}-jit`)
            ? 'secrets'
            : undefined;
        if (!resource) continue;
        const key = `${request.method.toLowerCase()} ${resource}`;
        calls[key] = (calls[key] ?? 0) + 1;
        total += 1;
      }
    }
    const seconds = (values: number[], q: number) => quantile(values, q) / 1000;
    return {
      runners: toGone.length,
      jobCompletedToGone: { p50: seconds(toGone, 0.5), p99: seconds(toGone, 0.99) },
      finishedToGone: { p50: seconds(finishedToGone, 0.5), p99: seconds(finishedToGone, 0.99) },
      kubeCallsPerRunner: total / Math.max(1, toGone.length),
      kubeCalls: calls,
    };
  }

  /** When the fake GitHub completed the job, on this process's clock (`now()`). */
  const clockOffset = Date.now() - now();
  function completedAt(jobId: number): number | undefined {
    const completed = gantry.fake.job(jobId)?.completedAt;
    return completed === null || completed === undefined ? undefined : completed - clockOffset;
  }

  say(`warm-up: ${WARM_UP_PODS} pods, bare loop and Gantry`);
  await floor(WARM_UP_PODS, true, 8);
  const warmUp = queue(WARM_UP_PODS);
  await until(
    'the warm-up runners Running',
    async () => warmUp.every((job) => runnerPods.byJob.get(job)?.runningAt),
    patience,
    50,
  );
  await playRunners(warmUp);

  const floors: { concurrency: number; pods: Rates; podAndSecret: Rates }[] = [];
  for (const concurrency of BARE_CONCURRENCY) {
    say(`bare loop: ${JOBS} pods, ${concurrency} creates in flight`);
    const pods = await floor(JOBS, false, concurrency);
    say(`bare loop: ${JOBS} pods and their secrets, ${concurrency} runners in flight`);
    const podAndSecret = await floor(JOBS, true, concurrency);
    floors.push({ concurrency, pods, podAndSecret });
  }
  const best = (pick: (f: (typeof floors)[number]) => Rates) =>
    floors.reduce((a, b) => (pick(b).overall > pick(a).overall ? b : a));
  const podFloor = best((f) => f.pods);
  const secretFloor = best((f) => f.podAndSecret);
  const bareRates = podFloor.pods;
  const bareWithSecretRates = secretFloor.podAndSecret;

  say(`Gantry: a burst of ${JOBS} jobs`);
  const limitsBefore = gantry.app.runners?.limit();
  const gantryRates = await throughGantry(JOBS);
  const limitAfterBurst = gantry.app.runners?.limit();
  say(`Gantry: the burst's runners take their jobs (${JOB_DURATION_MS / 1000} s) and exit`);
  const burstJobs = [...runnerPods.byJob.keys()].filter((job) => !warmUp.includes(job));
  const alone = ending(await playRunners(burstJobs));

  say(`Gantry: a lifecycle burst of ${JOBS} jobs, runners taking them as soon as they run`);
  const lifecycleJobs = queue(JOBS);
  const lifecycleStart = now();
  await until(
    'the lifecycle runner pods seen',
    async () => lifecycleJobs.every((job) => runnerPods.byJob.has(job)),
    patience,
    20,
  ).catch(() => undefined);
  const connected = await playRunners(lifecycleJobs);
  const lifecycle = ending(connected);
  const lastCompleted = Math.max(...[...connected.values()].map((id) => completedAt(id) ?? Number.NaN));
  const firstReceived = Math.min(
    ...lifecycleJobs.map((job) => gantry.queuedReceivedAt(job) ?? lifecycleStart),
  );
  lifecycle.jobsCompletedPerSecond = connected.size / ((lastCompleted - firstReceived) / 1000);

  const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
  const row = (name: string, r: Rates) => [
    name,
    String(r.pods),
    fixed(r.seconds, 2),
    fixed(r.overall),
    fixed(r.sustained),
    fixed(r.createsPerSecond),
    `${fixed(r.overall / bareRates.overall, 2)}x`,
    `${fixed(r.overall / bareWithSecretRates.overall, 2)}x`,
  ];
  printTable(
    `Throughput at saturation: ${JOBS} runner pods (class limits: maxRunners ${UNCAPPED.maxRunners}, ` +
      `maxCreatePerSecond ${UNCAPPED.maxCreatePerSecond}; controller.concurrency ${maxConcurrency}` +
      `${CONCURRENCY === undefined ? ' (the default)' : ''}, adaptive limit ${limitsBefore} before the burst, ` +
      `${limitAfterBurst} after; ${NODES} KWOK nodes).\n` +
      'Bare loops: the same pods, N in flight; Gantry per runner: pod create, GitHub JIT config, Secret create ' +
      '(the fake GitHub shares Gantry’s process). Floors: the fastest bare loop of each kind.',
    ['case', 'pods', 'seconds', 'Running/s', 'sustained/s', 'creates/s', 'x pod floor', 'x pod+secret floor'],
    [
      ...floors.flatMap((f) => [
        row(`bare loop, pods, ${f.concurrency} in flight`, f.pods),
        row(`bare loop, pod + secret, ${f.concurrency} in flight`, f.podAndSecret),
      ]),
      row('gantry (burst of jobs)', gantryRates),
    ],
  );
  const s = (value: number) => `${fixed(value, 2)} s`;
  const endRow = (name: string, e: Ending) => [
    name,
    String(e.runners),
    e.jobsCompletedPerSecond === undefined ? '-' : fixed(e.jobsCompletedPerSecond, 1),
    `${s(e.jobCompletedToGone.p50)} / ${s(e.jobCompletedToGone.p99)}`,
    `${s(e.finishedToGone.p50)} / ${s(e.finishedToGone.p99)}`,
    `${fixed(e.kubeCallsPerRunner, 2)} (${Object.entries(e.kubeCalls)
      .map(([k, v]) => `${k} ${fixed(v / Math.max(1, e.runners), 2)}`)
      .join(', ')})`,
  ];
  printTable(
    `Runners' end: jobs of ${JOB_DURATION_MS / 1000} s; a runner exits when its job is completed (KWOK ends its pod).\n` +
      'ARC: actions-runner-controller’s own published figures, not measured here ' +
      `(${ARC.sources}); its "finished → removed" is job finished → EphemeralRunner removed.`,
    [
      'case',
      'runners',
      'jobs completed/s',
      'job completed → pod gone p50 / p99',
      'pod finished → gone p50 / p99',
      'kube calls per finishing runner',
    ],
    [
      endRow('gantry, runners ending alone', alone),
      endRow(`gantry, lifecycle burst of ${JOBS} jobs`, lifecycle),
      [
        'ARC (published, PR #4670 / #4673)',
        '-',
        fixed(ARC.jobsCompletedPerSecond, 2),
        `${s(ARC.finishedToRemovedSeconds.p50)} / ${s(ARC.finishedToRemovedSeconds.p99)}`,
        '-',
        `~${ARC.kubeCallsPerFinishingRunner}`,
      ],
    ],
  );

  const summary = (r: Rates) => ({
    pods: r.pods,
    seconds: round(r.seconds, 2),
    runningPerSecond: round(r.overall, 1),
    sustainedPerSecond: round(r.sustained, 1),
    createsPerSecond: round(r.createsPerSecond, 1),
  });
  const endSummary = (e: Ending) => ({
    runners: e.runners,
    ...(e.jobsCompletedPerSecond !== undefined
      ? { jobsCompletedPerSecond: round(e.jobsCompletedPerSecond, 2) }
      : {}),
    jobCompletedToGoneSeconds: {
      p50: round(e.jobCompletedToGone.p50, 3),
      p99: round(e.jobCompletedToGone.p99, 3),
    },
    finishedToGoneSeconds: { p50: round(e.finishedToGone.p50, 3), p99: round(e.finishedToGone.p99, 3) },
    kubeCallsPerRunner: round(e.kubeCallsPerRunner, 2),
    kubeCalls: e.kubeCalls,
  });
  const headline: Headline[] = [
    {
      what: `runner pods launched per second at saturation, burst of ${JOBS} jobs (\`throughput\`)`,
      figure:
        `${fixed(gantryRates.overall)}/s (sustained ${fixed(gantryRates.sustained)}/s), ` +
        `${fixed(gantryRates.overall / bareWithSecretRates.overall, 2)}x the pod + Secret floor, ` +
        `${fixed(gantryRates.overall / bareRates.overall, 2)}x the pod floor; creates sent ${fixed(gantryRates.createsPerSecond)}/s`,
      baseline:
        `bare loops, fastest of ${BARE_CONCURRENCY.join(' and ')} in flight: pods ${fixed(bareRates.overall)}/s ` +
        `(${podFloor.concurrency}), pod + Secret ${fixed(bareWithSecretRates.overall)}/s (${secretFloor.concurrency}); ` +
        `creates sent ${fixed(bareWithSecretRates.createsPerSecond)}/s`,
    },
    {
      what: `runners' end (\`throughput\`, ${JOB_DURATION_MS / 1000} s jobs): job completed → pod gone, pod finished → gone, p50 / p99; kube calls per finishing runner`,
      figure:
        `lifecycle burst of ${JOBS}: ${s(lifecycle.jobCompletedToGone.p50)} / ${s(lifecycle.jobCompletedToGone.p99)}, ` +
        `${s(lifecycle.finishedToGone.p50)} / ${s(lifecycle.finishedToGone.p99)}, ${fixed(lifecycle.kubeCallsPerRunner, 2)} calls; ` +
        `${fixed(lifecycle.jobsCompletedPerSecond ?? Number.NaN, 1)} jobs completed/s; ending alone: ` +
        `${s(alone.finishedToGone.p50)} / ${s(alone.finishedToGone.p99)} finished → gone`,
      baseline:
        `ARC's published figures (not measured here): job finished → runner removed ${s(ARC.finishedToRemovedSeconds.p50)} / ` +
        `${s(ARC.finishedToRemovedSeconds.p99)}, ${ARC.jobsCompletedPerSecond} jobs completed/s (PR #4670); ~${ARC.kubeCallsPerFinishingRunner} kube calls per finishing runner (PR #4673)`,
    },
  ];
  emitJson({
    benchmark: 'throughput',
    jobs: JOBS,
    limits: { ...UNCAPPED, concurrency: maxConcurrency, adaptiveLimitAfterBurst: limitAfterBurst },
    nodes: NODES,
    gantry: summary(gantryRates),
    bareLoops: floors.map((f) => ({
      concurrency: f.concurrency,
      pods: summary(f.pods),
      podAndSecret: summary(f.podAndSecret),
    })),
    ratios: {
      overall: round(gantryRates.overall / bareRates.overall),
      sustained: round(gantryRates.sustained / bareRates.sustained),
      overallVsPodAndSecret: round(gantryRates.overall / bareWithSecretRates.overall),
      createsVsPodAndSecret: round(gantryRates.createsPerSecond / bareWithSecretRates.createsPerSecond),
    },
    ending: { alone: endSummary(alone), lifecycle: endSummary(lifecycle) },
    arcPublished: ARC,
    headline,
    wallSeconds: round((now() - wallStart) / 1000, 1),
  });
}

runBench(main, cleanups.runAll);
