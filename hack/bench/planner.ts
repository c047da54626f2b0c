/**
 * Planner benchmark: time per planning pass with 1,000, 10,000 and 50,000 queued jobs across 20 classes
 * and 3,000 runners, against a baseline measured in the same run on the same snapshot (one trivial
 * pass that only counts jobs and runners). The runners stay the same at every size, so the job count
 * is what changes. Prints a table, then the same numbers as JSON on the last line.
 *
 *   node hack/bench/planner.ts [--jobs 1000,10000,50000] [--iterations 200] [--warmup 30]
 *
 * --iterations and --warmup are for 10,000 jobs; other sizes scale them inversely (at least 20 and 5,
 * at most twice as many), so that no size takes much longer than another.
 */
import { parseArgs } from 'node:util';
import { buildClassifier } from '../../src/classes/matching.ts';
import { classesSchema, type RunnerClasses } from '../../src/classes/schema.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import type {
  ClassifiableJob,
  ClassSnapshot,
  LedgerSnapshot,
  QueuedJob,
  RunnerState,
  RunnerView,
} from '../../src/model/ledger-snapshot.ts';
import { plan } from '../../src/planner/plan.ts';
import { runnerHealthRules } from '../../src/planner/runner-health.ts';
import { seededRandom } from '../../src/util/distribution.ts';
import { type Headline, round } from './lib/report.ts';

const { values: options } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000,10000,50000' },
    iterations: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '30' },
  },
});
const SIZES = options.jobs.split(',').map(Number);
const ITERATIONS = Number(options.iterations);
const WARMUP = Number(options.warmup);
if (!Number.isInteger(ITERATIONS) || ITERATIONS < 1 || !Number.isInteger(WARMUP) || WARMUP < 0) {
  throw new Error('--iterations: expected a whole number >= 1; --warmup: expected a whole number >= 0');
}
if (!SIZES.every((size) => Number.isInteger(size) && size >= 20)) {
  throw new Error('--jobs: expected whole numbers >= 20, comma-separated');
}
const REFERENCE_JOBS = 10_000;
const scaled = (count: number, size: number, least: number) =>
  Math.min(2 * count, Math.max(least, Math.round((count * REFERENCE_JOBS) / size)));

const CLASS_COUNT = 20;
const REPOS = 200;
const RUNNERS_PER_CLASS = 150;
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

// Seeded, so every run plans the same snapshot.
let random = seededRandom(20260115);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const classNames = Array.from({ length: CLASS_COUNT }, (_, i) => `class-${String(i).padStart(2, '0')}`);
const repos = Array.from({ length: REPOS }, (_, i) => `org-${i % 7}/repo-${i}`);

/**
 * Two configurations over the same jobs and runners: `saturated` (limits and quotas well below demand,
 * so quota turns and fair sharing do real work) and `unconstrained` (no quota either: every waiting job
 * gets a runner, so naming dominates).
 */
function buildClasses(maxRunners: number, maxCreatePerSecond: number): RunnerClasses {
  return classesSchema.parse(
    Object.fromEntries(
      classNames.map((name, i) => [
        name,
        {
          namespace: `runners-${i % 4}`,
          match: {
            github: { labels: ['self-hosted', 'linux', name] },
            ...(i % 5 === 0 ? { tekton: { matchLabels: { 'gantry.dev/class': name } } } : {}),
          },
          scope: i % 2 === 0 ? 'repo' : 'org',
          minIdle: i % 2 === 0 ? 0 : 5,
          maxRunners,
          maxCreatePerSecond,
          resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } },
          fairness: { enabled: i % 3 !== 0, maxShare: i % 4 === 0 ? 0.25 : 1 },
        },
      ]),
    ),
  );
}

const STATES: RunnerState[] = ['starting', 'idle', 'busy', 'busy', 'busy', 'terminating', 'failed', 'stuck'];

/** The same snapshot for a size on every run: the generator starts from the same seed. */
function buildSnapshot(jobs: number): LedgerSnapshot {
  random = seededRandom(20260115);
  const classes: Record<string, ClassSnapshot> = {};
  for (const [index, name] of classNames.entries()) {
    const tekton = index % 5 === 0;
    const queued: QueuedJob[] = Array.from({ length: Math.floor(jobs / CLASS_COUNT) }, (_, k) => {
      const source = tekton && k % 4 === 0 ? 'tekton' : 'github';
      return {
        key: `${source}:${name}-${k}`,
        source,
        repo: pick(repos),
        queuedAt: NOW - Math.floor(random() * 3_600_000),
      };
    });
    const runners: RunnerView[] = Array.from({ length: RUNNERS_PER_CLASS }, (_, k) => ({
      name: `${name}-runner-${k}`,
      namespace: `runners-${index % 4}`,
      state: pick(STATES),
      createdAt: NOW - Math.floor(random() * 3_600_000),
      idleSince: NOW - Math.floor(random() * 900_000),
      repo: pick(repos),
    }));
    classes[name] = { queued, runners, admittedRuns: [] };
  }
  const quotas = Object.fromEntries(
    [0, 1, 2, 3].map((i) => [`runners-${i}`, { remaining: { pods: 400, 'requests.cpu': 300_000 } }]),
  );
  return { classes, quotas };
}

