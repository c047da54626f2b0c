/**
 * Memory: what Gantry's in-memory picture costs with 10,000 tracked jobs and 5,000 live runners.
 * The ledger and the metrics observers (histograms, cost meter, recent activity) are fed synthetic
 * source events and pod observations in this process, as the sources and the pod watch would feed
 * them, and resident set size and V8 heap are read after a forced full GC at each stage. The
 * baseline is the same process before loading, with the same code already run once (warm-up), so
 * that the deltas are the data, not the code.
 *
 * The pod watch also keeps every runner pod object it saw (client-node's informer cache); that part
 * is approximated on its own line by 5,000 pods as Gantry's pod builder makes them, with a status.
 *
 *   node hack/bench/memory.ts [--jobs 10000] [--runners 5000]   (re-runs itself with --expose-gc)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { buildClassifier } from '../../src/classes/matching.ts';
import { classesSchema, type RunnerClasses } from '../../src/classes/schema.ts';
import { buildRunnerPod } from '../../src/launcher/runner-pod.ts';
import { Ledger, type LedgerChange } from '../../src/ledger/ledger.ts';
import { createGantryMetrics } from '../../src/metrics/gantry-metrics.ts';
import type { JobEvent, JobIdentity } from '../../src/model/job.ts';
import { runnerNameFor } from '../../src/model/runner-name.ts';
import { runnerHealthRules } from '../../src/planner/runner-health.ts';
import { emitJson, type Headline, printTable, round, runBench } from './lib/report.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  // A forced GC needs --expose-gc: run again with it (npm run bench and `node hack/bench/memory.ts` alike).
  const again = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(again.status ?? 1);
}

const { values: options } = parseArgs({
  options: { jobs: { type: 'string', default: '10000' }, runners: { type: 'string', default: '5000' } },
});
const JOBS = Number(options.jobs);
const RUNNERS = Number(options.runners);
if (!(Number.isInteger(JOBS) && Number.isInteger(RUNNERS) && RUNNERS >= 1 && JOBS >= RUNNERS)) {
  throw new Error('--jobs and --runners: whole numbers, 1 <= runners <= jobs');
}

const CLASS_COUNT = 10;
const REPOS = 200;
const NOW = Date.now();
const classNames = Array.from({ length: CLASS_COUNT }, (_, i) => `class-${i}`);
const classes: RunnerClasses = classesSchema.parse(
  Object.fromEntries(
    classNames.map((name, i) => [
      name,
      {
        namespace: `runners-${i % 3}`,
        match: { github: { labels: ['self-hosted', 'linux', name] } },
        maxRunners: 2_000,
        resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } },
        cost: { perVcpuHour: 0.04, perGibHour: 0.005 },
      },
    ]),
  ),
);

function identity(i: number): JobIdentity {
  const className = classNames[i % CLASS_COUNT] ?? '';
  const id = 9_000_000_000 + i;
  return {
    source: 'github',
    key: `github:${id}`,
    repo: `acme-${i % 7}/repo-${i % REPOS}`,
    labels: ['self-hosted', 'linux', className],
    runId: String(8_000_000_000 + Math.floor(i / 10)),
    runAttempt: 1,
    untrusted: false,
    name: `build / test (${i % 10}, linux-x64)`,
  };
}

const runnerName = (i: number) =>
  runnerNameFor(classNames[i % CLASS_COUNT] ?? '', `github:${9_000_000_000 + i}`);

/** The in-memory picture as createApp wires it: the ledger, and the observers its changes feed. */
function createPicture() {
  const ledger = new Ledger({
    classify: buildClassifier(classes),
    health: runnerHealthRules({
      startTimeoutMs: 600_000,
      capacityTimeoutMs: 1_800_000,
      deadlineGraceMs: 60_000,
    }),
  });
  const registry = new Registry();
  const metrics = createGantryMetrics({
    registry,
    classes,
    snapshot: (now) => ledger.snapshot(classes, now),
    now: () => NOW + 600_000,
  });
  const notify = (changes: LedgerChange[]) => {
    for (const change of changes) metrics.onChange(change);
  };
  return {
    ledger,
    registry,
    metrics,
    /** `count` jobs queued on GitHub, as webhooks announce them. */
    queueJobs(count: number) {
      for (let i = 0; i < count; i++) {
        const event: JobEvent = {
          kind: 'queued',
          job: identity(i),
          via: 'webhook',
          createdAt: NOW - 300_000 + i,
        };
        notify(ledger.applyJobEvent(event));
      }
    },
    /** `count` runner pods seen Pending, then Running, and the first `count` jobs started on them. */
    runRunners(count: number) {
      for (let i = 0; i < count; i++) {
        const className = classNames[i % CLASS_COUNT] ?? '';
        const base = {
          name: runnerName(i),
          namespace: classes[className]?.namespace ?? '',
          className,
          createdAt: NOW - 200_000 + i,
          deleting: false,
        };
        notify(ledger.observeRunner({ ...base, phase: 'Pending' }));
        notify(ledger.observeRunner({ ...base, phase: 'Running', runningSince: NOW - 190_000 + i }));
        notify(
          ledger.applyJobEvent({
            kind: 'started',
            job: identity(i),
            via: 'webhook',
            createdAt: NOW - 300_000 + i,
            startedAt: NOW - 180_000 + i,
            runnerName: runnerName(i),
          }),
        );
      }
    },
    /** What a scrape and the status page do: snapshots, gauges, cost settled up to now. */
    async read() {
      await registry.metrics();
      return metrics.status().classes.length;
    },
  };
}

