/**
 * GitHub's rate limits as pure state transitions: what the last responses said about the quota, and
 * whether (and how long) Gantry must stay quiet. No I/O here; the client feeds it headers.
 */

export type BlockReason = 'primary' | 'secondary';

export interface RateLimitState {
  /** From x-ratelimit-limit / -remaining / -reset (reset converted to epoch ms); null until seen. */
  limit: number | null;
  remaining: number | null;
  resetAtMs: number | null;
  /** While set and in the future, nothing may be sent. */
  blockedUntilMs: number | null;
  blockedReason: BlockReason | null;
}

export const initialRateLimitState: RateLimitState = {
  limit: null,
  remaining: null,
  resetAtMs: null,
  blockedUntilMs: null,
  blockedReason: null,
};

export type Headers = Record<string, string | number | undefined>;

/** When GitHub sends no Retry-After on a secondary limit, its docs say to wait at least a minute. */
export const SECONDARY_DEFAULT_WAIT_MS = 60_000;
/** A second of slack past x-ratelimit-reset, so the first request after it lands in the new window. */
const RESET_SLACK_MS = 1_000;

function headerNumber(headers: Headers, name: string): number | null {
  const raw = headers[name];
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

/** Folds the x-ratelimit-* headers of any response (200, 304, 4xx) into the state. */
export function observeHeaders(state: RateLimitState, headers: Headers, nowMs: number): RateLimitState {
  const limit = headerNumber(headers, 'x-ratelimit-limit');
  const remaining = headerNumber(headers, 'x-ratelimit-remaining');
  const reset = headerNumber(headers, 'x-ratelimit-reset');
  if (limit === null && remaining === null && reset === null) return state;
  const next: RateLimitState = {
    ...state,
    limit: limit ?? state.limit,
    remaining: remaining ?? state.remaining,
    resetAtMs: reset === null ? state.resetAtMs : reset * 1000,
  };
  // The quota is spent: any further request would be refused, so stop before sending it.
  if (next.remaining === 0 && next.resetAtMs !== null && next.resetAtMs > nowMs) {
    return block(next, next.resetAtMs + RESET_SLACK_MS, 'primary');
  }
  return next;
}

export type RateLimitVerdict = { kind: 'none' } | { kind: BlockReason; untilMs: number };

/**
 * Decides whether an error response is a rate limit, following GitHub's docs: 403/429 with a
 * "secondary rate limit" message or a Retry-After is secondary; 403/429 with remaining 0 is primary.
 * Any other 403 (a missing permission) is not a rate limit.
 */
export function classifyRateLimitError(
  status: number,
  headers: Headers,
  message: string,
  nowMs: number,
): RateLimitVerdict {
  if (status !== 403 && status !== 429) return { kind: 'none' };
  const retryAfter = headerNumber(headers, 'retry-after');
  if (/secondary rate limit/i.test(message) || retryAfter !== null) {
    const waitMs = retryAfter !== null ? retryAfter * 1000 : SECONDARY_DEFAULT_WAIT_MS;
    return { kind: 'secondary', untilMs: nowMs + waitMs };
  }
  if (headerNumber(headers, 'x-ratelimit-remaining') === 0) {
    const reset = headerNumber(headers, 'x-ratelimit-reset');
    const untilMs = reset !== null ? reset * 1000 + RESET_SLACK_MS : nowMs + SECONDARY_DEFAULT_WAIT_MS;
    return { kind: 'primary', untilMs };
  }
  if (status === 429) return { kind: 'secondary', untilMs: nowMs + SECONDARY_DEFAULT_WAIT_MS };
  return { kind: 'none' };
}

/** Extends (never shortens) the quiet period. */
export function block(state: RateLimitState, untilMs: number, reason: BlockReason): RateLimitState {
  if (state.blockedUntilMs !== null && state.blockedUntilMs >= untilMs) return state;
  return { ...state, blockedUntilMs: untilMs, blockedReason: reason };
}

/** Milliseconds to stay quiet, 0 when requests may be sent. */
export function blockedForMs(state: RateLimitState, nowMs: number): number {
  return state.blockedUntilMs === null ? 0 : Math.max(0, state.blockedUntilMs - nowMs);
}

/** Drops a quiet period that has passed, so the state (and the metrics built on it) read "not blocked". */
export function expireBlock(state: RateLimitState, nowMs: number): RateLimitState {
  if (state.blockedUntilMs === null || state.blockedUntilMs > nowMs) return state;
  const resetPassed = state.resetAtMs !== null && state.resetAtMs <= nowMs;
  return {
    ...state,
    blockedUntilMs: null,
    blockedReason: null,
    // Past the reset the old remaining count says nothing; the next response brings the new one.
    remaining: resetPassed ? null : state.remaining,
  };
}

export interface PollPacing {
  /** The poller's normal interval for the current mode. */
  baseIntervalMs: number;
  /** Below this fraction of the quota the poller slows down. */
  slowBelow: number;
  /** How much slower. */
  slowFactor: number;
  /** Below this fraction the poller stops until the reset. */
  stopBelow: number;
}

export const defaultPollPacing: Omit<PollPacing, 'baseIntervalMs'> = {
  slowBelow: 0.5,
  slowFactor: 4,
  stopBelow: 0.1,
};

export type PollDelayReason = 'normal' | 'slow' | 'reserve' | 'blocked';

/**
 * The poller's wait before its next sweep. The poller is the backstop, so it gives way first: slower
 * under half the quota, silent under a tenth until the reset (the rest is kept for JIT runners),
 * silent while blocked.
 */
export function pollDelay(
  state: RateLimitState,
  nowMs: number,
  pacing: PollPacing,
): { ms: number; reason: PollDelayReason } {
  const blocked = blockedForMs(state, nowMs);
  if (blocked > 0) return { ms: Math.max(blocked, pacing.baseIntervalMs), reason: 'blocked' };
  if (state.limit && state.remaining !== null && state.resetAtMs !== null && state.resetAtMs > nowMs) {
    const fraction = state.remaining / state.limit;
    if (fraction < pacing.stopBelow) {
      return {
        ms: Math.max(state.resetAtMs + RESET_SLACK_MS - nowMs, pacing.baseIntervalMs),
        reason: 'reserve',
      };
    }
    if (fraction < pacing.slowBelow) {
      return { ms: pacing.baseIntervalMs * pacing.slowFactor, reason: 'slow' };
    }
  }
  return { ms: pacing.baseIntervalMs, reason: 'normal' };
}
