import { describe, expect, it } from 'vitest';
import { leastWarmPool, type WarmPoolSupply } from '../../../src/warm-pool/estimate.ts';

const supply = (cold: number, warm = 1, rate = 5): WarmPoolSupply => ({
  coldSeconds: () => cold,
  warmSeconds: () => warm,
  maxCreatePerSecond: rate,
});
const P95_30S = { quantile: 0.95, seconds: 30 };

describe('the least warm pool that meets a queue-time objective', () => {
  it('keeps none when nothing arrives, or when a cold start meets the objective anyway', () => {
    expect(
      leastWarmPool({ jobsPerHour: 0, batchSizes: [] }, supply(60), P95_30S, { min: 2, max: 10 }),
    ).toEqual({
      size: 2,
      predictedSeconds: 0,
      met: true,
    });
    const quick = leastWarmPool({ jobsPerHour: 500, batchSizes: [] }, supply(20), P95_30S, {
      min: 0,
      max: 10,
    });
    expect(quick.size).toBe(0);
    expect(quick.met).toBe(true);
  });

  it('finds the least size: one runner fewer misses the objective', () => {
    const demand = {
      jobsPerHour: 300,
      batchSizes: [
        { size: 1, weight: 3 },
        { size: 4, weight: 1 },
      ],
    };
    const found = leastWarmPool(demand, supply(60), P95_30S, { min: 0, max: 50 });
    expect(found.met).toBe(true);
    expect(found.size).toBeGreaterThan(0);
    expect(found.predictedSeconds).toBeLessThanOrEqual(30);
    const oneFewer = leastWarmPool(demand, supply(60), P95_30S, { min: 0, max: found.size - 1 });
    expect(oneFewer.met).toBe(false);
    expect(oneFewer.predictedSeconds).toBeGreaterThan(30);
  });

  it('needs more warm runners for more arrivals, bigger batches and slower starts', () => {
    const size = (jobsPerHour: number, batch: number, cold: number) =>
      leastWarmPool({ jobsPerHour, batchSizes: [{ size: batch, weight: 1 }] }, supply(cold), P95_30S, {
        min: 0,
        max: 200,
      }).size;
    expect(size(600, 1, 60)).toBeGreaterThan(size(100, 1, 60));
    expect(size(100, 8, 60)).toBeGreaterThan(size(100, 1, 60));
    expect(size(300, 1, 120)).toBeGreaterThan(size(300, 1, 60));
  });

  it('says so when no size within the bounds meets it, and keeps the least that does best', () => {
    // The hand-off alone takes longer than the objective: runners waiting do not help.
    const slow = leastWarmPool({ jobsPerHour: 100, batchSizes: [] }, supply(60, 40), P95_30S, {
      min: 0,
      max: 20,
    });
    expect(slow.met).toBe(false);
    expect(slow.predictedSeconds).toBeGreaterThan(30);
    const lessRoom = leastWarmPool({ jobsPerHour: 2_000, batchSizes: [] }, supply(120), P95_30S, {
      min: 0,
      max: 3,
    });
    expect(lessRoom).toMatchObject({ size: 3, met: false });
  });
});
