import { describe, expect, it } from 'vitest';
import { withRetry } from '../../../src/util/retry.ts';

const transient = new Error('transient');
const fatal = new Error('fatal');

function policy(delays: number[], requested?: number) {
  return {
    attempts: 4,
    baseDelayMs: 100,
    maxDelayMs: 1_000,
    isRetryable: (err: unknown) => err === transient,
    requestedDelayMs: () => requested,
    random: () => 1,
    sleep: async (ms: number) => {
      delays.push(ms);
    },
  };
}

describe('withRetry', () => {
  it('retries transient failures with growing, capped backoff and returns the result', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetry(async () => {
      calls++;
      if (calls < 4) throw transient;
      return 'done';
    }, policy(delays));
    expect(result).toBe('done');
    expect(calls).toBe(4);
    expect(delays).toEqual([100, 200, 400]);
  });

  it('gives up after the last attempt with the last error', async () => {
    const delays: number[] = [];
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw transient;
      }, policy(delays)),
    ).rejects.toBe(transient);
    expect(calls).toBe(4);
  });

  it('does not retry an error that is not transient', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw fatal;
      }, policy([])),
    ).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });

  it('waits as long as the server asked, within the cap', async () => {
    const delays: number[] = [];
    let calls = 0;
    await withRetry(
      async () => {
        if (++calls < 3) throw transient;
      },
      policy(delays, 5_000),
    );
    expect(delays).toEqual([1_000, 1_000]);
  });
});
