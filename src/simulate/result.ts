import type { EpochMillis } from '../model/job.ts';

/** What a simulation found: per class, and over time. Plain data, written as the JSON report. */

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ClassResult {
  name: string;
  /** Jobs of the trace Gantry sorted into this class. */
  jobs: number;
  /** Of those, the ones that started before the replay ended. */
  started: number;
  /** Queue time (created → started, as GitHub reports them), in seconds; null without a started job. */
  queueSeconds: Percentiles | null;
  /** The queue times the trace recorded (what really happened), in seconds, when it has them. */
  recordedQueueSeconds: Percentiles | null;
  peakRunners: number;
  maxRunners: number;
  runnersCreated: number;
  /** Dollars, by Gantry's cost model: busy while a runner runs its job, idle the rest of its life. */
  cost: { busy: number; idle: number; total: number };
  /** Jobs that waited while the class was at maxRunners. */
  waitedOnMaxRunners: number;
  /** Jobs that waited while the namespace's quota had no room for another runner. */
  waitedOnQuota: number;
  /** Jobs of this class GitHub gave to another class's runner (its labels and group fit too). */
  servedByOtherClass: number;
  /** Jobs of other classes this class's runners took. */
  tookOtherClassJobs: number;
  trustViolations: number;
  minIdle?: number;
  warmPool?: {
    objective: { percentile: string; quantile: number; seconds: number };
    /** Warm runners by hour of week (UTC, Monday 00:00 is hour 0). */
    targets: number[];
  };
}

export interface ClassSeries {
  /** Most runner pods alive in each bucket. */
  live: number[];
  /** Most runners at work (handed a job or running it). */
  busy: number[];
  /** Most runners online and idle. */
  idle: number[];
  /** Most jobs of the class queued on GitHub. */
  queued: number[];
  /** 95th percentile of the queue time of jobs started in the bucket, seconds; null without any. */
  queueP95: (number | null)[];
  /** The warm-pool target at the bucket's start (classes with a warm-pool objective). */
  warmTarget?: number[];
}

export interface SimulationResult {
  from: EpochMillis;
  to: EpochMillis;
  /** Jobs in the trace. */
  jobs: number;
  /** Jobs no class could take (their labels): left to other runners, as Gantry leaves them. */
  notForGantry: number;
  /** Jobs a class could take by their labels but not by trust, by reason. */
  unclassified: Record<string, number>;
  classes: ClassResult[];
  series: { start: EpochMillis; bucketMs: number; classes: Record<string, ClassSeries> };
  events: number;
  passes: number;
  /** Real time the replay took. */
  wallMs: number;
}

/** Nearest-rank percentiles of milliseconds, in seconds; null when empty. */
export function percentiles(valuesMs: readonly number[]): Percentiles | null {
  if (valuesMs.length === 0) return null;
  const sorted = Float64Array.from(valuesMs).sort();
  const at = (q: number) => (sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number) / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: (sorted[sorted.length - 1] as number) / 1000,
    mean: sum / sorted.length / 1000,
  };
}

export interface Counters {
  live: number;
  busy: number;
  idle: number;
  queued: number;
}

export interface SeriesRecorder {
  /** Changes a counter of the class at `at`; the bucket keeps the most it reached. */
  add(className: string, counter: keyof Counters, delta: number, at: EpochMillis): void;
  queueTime(className: string, startedAt: EpochMillis, queuedMs: number): void;
  result(
    warmTargetAt?: (className: string, at: EpochMillis) => number | undefined,
  ): SimulationResult['series'];
}

export function seriesRecorder(
  start: EpochMillis,
  bucketMs: number,
  classNames: readonly string[],
): SeriesRecorder {
  const state = new Map(
    classNames.map((name) => [
      name,
      {
        now: { live: 0, busy: 0, idle: 0, queued: 0 } as Counters,
        max: { live: [] as number[], busy: [] as number[], idle: [] as number[], queued: [] as number[] },
        queue: [] as number[][],
      },
    ]),
  );
  let lastBucket = 0;
  const bucketOf = (at: EpochMillis) => Math.max(0, Math.floor((at - start) / bucketMs));
  return {
    add(className, counter, delta, at) {
      const entry = state.get(className);
      if (!entry) return;
      const bucket = bucketOf(at);
      lastBucket = Math.max(lastBucket, bucket);
      const series = entry.max[counter];
      // A bucket the counter did not change in holds the value it had.
      for (let b = series.length; b < bucket; b++) series[b] = Math.max(series[b] ?? 0, entry.now[counter]);
      entry.now[counter] += delta;
      series[bucket] = Math.max(series[bucket] ?? entry.now[counter] - delta, entry.now[counter]);
    },
    queueTime(className, startedAt, queuedMs) {
      const entry = state.get(className);
      if (!entry) return;
      const bucket = bucketOf(startedAt);
      lastBucket = Math.max(lastBucket, bucket);
      const samples = entry.queue[bucket];
      if (samples) samples.push(queuedMs);
      else entry.queue[bucket] = [queuedMs];
    },
    result(warmTargetAt) {
      const buckets = lastBucket + 1;
      const classes: Record<string, ClassSeries> = {};
      for (const [name, entry] of state) {
        // Buckets after the last change hold the value the counter ended with.
        const fill = (counter: keyof Counters) =>
          Array.from({ length: buckets }, (_, b) => entry.max[counter][b] ?? entry.now[counter]);
        const queueP95 = Array.from({ length: buckets }, (_, b) => {
          const samples = entry.queue[b];
          return samples ? (percentiles(samples)?.p95 ?? null) : null;
        });
        const warm = warmTargetAt?.(name, start);
        classes[name] = {
          live: fill('live'),
          busy: fill('busy'),
          idle: fill('idle'),
          queued: fill('queued'),
          queueP95,
          ...(warm !== undefined
            ? {
                warmTarget: Array.from(
                  { length: buckets },
                  (_, b) => warmTargetAt?.(name, start + b * bucketMs) ?? 0,
                ),
              }
            : {}),
        };
      }
      return { start, bucketMs, classes };
    },
  };
}