/** The runner pods as the informer's cache holds them: the spec Gantry sends and a status. */
function podCache(count: number): Map<string, V1Pod> {
  const pods = new Map<string, V1Pod>();
  for (let i = 0; i < count; i++) {
    const className = classNames[i % CLASS_COUNT] ?? '';
    const runnerClass = classes[className];
    if (!runnerClass) continue;
    const job = identity(i);
    const pod = buildRunnerPod(
      {
        kind: 'create-runner',
        className,
        namespace: runnerClass.namespace,
        nameSeed: job.key,
        runnerName: runnerName(i),
        jobKey: job.key,
        reason: 'queued-jobs',
      },
      runnerClass,
    );
    const started = new Date(NOW - 190_000 + i);
    pod.metadata = {
      ...pod.metadata,
      uid: `8d3f${String(i).padStart(8, '0')}-1c2b-4e5f-9a0b-3c4d5e6f7a8b`,
      resourceVersion: String(100_000 + i),
      creationTimestamp: new Date(NOW - 200_000 + i),
    };
    pod.spec = { ...pod.spec, containers: pod.spec?.containers ?? [], nodeName: `node-${i % 50}` };
    pod.status = {
      phase: 'Running',
      podIP: `10.244.${(i >> 8) & 255}.${i & 255}`,
      startTime: started,
      conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
        type,
        status: 'True',
        lastTransitionTime: started,
      })),
      containerStatuses: [
        {
          name: 'runner',
          image: runnerClass.image,
          imageID: `${runnerClass.image}@sha256:${'0'.repeat(64)}`,
          ready: true,
          restartCount: 0,
          started: true,
          state: { running: { startedAt: started } },
        },
      ],
    };
    pods.set(pod.metadata.name ?? String(i), pod);
  }
  return pods;
}

interface Reading {
  stage: string;
  rssBytes: number;
  heapUsedBytes: number;
}

function measure(stage: string): Reading {
  // Several passes: finalizers and weak references free more on the next one.
  for (let i = 0; i < 4; i++) gc?.();
  const usage = process.memoryUsage();
  return { stage, rssBytes: usage.rss, heapUsedBytes: usage.heapUsed };
}

