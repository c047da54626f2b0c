import type { RunnerClass, RunnerClasses } from '../classes/schema.ts';
import type { EpochMillis } from '../model/job.ts';

/**
 * Warm-pool sizes by hour of the week (UTC, Monday 00:00 is hour 0), and the classes as the planner
 * sees them with those sizes: a class with a warm-pool objective plans with `minIdle` set to its
 * current target, and nothing else about it changes.
 */

export const HOURS_PER_WEEK = 168;
const HOUR_MS = 3_600_000;

/** The hour of the week `at` falls in, 0 (Monday 00:00–01:00 UTC) to 167. */
export function hourOfWeek(at: EpochMillis): number {
  // The epoch began on a Thursday, hour 72 of a week that starts on Monday. (Arithmetic rather than a
  // Date: the planner asks for it on every pass.)
  const hours = Math.floor(at / HOUR_MS) + 72;
  return ((hours % HOURS_PER_WEEK) + HOURS_PER_WEEK) % HOURS_PER_WEEK;
}

/** Milliseconds since the epoch at the start of the hour `at` falls in. */
export function hourStart(at: EpochMillis): EpochMillis {
  return Math.floor(at / HOUR_MS) * HOUR_MS;
}

/**
 * The warm pool to keep at `at`: the hour's target, or the next hour's when that is larger and the
 * next hour begins within `leadMs` (runners take that long to start, so the pool is warm on time).
 */
export function targetAt(targets: readonly number[], leadMs: number, at: EpochMillis): number {
  const now = targets[hourOfWeek(at)] ?? 0;
  const ahead = targets[hourOfWeek(at + leadMs)] ?? 0;
  return Math.max(now, ahead);
}

/**
 * The classes with each warm-pool class's `minIdle` read from `targetOf` whenever the planner reads
 * it, so one object serves every pass while the targets change by the hour. Classes without a
 * warm-pool objective are the same objects as in `classes`.
 */
export function withWarmPoolTargets(
  classes: RunnerClasses,
  targetOf: (className: string) => number,
): RunnerClasses {
  const out: Record<string, RunnerClass> = {};
  for (const [name, runnerClass] of Object.entries(classes)) {
    if (!runnerClass.warmPool) {
      out[name] = runnerClass;
      continue;
    }
    const planned = { ...runnerClass };
    Object.defineProperty(planned, 'minIdle', { enumerable: true, get: () => targetOf(name) });
    out[name] = planned;
  }
  return out;
}
