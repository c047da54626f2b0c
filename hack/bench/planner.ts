/**
 * Planner benchmark: time per planning pass with 10,000 queued jobs across 20 classes, against a
 * baseline measured in the same run (one trivial pass over the same snapshot that only counts jobs
 * and runners). Prints a table, then the same numbers as JSON on the last line.
 *
 *   npx node hack/bench/planner.ts [--iterations 200] [--warmup 30]
 */
import { parseArgs } from 'node:util';
import { classesSchema, type RunnerClasses } from '../../src/config/classes.ts';
import type {
  ClassifiableJob,
  ClassSnapshot,
  LedgerSnapshot,
  QueuedJob,
  RunnerState,
  RunnerView,
} from '../../src/model/ledger-snapshot.ts';
import { buildClassifier } from '../../src/planner/classify.ts';
import { plan } from '../../src/planner/plan.ts';

const { values: options } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '30' },
  },
});
const ITERATIONS = Number(options.iterations);
const WARMUP = Number(options.warmup);
if (!Number.isInteger(ITERATIONS) || ITERATIONS < 1 || !Number.isInteger(WARMUP) || WARMUP < 0) {
  throw new Error('--iterations: expected a whole number >= 1; --warmup: expected a whole number >= 0');
}

const CLASS_COUNT = 20;
const JOBS = 10_000;
const REPOS = 200;
const RUNNERS_PER_CLASS = 150;
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

/** A small seeded generator, so every run plans the same snapshot. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seededRandom(20260115);
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

function buildSnapshot(): LedgerSnapshot {
  const classes: Record<string, ClassSnapshot> = {};
  for (const [index, name] of classNames.entries()) {
    const tekton = index % 5 === 0;
    const queued: QueuedJob[] = Array.from({ length: JOBS / CLASS_COUNT }, (_, k) => {
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
  case: string;
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  ratioToBaseline: number;
  output: number;
}

function measure(run: () => number): { samples: number[]; output: number } {
  let output = 0;
  for (let i = 0; i < WARMUP; i++) output = run();
  const samples: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const start = process.hrtime.bigint();
    output = run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { samples, output };
}

function summarise(name: string, samples: number[], output: number, baselineMedian: number): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const median = at(0.5);
  return {
    case: name,
    medianMs: round(median),
    p95Ms: round(at(0.95)),
    meanMs: round(samples.reduce((a, b) => a + b, 0) / samples.length),
    ratioToBaseline: round(median / baselineMedian, 1),
    output,
  };
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

const snapshot = buildSnapshot();
const saturated = buildClasses(200, 20);
const unconstrained = buildClasses(10_000, 10_000);
const withoutQuotas: LedgerSnapshot = { ...snapshot, quotas: {} };
const classify = buildClassifier(saturated);
const jobsToClassify: ClassifiableJob[] = Object.values(snapshot.classes).flatMap((c, i) =>
  c.queued.map((job) => ({
    source: job.source,
    labels: ['self-hosted', 'linux', classNames[i] ?? ''],
    untrusted: false,
    tektonLabels: { 'gantry.dev/class': classNames[i] ?? '' },
  })),
);

const baseline = measure(() => countingPass(snapshot));
const baselineMedian = summarise('baseline', baseline.samples, baseline.output, 1).medianMs || Number.EPSILON;
const rows: Row[] = [
  summarise('baseline: counting pass', baseline.samples, baseline.output, baselineMedian),
  ...(
    [
      ['plan, saturated (actions)', () => plan(snapshot, saturated, NOW).length],
      ['plan, unconstrained (actions)', () => plan(withoutQuotas, unconstrained, NOW).length],
      ['classify 10,000 jobs (matched)', () => jobsToClassify.filter((job) => classify(job).matched).length],
    ] as const
  ).map(([name, run]) => {
    const { samples, output } = measure(run);
    return summarise(name, samples, output, baselineMedian);
  }),
];

const header = ['case', 'median ms', 'p95 ms', 'mean ms', '× baseline', 'output'];
const lines = rows.map((row) => [
  row.case,
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
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');

console.log(
  `planner benchmark: ${JOBS} queued jobs, ${CLASS_COUNT} classes, ${CLASS_COUNT * RUNNERS_PER_CLASS} runners, ` +
    `${ITERATIONS} iterations after ${WARMUP} warm-up, node ${process.version}`,
);
console.log(format(header));
console.log(widths.map((width) => '-'.repeat(width)).join('  '));
for (const line of lines) console.log(format(line));
console.log(
  JSON.stringify({
    benchmark: 'planner',
    jobs: JOBS,
    classes: CLASS_COUNT,
    runners: CLASS_COUNT * RUNNERS_PER_CLASS,
    iterations: ITERATIONS,
    node: process.version,
    rows,
  }),
);