async function main(): Promise<void> {
  // Warm-up: the same code run once on a small load and dropped, so the baseline has it compiled.
  {
    const warm = createPicture();
    warm.queueJobs(200);
    warm.runRunners(100);
    await warm.read();
    podCache(100);
  }
  const baseline = measure('baseline: empty ledger and observers, code warmed up');

  const picture = createPicture();
  picture.queueJobs(JOBS);
  await picture.read();
  const withJobs = measure(`+ ${JOBS.toLocaleString('en')} jobs queued`);
  picture.runRunners(RUNNERS);
  await picture.read();
  const withRunners = measure(
    `+ ${RUNNERS.toLocaleString('en')} runners Running, ${RUNNERS.toLocaleString('en')} of the jobs started on them`,
  );
  const cache = podCache(RUNNERS);
  const withCache = measure(
    `+ the pod watch's cache of ${RUNNERS.toLocaleString('en')} pods (approximation)`,
  );
  // Still in use after the measurements, so none of it could be collected before them.
  const tracked = [...picture.ledger.jobs()].length;
  const live = [...picture.ledger.runnerNames()].length;
  if (tracked !== JOBS || live !== RUNNERS || cache.size !== RUNNERS) {
    throw new Error(`expected ${JOBS} jobs and ${RUNNERS} runners tracked, found ${tracked} and ${live}`);
  }

  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const perItem = (bytes: number, items: number) => `${Math.round(bytes / items).toLocaleString('en')} B`;
  const steps = [
    { reading: withJobs, previous: baseline, items: JOBS, unit: 'job' },
    { reading: withRunners, previous: withJobs, items: RUNNERS, unit: 'runner' },
    { reading: withCache, previous: withRunners, items: RUNNERS, unit: 'pod' },
  ];
  printTable(
    `Memory with ${JOBS.toLocaleString('en')} tracked jobs and ${RUNNERS.toLocaleString('en')} live runners ` +
      `(${CLASS_COUNT} classes), after a forced full GC at each stage; node ${process.version}`,
    ['stage', 'RSS MiB', 'heap used MiB', 'Δ RSS MiB', 'Δ heap MiB', 'heap per item'],
    [
      [baseline.stage, mib(baseline.rssBytes), mib(baseline.heapUsedBytes), '-', '-', '-'],
      ...steps.map(({ reading, previous, items, unit }) => [
        reading.stage,
        mib(reading.rssBytes),
        mib(reading.heapUsedBytes),
        mib(reading.rssBytes - previous.rssBytes),
        mib(reading.heapUsedBytes - previous.heapUsedBytes),
        `${perItem(reading.heapUsedBytes - previous.heapUsedBytes, items)}/${unit}`,
      ]),
      [
        `total over the baseline: ledger and observers`,
        '',
        '',
        mib(withRunners.rssBytes - baseline.rssBytes),
        mib(withRunners.heapUsedBytes - baseline.heapUsedBytes),
        '',
      ],
      [
        `total over the baseline: with the pod cache`,
        '',
        '',
        mib(withCache.rssBytes - baseline.rssBytes),
        mib(withCache.heapUsedBytes - baseline.heapUsedBytes),
        '',
      ],
    ],
  );

  const delta = (a: Reading, b: Reading) => ({
    rssMiB: round((a.rssBytes - b.rssBytes) / 1024 / 1024, 1),
    heapUsedMiB: round((a.heapUsedBytes - b.heapUsedBytes) / 1024 / 1024, 1),
  });
  const total = delta(withRunners, baseline);
  const totalWithCache = delta(withCache, baseline);
  const headline: Headline[] = [
    {
      what: `resident memory and heap, ${JOBS.toLocaleString('en')} tracked jobs and ${RUNNERS.toLocaleString('en')} live runners (\`memory\`)`,
      figure:
        `+${total.rssMiB} MiB RSS, +${total.heapUsedMiB} MiB heap (ledger and metrics); ` +
        `+${totalWithCache.rssMiB} MiB RSS, +${totalWithCache.heapUsedMiB} MiB heap with the pod watch's cache`,
      baseline: `same process before loading: ${mib(baseline.rssBytes)} MiB RSS, ${mib(baseline.heapUsedBytes)} MiB heap`,
    },
  ];
  emitJson({
    benchmark: 'memory',
    jobs: JOBS,
    runners: RUNNERS,
    classes: CLASS_COUNT,
    node: process.version,
    readings: [baseline, withJobs, withRunners, withCache],
    deltas: {
      jobs: delta(withJobs, baseline),
      runners: delta(withRunners, withJobs),
      podCache: delta(withCache, withRunners),
      total,
      totalWithPodCache: totalWithCache,
    },
    headline,
  });
}

runBench(main);
