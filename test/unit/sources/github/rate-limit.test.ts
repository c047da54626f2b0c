import { describe, expect, it } from 'vitest';
import {
  blockedForMs,
  classifyRateLimitError,
  defaultPollPacing,
  expireBlock,
  initialRateLimitState,
  observeHeaders,
  pollDelay,
} from '../../../../src/sources/github/rate-limit.ts';
import { backoffDelayMs } from '../../../../src/util/retry.ts';

const NOW = 1_767_600_000_000;
const RESET_S = NOW / 1000 + 1_800;
const headers = (remaining: number, limit = 5_000) => ({
  'x-ratelimit-limit': String(limit),
  'x-ratelimit-remaining': String(remaining),
  'x-ratelimit-reset': String(RESET_S),
});
const pacing = { baseIntervalMs: 30_000, ...defaultPollPacing };

describe('rate limit state', () => {
  it('reads the quota from response headers and ignores responses without them', () => {
    const state = observeHeaders(initialRateLimitState, headers(4_000), NOW);
    expect(state).toMatchObject({
      limit: 5_000,
      remaining: 4_000,
      resetAtMs: RESET_S * 1000,
      blockedUntilMs: null,
    });
    expect(observeHeaders(state, {}, NOW)).toBe(state);
  });

  it('blocks as soon as a response says the quota is spent, until just past the reset', () => {
    const state = observeHeaders(initialRateLimitState, headers(0), NOW);
    expect(state.blockedReason).toBe('primary');
    expect(blockedForMs(state, NOW)).toBe(RESET_S * 1000 + 1_000 - NOW);
    expect(expireBlock(state, RESET_S * 1000 + 1_000)).toMatchObject({
      blockedUntilMs: null,
      remaining: null,
    });
  });

  it('classifies 403/429 answers as GitHub documents them', () => {
    const secondary =
      'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';
    expect(classifyRateLimitError(403, { 'retry-after': '30' }, secondary, NOW)).toEqual({
      kind: 'secondary',
      untilMs: NOW + 30_000,
    });
    expect(classifyRateLimitError(403, {}, secondary, NOW)).toEqual({
      kind: 'secondary',
      untilMs: NOW + 60_000,
    });
    expect(classifyRateLimitError(429, { 'retry-after': '5' }, 'slow down', NOW)).toEqual({
      kind: 'secondary',
      untilMs: NOW + 5_000,
    });
    expect(classifyRateLimitError(403, headers(0), 'API rate limit exceeded', NOW)).toEqual({
      kind: 'primary',
      untilMs: RESET_S * 1000 + 1_000,
    });
    expect(classifyRateLimitError(403, headers(10), 'Resource not accessible by integration', NOW)).toEqual({
      kind: 'none',
    });
    expect(classifyRateLimitError(404, headers(0), 'Not Found', NOW)).toEqual({ kind: 'none' });
  });
});

describe('poll pacing', () => {
  it('keeps the base interval above half the quota', () => {
    expect(pollDelay(observeHeaders(initialRateLimitState, headers(2_600), NOW), NOW, pacing)).toEqual({
      ms: 30_000,
      reason: 'normal',
    });
    expect(pollDelay(initialRateLimitState, NOW, pacing)).toEqual({ ms: 30_000, reason: 'normal' });
  });

  it('slows down under half the quota', () => {
    expect(pollDelay(observeHeaders(initialRateLimitState, headers(2_400), NOW), NOW, pacing)).toEqual({
      ms: 120_000,
      reason: 'slow',
    });
  });

  it('stops under a tenth until the reset', () => {
    expect(pollDelay(observeHeaders(initialRateLimitState, headers(400), NOW), NOW, pacing)).toEqual({
      ms: RESET_S * 1000 + 1_000 - NOW,
      reason: 'reserve',
    });
  });

  it('waits out a block, and never less than the base interval', () => {
    const blocked = {
      ...initialRateLimitState,
      blockedUntilMs: NOW + 5_000,
      blockedReason: 'secondary' as const,
    };
    expect(pollDelay(blocked, NOW, pacing)).toEqual({ ms: 30_000, reason: 'blocked' });
    expect(pollDelay({ ...blocked, blockedUntilMs: NOW + 90_000 }, NOW, pacing)).toEqual({
      ms: 90_000,
      reason: 'blocked',
    });
  });
});

describe('backoff', () => {
  it('grows exponentially under a cap, with full jitter', () => {
    expect(backoffDelayMs(0, { baseDelayMs: 500, maxDelayMs: 10_000 }, () => 0.999)).toBe(499);
    expect(backoffDelayMs(3, { baseDelayMs: 500, maxDelayMs: 10_000 }, () => 0.5)).toBe(2_000);
    expect(backoffDelayMs(10, { baseDelayMs: 500, maxDelayMs: 10_000 }, () => 0.999)).toBe(9_990);
    expect(backoffDelayMs(2, { baseDelayMs: 500, maxDelayMs: 10_000 }, () => 0)).toBe(0);
  });
});
