/**
 * Decision latency: from the moment Gantry's HTTP server receives a job's `queued` webhook to the
 * moment its Kubernetes client sends the runner pod's create request, and to the moment a watch sees
 * that pod Running (KWOK plays the kubelet), p50 and p99, with jobs offered at 10, 50 and 200 a second
 * for a few seconds each, against the local control plane and the fake GitHub.
 *
 * The floor, measured in the same run at the same rates: a bare loop that creates the same pods (the
 * same spec, built by Gantry's own pod builder) against the same apiserver with nothing in between,
 * timed from the moment the loop decides to create one. Gantry's figures are then given as a ratio
 * over the floor's. Class limits are far above the load, so that nothing throttles on purpose.
 *
 *   node hack/bench/decision-latency.ts [--rates 10,50,200] [--seconds 3] [--concurrency N]
 */
import { parseArgs } from 'node:util';
import {
  bareClient,
  createCleanups,
  createNamespace,
  deleteAllPods,
  LABELS,
  now,
  offerAtRate,
  startGantry,
  startPlane,
  UNCAPPED,
  until,
  watchPods,
} from './lib/live.ts';
import { emitJson, type Headline, printTable, quantile, round, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: {
    rates: { type: 'string', default: '10,50,200' },
    seconds: { type: 'string', default: '3' },
    // Gantry's controller.concurrency (creates and removals at once); its default when not given.
    concurrency: { type: 'string' },
  },
});
const CONCURRENCY = options.concurrency === undefined ? undefined : Number(options.concurrency);
const RATES = options.rates.split(',').map(Number);
const SECONDS = Number(options.seconds);
if (
  !RATES.every((r) => Number.isFinite(r) && r > 0) ||
  !(SECONDS > 0) ||
  (CONCURRENCY !== undefined && !(Number.isInteger(CONCURRENCY) && CONCURRENCY > 0))
) {
  throw new Error(
    '--rates: expected numbers > 0, comma-separated; --seconds: a number > 0; --concurrency: a whole number > 0',
  );
}

const RUNNERS = 'bench-runners';
const FLOOR = 'bench-floor';
/** 10 KWOK nodes of 110 pods: the most pods alive at once (200/s for 3 s) fit with room to spare. */
const NODES = 10;
const JOB_DURATION_MS = 200;
const WARM_UP = { rate: 10, seconds: 0.5 };
const say = (message: string) => process.stderr.write(`[decision-latency] ${message}\n`);
const cleanups = createCleanups(say);

interface RateResult {
  rate: number;
  jobs: number;
  /** Gantry's adaptive limit of runner actions under way once the rate's jobs were all Running. */
  adaptiveLimit: number | null;
  offeredSeconds: { gantry: number; floor: number };
  gantryMs: PathMs;
  floorMs: PathMs;
  ratios: { createSent: Pair; running: Pair };
}
type Pair = { p50: number; p99: number };
type PathMs = { samples: number; createSent: Pair; running: Pair };

interface Latencies {
  samples: number;
  createSent: { p50: number; p99: number };
  running: { p50: number; p99: number };
}

function latencies(createSent: number[], running: number[]): Latencies {
  return {
    samples: running.length,
    createSent: { p50: quantile(createSent, 0.5), p99: quantile(createSent, 0.99) },
    running: { p50: quantile(running, 0.5), p99: quantile(running, 0.99) },
  };
}