/** The baseline: one pass that touches every job and runner once, as any planner must. */
function countingPass(snapshot: LedgerSnapshot): number {
  let total = 0;
  for (const classSnapshot of Object.values(snapshot.classes)) {
    const perRepo = new Map<string, number>();
    for (const job of classSnapshot.queued) perRepo.set(job.repo, (perRepo.get(job.repo) ?? 0) + 1);
    let spare = 0;
    for (const runner of classSnapshot.runners)
      if (runner.state === 'idle' || runner.state === 'starting') spare++;
    total += perRepo.size + spare;
  }
  return total;
}

interface Row {
  jobs: number;
  iterations: number;
  case: string;
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  ratioToBaseline: number;
  output: number;
}

function measure(
  run: () => number,
  { iterations, warmup }: { iterations: number; warmup: number },
): { samples: number[]; output: number } {
  let output = 0;
  for (let i = 0; i < warmup; i++) output = run();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    output = run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { samples, output };
}

function summarise(
  jobs: number,
  name: string,
  samples: number[],
  output: number,
  baselineMedian: number,
): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const median = at(0.5);
  return {
    jobs,
    iterations: samples.length,
    case: name,
    medianMs: round(median),
    p95Ms: round(at(0.95)),
    meanMs: round(samples.reduce((a, b) => a + b, 0) / samples.length),
    ratioToBaseline: round(median / baselineMedian, 1),
    output,
  };
}

const saturated = buildClasses(200, 20);
const unconstrained = buildClasses(10_000, 10_000);
const classify = buildClassifier(saturated);

/**
 * A ledger holding the snapshot's jobs (all as GitHub jobs) and runners, as the reconciler plans from
 * it: quotas on the namespaces runners-1 to runners-3, none on runners-0.
 */
function buildLedger(snapshot: LedgerSnapshot): Ledger {
  const ledger = new Ledger({
    classify,
    health: runnerHealthRules({
      startTimeoutMs: 600_000,
      capacityTimeoutMs: 1_800_000,
      deadlineGraceMs: 60_000,
    }),
  });
  let busyJobs = 0;
  for (const [className, classSnapshot] of Object.entries(snapshot.classes)) {
    const identity = (key: string, repo: string) => ({
      source: 'github' as const,
      key,
      repo,
      labels: ['self-hosted', 'linux', className],
      runId: '1',
      runAttempt: 1,
      untrusted: false,
      name: key,
    });
    for (const job of classSnapshot.queued) {
      ledger.applyJobEvent({
        kind: 'queued',
        job: identity(`github:${job.key}`, job.repo),
        via: 'webhook',
        createdAt: job.queuedAt,
      });
    }
    for (const runner of classSnapshot.runners) {
      const running = runner.state !== 'starting' && runner.state !== 'stuck';
      ledger.observeRunner({
        name: runner.name,
        namespace: runner.namespace,
        className,
        ...(runner.repo !== undefined ? { repo: runner.repo } : {}),
        phase: runner.state === 'failed' ? 'Failed' : running ? 'Running' : 'Pending',
        createdAt: runner.state === 'stuck' ? NOW - 3_600_000 : runner.createdAt,
        ...(running ? { runningSince: runner.createdAt } : {}),
        deleting: runner.state === 'terminating',
      });
      if (runner.state === 'busy') {
        const key = `github:busy-${busyJobs++}`;
        ledger.applyJobEvent({
          kind: 'started',
          job: identity(key, runner.repo ?? 'org-0/repo-0'),
          via: 'webhook',
          createdAt: runner.createdAt,
          startedAt: runner.createdAt + 1_000,
          runnerName: runner.name,
        });
      }
    }
  }
  for (const namespace of ['runners-1', 'runners-2', 'runners-3']) {
    ledger.setQuotaLimits(namespace, {
      pods: { hard: 2_000, used: 600 },
      'requests.cpu': { hard: 1_500_000, used: 600_000 },
    });
  }
  return ledger;
}

/** The classes a pass after one event plans: the event's class, with those sharing its namespace quota. */
const namespaceClasses = (index: number) => new Set(classNames.filter((_, i) => i % 4 === index % 4));
const someOf = (classes: RunnerClasses, names: ReadonlySet<string>): RunnerClasses =>
  Object.fromEntries(Object.entries(classes).filter(([name]) => names.has(name))) as RunnerClasses;

