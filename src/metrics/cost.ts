import { podResourceTotals } from '../classes/runner-resources.ts';
import type { RunnerClass } from '../classes/schema.ts';
import type { EpochMillis } from '../model/job.ts';

/**
 * The cost model, pure arithmetic: a runner costs its class's hourly rate (its requested vCPUs and
 * GiB of memory times the class's rates, plus the per-runner rate) for every hour it lives; the part
 * of its life that overlaps its job is `busy`, the rest `idle`.
 */

const HOUR_MS = 3_600_000;
const GIB = 2 ** 30;

export type CostUse = 'busy' | 'idle';

/** Dollars per hour one runner of the class costs, from what its pod requests. */
export function runnerHourlyRate(
  runnerClass: Pick<RunnerClass, 'resources' | 'workspace' | 'sidecars' | 'initContainers' | 'cost'>,
): number {
  // What the scheduler reserves: the pod's requests (a missing one taken from the limit), sidecars too.
  const { requests } = podResourceTotals(runnerClass);
  const vcpus = requests.cpu ?? 0;
  const gib = (requests.memory ?? 0) / GIB;
  const { perVcpuHour, perGibHour, perRunnerHour } = runnerClass.cost;
  return vcpus * perVcpuHour + gib * perGibHour + perRunnerHour;
}

export interface Interval {
  from: EpochMillis;
  to: EpochMillis;
}

/** Milliseconds `a` and `b` have in common. */
export function overlapMs(a: Interval, b: Interval): number {
  return Math.max(0, Math.min(a.to, b.to) - Math.max(a.from, b.from));
}

/**
 * Splits a stretch of a runner's life into busy and idle milliseconds. `job` is the runner's job
 * window as far as it is known (an open end is `Infinity`); absent when it has taken no job.
 */
export function splitBusyIdle(span: Interval, job: Interval | undefined): Record<CostUse, number> {
  const total = Math.max(0, span.to - span.from);
  const busy = job ? overlapMs(span, job) : 0;
  return { busy, idle: total - busy };
}

/** Dollars for `ms` milliseconds at `hourlyRate`. */
export function dollarsFor(ms: number, hourlyRate: number): number {
  return (ms / HOUR_MS) * hourlyRate;
}

/** The start of the UTC day `at` falls in. */
export function utcDayStart(at: EpochMillis): EpochMillis {
  const d = new Date(at);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}
