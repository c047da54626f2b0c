import type { EpochMillis } from '../model/job.ts';
import type { CreationBudget } from '../model/ledger-snapshot.ts';

/**
 * A class's creation rate as a token bucket: `ratePerSecond` tokens a second, holding at most one
 * second's worth (and at least one token, so rates below 1/s still create). Creating a runner or
 * admitting a run spends a token. The planner only reads the bucket; the ledger spends it when it
 * records the planner's actions.
 */

export function bucketCapacity(ratePerSecond: number): number {
  return Math.max(1, ratePerSecond);
}

/** Tokens in the bucket at `now`; a missing budget is a full bucket. */
export function tokensAt(
  budget: CreationBudget | undefined,
  ratePerSecond: number,
  now: EpochMillis,
): number {
  const capacity = bucketCapacity(ratePerSecond);
  if (!budget) return capacity;
  // A clock that went backwards refills nothing rather than draining the bucket.
  const elapsedSeconds = Math.max(0, now - budget.at) / 1000;
  return Math.min(capacity, budget.tokens + elapsedSeconds * ratePerSecond);
}

/** Whole creations the bucket allows at `now`. */
export function creationsAllowed(
  budget: CreationBudget | undefined,
  ratePerSecond: number,
  now: EpochMillis,
): number {
  return Math.max(0, Math.floor(tokensAt(budget, ratePerSecond, now) + 1e-9));
}

/** The bucket after `count` creations at `now`. */
export function spendCreationBudget(
  budget: CreationBudget | undefined,
  ratePerSecond: number,
  now: EpochMillis,
  count: number,
): CreationBudget {
  return { tokens: tokensAt(budget, ratePerSecond, now) - count, at: Math.max(now, budget?.at ?? now) };
}
