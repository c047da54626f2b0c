import { setTimeout as sleep } from 'node:timers/promises';
import type { Backoff } from './schedules.ts';

export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  /** Backoff before the second try; it doubles for each later one, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Whether an error is worth another try (timeouts, 429, 5xx); others fail at once. */
  isRetryable: (err: unknown) => boolean;
  /** A delay the server asked for (Retry-After), in ms, which wins over the computed backoff. */
  requestedDelayMs?: (err: unknown) => number | undefined;
  random?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

/**
 * Runs `fn` until it succeeds, fails with an error not worth retrying, or runs out of attempts.
 * Backoff is "full jitter" (a random delay up to the exponential bound), so many callers that
 * failed together do not retry together.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const random = policy.random ?? Math.random;
  const wait = policy.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !policy.isRetryable(err)) throw err;
      const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const requested = policy.requestedDelayMs?.(err);
      await wait(
        requested !== undefined ? Math.min(requested, policy.maxDelayMs) : Math.round(random() * bound),
      );
    }
  }
}

/** Full-jitter exponential backoff: a random wait in [0, min(max, base * 2^attempt)]. */
export function backoffDelayMs(
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** attempt));
}
