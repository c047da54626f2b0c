import { AdaptiveLimit, type AdaptiveLimitOptions } from './adaptive-limit.ts';

export interface AdaptiveGateOptions extends AdaptiveLimitOptions {
  /**
   * What a failed call says: `overload` (429, 5xx, no answer in time), `answer` (any other refusal:
   * as telling as a success), or `unsent` (it never reached the destination: nothing to learn).
   */
  judge: (err: unknown) => 'overload' | 'answer' | 'unsent';
  /** Told of every change of the limit (metrics). */
  onLimit?: (limit: number) => void;
  now?: () => number;
}

/**
 * Lets calls to one destination through at most `limit` at a time, first come first served, the
 * limit adapting to the answers (see AdaptiveLimit).
 */
export function createAdaptiveGate(options: AdaptiveGateOptions) {
  const limit = new AdaptiveLimit(options);
  const now = options.now ?? Date.now;
  const waiting: (() => void)[] = [];
  let inFlight = 0;

  function admit(): void {
    while (inFlight < limit.limit && waiting.length > 0) {
      inFlight += 1;
      (waiting.shift() as () => void)();
    }
  }

  function settle(sample: Parameters<AdaptiveLimit['sample']>[0] | undefined): void {
    inFlight -= 1;
    if (sample && limit.sample(sample, now()) !== 'unchanged') options.onLimit?.(limit.limit);
    admit();
  }

  return {
    async run<T>(call: () => Promise<T>): Promise<T> {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        admit();
      });
      // Work was waiting behind this call: a limit that held it back may grow.
      const limited = waiting.length > 0 || inFlight >= limit.limit;
      const startedAt = performance.now();
      try {
        const result = await call();
        settle({ kind: 'answer', latencyMs: performance.now() - startedAt, limited });
        return result;
      } catch (err) {
        const verdict = options.judge(err);
        settle(
          verdict === 'overload'
            ? { kind: 'overload' }
            : verdict === 'answer'
              ? { kind: 'answer', latencyMs: performance.now() - startedAt, limited }
              : undefined,
        );
        throw err;
      }
    },
    get limit(): number {
      return limit.limit;
    },
    get inFlight(): number {
      return inFlight;
    },
    get waiting(): number {
      return waiting.length;
    },
  };
}

export type AdaptiveGate = ReturnType<typeof createAdaptiveGate>;
