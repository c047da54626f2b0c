import { describe, expect, it } from 'vitest';
import { AdaptiveLimit, type LimitSample } from '../../../src/util/adaptive-limit.ts';

const answer = (latencyMs: number, limited = true): LimitSample => ({ kind: 'answer', latencyMs, limited });

/**
 * Feeds `count` answers, each with the latency a destination gives at the limit as it stands then;
 * returns the limit after each.
 */
function drive(limit: AdaptiveLimit, latencyAt: (limit: number) => number, count: number, limited = true) {
  return Array.from({ length: count }, (_, i) => {
    limit.sample(answer(latencyAt(limit.limit), limited), i);
    return limit.limit;
  });
}

describe('adaptive concurrency limit', () => {
  it('grows while work waits and latency holds, doubling per round at first, up to the max', () => {
    const limit = new AdaptiveLimit({ initial: 4, min: 1, max: 64 });
    const limits = drive(limit, () => 20, 400);
    // A round at 4 to learn its latency, then doubling: 8 within two rounds of answers.
    expect(limits[2]).toBe(4);
    expect(limits[7]).toBe(8);
    expect(limits.at(-1)).toBe(64);
  });

  it('does not grow while nothing waits for a slot', () => {
    const limit = new AdaptiveLimit({ initial: 4, min: 1, max: 40 });
    expect(drive(limit, () => 20, 100, false).at(-1)).toBe(4);
  });

  it('takes growth back when the destination answers slower in proportion: it queues the calls', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    // A destination that does 400 calls a second whatever the concurrency: latency = limit / 400 s.
    const limits = drive(limit, (n) => (n / 400) * 1000, 2_000);
    // It never settles above where it started by more than the step it takes to find out.
    expect(Math.max(...limits.slice(500))).toBeLessThanOrEqual(10);
    expect(limits.at(-1)).toBeGreaterThanOrEqual(8);
  });

  it('finds the knee of a destination that is fast up to a point', () => {
    const limit = new AdaptiveLimit({ initial: 4, min: 1, max: 64 });
    // 20 ms up to 24 calls at once; beyond, the calls queue (latency in proportion).
    const limits = drive(limit, (n) => 20 * Math.max(1, n / 24), 4_000);
    const settled = limits.slice(2_000);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(16);
    expect(Math.max(...settled)).toBeLessThanOrEqual(40);
  });

  it('keeps growing when the destination slows down for everyone, not because of its calls', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    let at = 0;
    const feed = (latencyMs: number, limited: boolean, count: number) => {
      for (let i = 0; i < count; i++) limit.sample(answer(latencyMs, limited), at++);
    };
    feed(20, false, 50);
    // Other load on the destination: its latency goes up fivefold while the limit stays.
    feed(100, false, 50);
    expect(limit.limit).toBe(8);
    // Then a burst: the new normal is the reference, so latency holds and the limit grows.
    feed(100, true, 300);
    expect(limit.limit).toBe(64);
  });

  it('grows again after a slowdown that came while it grew', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    const limits = Array.from({ length: 1_500 }, (_, i) => {
      limit.sample(answer(i < 12 ? 20 : 100), i);
      return limit.limit;
    });
    // The slowdown looked like queueing and cost the growth of the moment, not more.
    expect(Math.min(...limits)).toBe(8);
    expect(limits.at(-1)).toBeGreaterThan(24);
  });

  it('halves on an overload answer, once for a burst of them, and not below the min', () => {
    const limit = new AdaptiveLimit({ initial: 16, min: 2, max: 64 });
    expect(limit.sample({ kind: 'overload' }, 0)).toBe('shrank');
    expect(limit.limit).toBe(8);
    // The other calls of the same round failed too: that is the same overload.
    for (let i = 1; i < 8; i++) limit.sample({ kind: 'overload' }, i);
    expect(limit.limit).toBe(8);
    // A round later, still overloaded: halved again, down to the min and no further.
    for (let i = 0; i < 30; i++) limit.sample({ kind: 'overload' }, 10 + i);
    expect(limit.limit).toBe(2);
  });

  it('grows one at a time after an overload, each step judged on a round of its own answers', () => {
    const limit = new AdaptiveLimit({ initial: 16, min: 1, max: 64 });
    limit.sample({ kind: 'overload' }, 0);
    expect(limit.limit).toBe(8);
    const limits = drive(limit, () => 20, 33);
    // The 8 calls sent before the halving answer first; the next 8 are the round at 8: then 9.
    expect(limits[14]).toBe(8);
    expect(limits[15]).toBe(9);
    // 8 answers of calls sent at 8, then a round of 9: then 10.
    expect(limits[31]).toBe(9);
    expect(limits[32]).toBe(10);
  });

  it('pauses new calls as long as the destination asked', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64 });
    limit.sample({ kind: 'overload', retryAfterMs: 3_000 }, 1_000);
    expect(limit.pausedUntil).toBe(4_000);
    // A shorter pause asked later does not cut the longer one short.
    limit.sample({ kind: 'overload', retryAfterMs: 500 }, 2_000);
    expect(limit.pausedUntil).toBe(4_000);
  });

  it('takes differences among fast answers for noise', () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 1, max: 64, noiseFloorMs: 5 });
    // Latency in proportion to the limit, but all of it under the noise floor.
    expect(drive(limit, (n) => n / 20, 300).at(-1)).toBe(64);
  });

  it('refuses bounds that do not hold together', () => {
    expect(() => new AdaptiveLimit({ initial: 4, min: 8, max: 16 })).toThrow(/min <= initial <= max/);
    expect(() => new AdaptiveLimit({ initial: 0, min: 0, max: 16 })).toThrow();
  });
});