/** Every case at one size, on a snapshot of that many queued jobs (and the same runners). */
function runSize(jobs: number): Row[] {
  const snapshot = buildSnapshot(jobs);
  const withoutQuotas: LedgerSnapshot = { ...snapshot, quotas: {} };
  const jobsToClassify: ClassifiableJob[] = Object.values(snapshot.classes).flatMap((c, i) =>
    c.queued.map((job) => ({
      source: job.source,
      labels: ['self-hosted', 'linux', classNames[i] ?? ''],
      untrusted: false,
      tektonLabels: { 'gantry.dev/class': classNames[i] ?? '' },
    })),
  );
  const counts = { iterations: scaled(ITERATIONS, jobs, 20), warmup: scaled(WARMUP, jobs, 5) };
  const ledger = buildLedger(snapshot);
  const quotaNamespace = namespaceClasses(1);
  const oneClass = new Set([classNames[0] as string]);
  const pass = (only?: ReadonlySet<string>) =>
    plan(ledger.snapshot(saturated, NOW, only), only ? someOf(saturated, only) : saturated, NOW).length;
  const baseline = measure(() => countingPass(snapshot), counts);
  const baselineMedian =
    summarise(jobs, 'baseline', baseline.samples, baseline.output, 1).medianMs || Number.EPSILON;
  return [
    summarise(jobs, 'baseline: counting pass', baseline.samples, baseline.output, baselineMedian),
    ...(
      [
        ['plan, saturated (actions)', () => plan(snapshot, saturated, NOW).length],
        ['plan, unconstrained (actions)', () => plan(withoutQuotas, unconstrained, NOW).length],
        [
          `classify ${jobs.toLocaleString('en')} jobs (matched)`,
          () => jobsToClassify.filter((job) => classify(job).matched).length,
        ],
        ['pass from the ledger, every class (actions)', () => pass()],
        [
          `pass from the ledger, the ${quotaNamespace.size} classes sharing one namespace quota (actions)`,
          () => pass(quotaNamespace),
        ],
        ['pass from the ledger, one class of a namespace without a quota (actions)', () => pass(oneClass)],
      ] as const
    ).map(([name, run]) => {
      const { samples, output } = measure(run, counts);
      return summarise(jobs, name, samples, output, baselineMedian);
    }),
  ];
}

const rows: Row[] = SIZES.flatMap(runSize);

const header = ['jobs', 'case', 'iterations', 'median ms', 'p95 ms', 'mean ms', '× baseline', 'output'];
const lines = rows.map((row) => [
  row.jobs.toLocaleString('en'),
  row.case,
  String(row.iterations),
  row.medianMs.toFixed(3),
  row.p95Ms.toFixed(3),
  row.meanMs.toFixed(3),
  row.ratioToBaseline.toFixed(1),
  String(row.output),
]);
const widths = header.map((title, i) =>
  Math.max(title.length, ...lines.map((line) => (line[i] ?? '').length)),
);
const format = (cells: string[]) =>
  cells.map((cell, i) => (i === 1 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');

console.log(
  `planner benchmark: ${SIZES.map((size) => size.toLocaleString('en')).join(', ')} queued jobs, ${CLASS_COUNT} classes, ` +
    `${CLASS_COUNT * RUNNERS_PER_CLASS} runners; ${ITERATIONS} iterations after ${WARMUP} warm-up at ` +
    `${REFERENCE_JOBS.toLocaleString('en')} jobs, scaled inversely (within 2x) for the other sizes; node ${process.version}`,
);
console.log(format(header));
console.log(widths.map((width) => '-'.repeat(width)).join('  '));
for (const line of lines) console.log(format(line));

const median = (jobs: number, prefix: string) =>
  rows.find((row) => row.jobs === jobs && row.case.startsWith(prefix))?.medianMs ?? Number.NaN;
const headline: Headline[] = [
  {
    what: `reconcile pass from the ledger after one event, ${SIZES.map((size) => size.toLocaleString('en')).join(' / ')} queued jobs (\`planner\`)`,
    figure:
      `the event's classes only: one class ${SIZES.map((size) => median(size, 'pass from the ledger, one class').toFixed(2)).join(' / ')} ms, ` +
      `a namespace's ${namespaceClasses(1).size} classes ${SIZES.map((size) => median(size, 'pass from the ledger, the').toFixed(2)).join(' / ')} ms`,
    baseline: `every class (a pass per event before): ${SIZES.map((size) => median(size, 'pass from the ledger, every').toFixed(1)).join(' / ')} ms`,
  },
  {
    what: `planner pass, ${SIZES.map((size) => size.toLocaleString('en')).join(' / ')} queued jobs, ${CLASS_COUNT} classes, ${(CLASS_COUNT * RUNNERS_PER_CLASS).toLocaleString('en')} runners (\`planner\`)`,
    figure:
      `median saturated ${SIZES.map((size) => median(size, 'plan, saturated').toFixed(1)).join(' / ')} ms, ` +
      `unconstrained ${SIZES.map((size) => median(size, 'plan, unconstrained').toFixed(1)).join(' / ')} ms`,
    baseline: `counting pass: ${SIZES.map((size) => median(size, 'baseline').toFixed(2)).join(' / ')} ms`,
  },
];
console.log(
  JSON.stringify({
    benchmark: 'planner',
    jobs: SIZES,
    classes: CLASS_COUNT,
    runners: CLASS_COUNT * RUNNERS_PER_CLASS,
    iterationsAt10k: ITERATIONS,
    node: process.version,
    rows,
    headline,
  }),
);
