import type { Clock } from '../../../src/sources/github/clock.ts';

interface Sleeper {
  at: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. Shared by the fake GitHub and the code under test, so token
 * expiry, rate-limit resets and job durations pass without real waiting.
 */
export class ManualClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  readonly #autoAdvance: boolean;
  /** Every wait asked for, in ms (for tests that check backoff and Retry-After handling). */
  readonly sleeps: number[] = [];

  /** With autoAdvance, a sleep moves time by its length and returns at once (backoffs without waiting). */
  constructor(options: { startMs?: number; autoAdvance?: boolean } = {}) {
    this.#now = options.startMs ?? Date.parse('2026-01-05T09:00:00Z');
    this.#autoAdvance = options.autoAdvance ?? false;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (this.#autoAdvance && !signal?.aborted) {
      this.advance(ms);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const sleeper: Sleeper = { at: this.#now + Math.max(0, ms), resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Pending sleeps, for tests that want to see a wait was asked for. */
  get pendingSleeps(): number[] {
    return this.#sleepers.map((s) => s.at - this.#now);
  }

  /** Moves time forward and wakes every sleeper that is due. */
  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  set(ms: number): void {
    this.#now = Math.max(this.#now, ms);
    const due = this.#sleepers.filter((s) => s.at <= this.#now);
    this.#sleepers = this.#sleepers.filter((s) => s.at > this.#now);
    for (const s of due) s.resolve();
  }
}
