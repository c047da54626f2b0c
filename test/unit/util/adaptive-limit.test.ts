import { describe, expect, it } from 'vitest';
import { AdaptiveLimit, type LimitSample } from '../../../src/util/adaptive-limit.ts';

const answer = (latencyMs: number, limited = true): LimitSample => ({ kind: 'answer', latencyMs, limited });

/** Feeds `count` samples one millisecond apart from `start`; returns the limit after each. */
function feed(limit: AdaptiveLimit, sample: LimitSample, count: number, start = 0): number[] {
  return Array.from({ length: count }, (_, i) => {
    limit.sample(sample, start + i);
    return limit.limit;
  });
}

describe('adaptive concurrency limit', () => {
  it('grows while work waits and answers stay as fast, doubling per round at first, up to the max', () => {
    const limit = new AdaptiveLimit({ initial: 4, min: 1, max: 40 });
    // One round (4 answers) doubles it; the next round (8 answers) doubles it again.
    expect(feed(limit, answer(20), 4).at(-1)).toBe(8);
    expect(feed(limit, answer(20), 8, 10).at(-1)).toBe(16);
    feed(limit, answer(20), 100, 100);
    expect(limit.limit).toBe(40);
  });

  it('does not grow while nothing waits for a slot', () => {
    const limit = new AdaptiveLimit({ initial: 4, min: 1, max: 40 });
    feed(limit, answer(20, false), 50);
    expect(limit.limit).toBe(4);
  });

  it('halves on an overload answer, once for a burst of them, and not below the min', () => {
    const limit = new AdaptiveLimit({ initial: 16, min: 2, max: 64 });
    expect(limit.sample({ kind: 'overload' }, 0)).toBe('shrank');
    expect(limit.limit).toBe(8);
    // The other calls of the same round failed too: that is the same overload.
    feed(limit, { kind: 'overload' }, 7, 1);
    expect(limit.limit).toBe(8);
    // A round later, still overloaded: halved again, down to the min and no further.
    feed(limit, { kind: 'overload' }, 20, 10);
    expect(limit.limit).toBe(2);
  });

  it('grows by one per round after it had to shrink', () => {
    const limit = new AdaptiveLimit({ initial: 16, min: 1, max: 64 });
    limit.sample({ kind: 'overload' }, 0);
    expect(limit.limit).toBe(8);
    // Additive now: a round of 8 answers adds one, not eight.
    feed(limit, answer(20), 8, 1);
    expect(limit.limit).toBe(9);
    feed(limit, answer(20), 9, 20);
    expect(limit.limit).toBe(10);
  });

  it('pauses new calls as long as the destination asked', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    limit.sample({ kind: 'overload', retryAfterMs: 3_000 }, 1_000);
    expect(limit.pausedUntil).toBe(4_000);
    // A shorter pause asked later does not cut the longer one short.
    limit.sample({ kind: 'overload', retryAfterMs: 500 }, 2_000);
    expect(limit.pausedUntil).toBe(4_000);
  });

  it('gives back what it grew while answers come much slower than the recent best, a tenth per round', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    feed(limit, answer(20), 40);
    expect(limit.limit).toBe(48);
    expect(limit.baselineMs).toBe(20);
    // Queueing: five times slower. The smoothed latency crosses twice the best within a few answers.
    const limits = feed(limit, answer(100), 400, 100);
    // A tenth at a time, at most once per round: never a sudden halving.
    for (let i = 1; i < limits.length; i++) {
      expect(limits[i] as number).toBeGreaterThanOrEqual(Math.floor((limits[i - 1] as number) * 0.9));
    }
    // Down to where it started, not below: slow answers alone never cost the configured start.
    expect(limits.at(-1)).toBe(8);
    expect(Math.min(...limits)).toBe(8);
    // An overload answer still goes below it.
    limit.sample({ kind: 'overload' }, 1_000);
    expect(limit.limit).toBe(4);
  });

  it('takes small rises of fast answers for noise, not queueing', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64, slackMs: 10 });
    feed(limit, answer(1, false), 20);
    // Six times the best, but only 5 ms more: the limit still grows.
    feed(limit, answer(6), 30, 100);
    expect(limit.limit).toBeGreaterThan(8);
  });

  it('forgets a best latency older than its window, so a new normal is not queueing for ever', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64, baselineWindowMs: 10_000 });
    feed(limit, answer(10, false), 20);
    expect(limit.baselineMs).toBe(10);
    // The destination is slower from now on, for good.
    feed(limit, answer(50, false), 200, 100);
    feed(limit, answer(50, false), 200, 20_000);
    expect(limit.baselineMs).toBeGreaterThan(40);
    const before = limit.limit;
    feed(limit, answer(50), 20, 30_000);
    expect(limit.limit).toBeGreaterThan(before);
  });

  it('refuses bounds that do not hold together', () => {
    expect(() => new AdaptiveLimit({ initial: 4, min: 8, max: 16 })).toThrow(/min <= initial <= max/);
    expect(() => new AdaptiveLimit({ initial: 0, min: 0, max: 16 })).toThrow();
  });
});