async function main(): Promise<void> {
  const wallStart = now();
  const { plane, kc, core } = await startPlane(cleanups, say, NODES);
  await Promise.all([createNamespace(core, RUNNERS), createNamespace(core, FLOOR)]);
  const gantry = await startGantry(cleanups, plane.kubeconfigPath, RUNNERS, CONCURRENCY);
  const runnerPods = await watchPods(cleanups, kc, core, RUNNERS);
  const floorPods = await watchPods(cleanups, kc, core, FLOOR);
  const bare = bareClient(plane.kubeconfigPath, gantry.runnerClass, FLOOR);
  const patience = 120_000;

  /** The bare loop at `rate` for `seconds`: decide, create, nothing else. Its pods are removed after. */
  async function floor(rate: number, seconds: number) {
    const decidedAt = new Map<string, number>();
    let failures = 0;
    const offered = await offerAtRate(rate, seconds, (count) => {
      for (let i = 0; i < count; i++) {
        const body = bare.nextPod();
        decidedAt.set(body.metadata?.name ?? '', now());
        void bare.core.createNamespacedPod({ namespace: FLOOR, body }).catch(() => failures++);
      }
    });
    await until(
      `${decidedAt.size} bare pods Running`,
      async () => failures > 0 || [...decidedAt.keys()].every((name) => floorPods.pods.get(name)?.runningAt),
      patience,
      50,
    );
    if (failures > 0) throw new Error(`${failures} bare pod creates failed`);
    const sent: number[] = [];
    const running: number[] = [];
    for (const [name, at] of decidedAt) {
      sent.push((bare.kc.podCreates.get(name)?.at ?? Number.NaN) - at);
      running.push((floorPods.pods.get(name)?.runningAt ?? Number.NaN) - at);
    }
    await deleteAllPods(core, floorPods, FLOOR);
    return { offered, result: latencies(sent, running) };
  }

  /** Jobs queued on the fake GitHub at `rate` for `seconds`; each timed from its webhook's arrival. */
  async function throughGantry(rate: number, seconds: number) {
    const jobs: string[] = [];
    const offered = await offerAtRate(rate, seconds, (count) => {
      const { jobIds } = gantry.fake.queueJobs({
        repo: 'acme/app',
        labels: LABELS,
        count,
        durationMs: JOB_DURATION_MS,
      });
      jobs.push(...jobIds.map((id) => `github:${id}`));
    });
    await until(
      `the runner pods of ${jobs.length} jobs Running`,
      async () => jobs.every((job) => runnerPods.byJob.get(job)?.runningAt),
      patience,
      50,
    );
    const createSentAt = new Map<string, number>();
    for (const { at, job } of gantry.kc.podCreates.values())
      if (job && !createSentAt.has(job)) createSentAt.set(job, at);
    const sent: number[] = [];
    const running: number[] = [];
    for (const job of jobs) {
      const receivedAt = gantry.queuedReceivedAt(job) ?? Number.NaN;
      sent.push((createSentAt.get(job) ?? Number.NaN) - receivedAt);
      running.push((runnerPods.byJob.get(job)?.runningAt ?? Number.NaN) - receivedAt);
    }
    if (sent.some(Number.isNaN) || running.some(Number.isNaN))
      throw new Error('a job lacks its webhook, its create or its Running time');
    const limit = gantry.app.runners?.limit();
    await drain();
    return { offered, result: latencies(sent, running), limit };
  }

  /**
   * Back to an empty namespace between measurements, quickly: every runner connects to the fake
   * GitHub and takes a job, the jobs complete, and the pods are deleted at once (Gantry sees them go).
   */
  async function drain() {
    for (const pod of runnerPods.pods.values()) {
      if (pod.goneAt !== undefined) continue;
      try {
        gantry.fake.startRunner(pod.name);
      } catch {
        // Not registered: a runner Gantry is still completing; it has no job to take anyway.
      }
    }
    await until(
      'every job completed',
      async () => gantry.fake.jobs().every((job) => job.status === 'completed'),
      60_000,
      100,
    );
    // Gantry too must know they ended: a job it still thinks queued would get a new runner.
    await until(
      "every job gone from Gantry's ledger",
      async () => [...(gantry.app.runners?.ledger.jobs() ?? [])].length === 0,
      60_000,
      100,
    );
    await deleteAllPods(core, runnerPods, RUNNERS);
  }

  // First connections, TLS handshakes and JIT compilation are not what is measured.
  say(`warm-up: ${WARM_UP.rate}/s for ${WARM_UP.seconds} s, bare loop and Gantry`);
  await floor(WARM_UP.rate, WARM_UP.seconds);
  await throughGantry(WARM_UP.rate, WARM_UP.seconds);

  const results: RateResult[] = [];
  for (const rate of RATES) {
    say(`${rate} jobs/s for ${SECONDS} s: bare loop`);
    const bareRun = await floor(rate, SECONDS);
    say(`${rate} jobs/s for ${SECONDS} s: Gantry`);
    const gantryRun = await throughGantry(rate, SECONDS);
    const ratio = (a: number, b: number) => round(a / b, 2);
    const g = gantryRun.result;
    const f = bareRun.result;
    results.push({
      rate,
      jobs: gantryRun.offered.total,
      adaptiveLimit: gantryRun.limit ?? null,
      offeredSeconds: {
        gantry: round(gantryRun.offered.seconds, 2),
        floor: round(bareRun.offered.seconds, 2),
      },
      gantryMs: {
        samples: g.samples,
        createSent: { p50: round(g.createSent.p50, 1), p99: round(g.createSent.p99, 1) },
        running: { p50: round(g.running.p50, 1), p99: round(g.running.p99, 1) },
      },
      floorMs: {
        samples: f.samples,
        createSent: { p50: round(f.createSent.p50, 2), p99: round(f.createSent.p99, 2) },
        running: { p50: round(f.running.p50, 1), p99: round(f.running.p99, 1) },
      },
      ratios: {
        createSent: {
          p50: ratio(g.createSent.p50, f.createSent.p50),
          p99: ratio(g.createSent.p99, f.createSent.p99),
        },
        running: { p50: ratio(g.running.p50, f.running.p50), p99: ratio(g.running.p99, f.running.p99) },
      },
    });
  }

  const { controller } = gantry.config;
  const setup =
    `class limits: maxRunners ${UNCAPPED.maxRunners}, maxCreatePerSecond ${UNCAPPED.maxCreatePerSecond}; ` +
    `controller.concurrency ${controller.concurrency}${CONCURRENCY === undefined ? ' (the default)' : ''} ` +
    '(limit: the adaptive limit of runner actions once the jobs ran), ' +
    `reconcilePeriodSeconds ${controller.reconcilePeriodSeconds}; ` +
    `${NODES} KWOK nodes`;
  const ms = (value: number, digits = 1) => (Number.isNaN(value) ? '-' : value.toFixed(digits));
  const x = (value: number) => (Number.isNaN(value) ? '-' : `${value.toFixed(2)}x`);
  printTable(
    `Decision latency, jobs offered at each rate for ${SECONDS} s (${setup}).\n` +
      'Gantry: from its HTTP server receiving the queued webhook (the fake GitHub shares its process); ' +
      'floor: a bare loop creating the same pods at the same rate, from its decision.',
    [
      'rate',
      'jobs',
      'limit',
      'path',
      'p50 ms',
      'p99 ms',
      'floor p50',
      'floor p99',
      'x floor p50',
      'x floor p99',
    ],
    results.flatMap((r) => [
      [
        `${r.rate}/s`,
        String(r.jobs),
        String(r.adaptiveLimit ?? '-'),
        'received → pod create sent',
        ms(r.gantryMs.createSent.p50),
        ms(r.gantryMs.createSent.p99),
        ms(r.floorMs.createSent.p50, 2),
        ms(r.floorMs.createSent.p99, 2),
        x(r.ratios.createSent.p50),
        x(r.ratios.createSent.p99),
      ],
      [
        '',
        '',
        '',
        'received → pod Running',
        ms(r.gantryMs.running.p50),
        ms(r.gantryMs.running.p99),
        ms(r.floorMs.running.p50),
        ms(r.floorMs.running.p99),
        x(r.ratios.running.p50),
        x(r.ratios.running.p99),
      ],
    ]),
  );

  const perRate = (pick: (r: RateResult) => string) =>
    results.map((r) => `${r.rate}/s ${pick(r)}`).join('; ');
  const headline: Headline[] = [
    {
      what: 'decision latency, webhook received → pod create sent, p50 / p99 (`decision-latency`)',
      figure: perRate((r) => `${ms(r.gantryMs.createSent.p50)} / ${ms(r.gantryMs.createSent.p99)} ms`),
      baseline: `bare loop, decided → sent: ${perRate((r) => `${ms(r.floorMs.createSent.p50, 2)} / ${ms(r.floorMs.createSent.p99, 2)} ms`)}`,
    },
    {
      what: 'decision latency, webhook received → pod Running, p50 / p99',
      figure: perRate(
        (r) =>
          `${ms(r.gantryMs.running.p50)} / ${ms(r.gantryMs.running.p99)} ms (${x(r.ratios.running.p50)} / ${x(r.ratios.running.p99)})`,
      ),
      baseline: `bare loop, decided → Running: ${perRate((r) => `${ms(r.floorMs.running.p50)} / ${ms(r.floorMs.running.p99)} ms`)}`,
    },
  ];
  emitJson({
    benchmark: 'decision-latency',
    secondsPerRate: SECONDS,
    limits: {
      ...UNCAPPED,
      concurrency: controller.concurrency,
      reconcilePeriodSeconds: controller.reconcilePeriodSeconds,
    },
    nodes: NODES,
    results,
    headline,
    wallSeconds: round((now() - wallStart) / 1000, 1),
  });
}

runBench(main, cleanups.runAll);
