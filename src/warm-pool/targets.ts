import type { RunnerClass } from '../classes/schema.ts';
import { type Random, seededRandom } from '../util/distribution.ts';
import { leastWarmPool, type WarmPoolEstimate, type WarmPoolSupply } from './estimate.ts';
import type { ArrivalHistory } from './history.ts';
import { HOURS_PER_WEEK } from './schedule.ts';

/**
 * Warm-pool targets from what was learned: per hour of the week, the least pool that meets the
 * class's objective for that hour's arrivals, bounded by warmPool.min and warmPool.max (maxRunners).
 */

/** Waits a class needs before its targets mean anything. */
const MIN_COLD_SAMPLES = 10;
const MIN_STARTUP_SAMPLES = 5;
const MIN_WARM_SAMPLES = 5;
/**
 * Until warm hand-offs were seen (the pool was empty so far): GitHub's hand-off of a queued job to an
 * idle runner, and a runner's time from a running container to online, as commonly measured.
 */
const ASSUMED_HANDOFF_SECONDS = 2;
const ASSUMED_REGISTRATION_SECONDS = 3;

export interface TargetEstimate extends WarmPoolEstimate {
  /** Why the target is the minimum without an estimate (nothing learned yet). */
  unknown?: 'no-arrivals' | 'no-waits';
}

function resample(samples: readonly number[]): (random: Random) => number {
  return (random) => samples[Math.floor(random() * samples.length)] as number;
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * What a class's jobs wait, from the waits it observed: cold waits as seen; without enough of them,
 * the start-ups seen plus a hand-off and a registration. Undefined when nothing was observed yet.
 */
export function learnedSupply(
  history: ArrivalHistory,
  className: string,
  runnerClass: RunnerClass,
): WarmPoolSupply | undefined {
  const cold = history.latencies(className, 'cold');
  const warm = history.latencies(className, 'warm');
  const startup = history.latencies(className, 'startup');
  const warmSeconds = warm.length >= MIN_WARM_SAMPLES ? resample(warm) : () => ASSUMED_HANDOFF_SECONDS;
  const handoff = warm.length >= MIN_WARM_SAMPLES ? median(warm) : ASSUMED_HANDOFF_SECONDS;
  let coldSeconds: (random: Random) => number;
  if (cold.length >= MIN_COLD_SAMPLES) coldSeconds = resample(cold);
  else if (startup.length >= MIN_STARTUP_SAMPLES) {
    const draw = resample(startup);
    coldSeconds = (random) => draw(random) + ASSUMED_REGISTRATION_SECONDS + handoff;
  } else return undefined;
  return { coldSeconds, warmSeconds, maxCreatePerSecond: runnerClass.maxCreatePerSecond };
}

/** The target for one hour of the week. */
export function targetForHour(
  history: ArrivalHistory,
  className: string,
  runnerClass: RunnerClass,
  supply: WarmPoolSupply | undefined,
  slot: number,
): TargetEstimate {
  const pool = runnerClass.warmPool;
  const min = pool?.min ?? 0;
  const max = pool?.max ?? runnerClass.maxRunners;
  const jobsPerHour = history.jobsPerHour(className, slot);
  if (!pool || !(jobsPerHour > 0))
    return { size: min, predictedSeconds: 0, met: true, unknown: 'no-arrivals' };
  if (!supply) return { size: min, predictedSeconds: 0, met: false, unknown: 'no-waits' };
  return leastWarmPool(
    { jobsPerHour, batchSizes: history.batchSizes(className) },
    supply,
    { quantile: pool.objective.quantile, seconds: pool.objective.seconds },
    // The same draws for every hour of a class, so neighbouring hours compare like with like.
    { min, max, seed: 1 },
  );
}

/** Targets for every hour of the week (what `gantry simulate` recommends). */
export function targetsByHour(
  history: ArrivalHistory,
  className: string,
  runnerClass: RunnerClass,
  supply: WarmPoolSupply | undefined,
): TargetEstimate[] {
  return Array.from({ length: HOURS_PER_WEEK }, (_, slot) =>
    targetForHour(history, className, runnerClass, supply, slot),
  );
}

/**
 * How long before an hour its pool is made ready: the 95th percentile of a cold wait, so runners
 * started then are online when the hour begins.
 */
export function leadTimeMs(supply: WarmPoolSupply | undefined, seed = 1): number {
  if (!supply) return 0;
  const random = seededRandom(seed);
  const draws = Array.from({ length: 400 }, () => supply.coldSeconds(random)).sort((a, b) => a - b);
  return Math.ceil(draws[Math.ceil(0.95 * draws.length) - 1] ?? 0) * 1000;
}
