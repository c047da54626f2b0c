/**
 * How many calls to one destination (the Kubernetes apiserver, GitHub) may be under way at once,
 * learnt from the answers.
 *
 * - While work waits for a slot, the limit grows: by one per answer at first (doubling every round of
 *   answers), then by one per round.
 * - It grows only while latency holds: once the limit has changed by a quarter or more since the last
 *   check and a round of answers came back at the new limit, their latency is compared with the
 *   latency at the old one. A destination that was not the bottleneck answers about as fast with more
 *   calls in flight; one that queues them answers slower in proportion. When latency rose by more
 *   than half the rise of the limit (in log terms), the growth is taken back to the old limit and
 *   growth goes on one per round from there.
 * - Latency that changes while the limit does not (other load on the destination) is not Gantry's
 *   doing: it moves the reference, nothing else.
 * - An overload answer (429, 5xx, no answer in time) halves the limit, at most once per round (a
 *   burst of failures of calls sent together counts once), and a Retry-After pauses new calls.
 *
 * Pure: time comes in with every sample, so the policy is tested without a clock.
 */
export interface AdaptiveLimitOptions {
  /** The limit before anything is learnt. */
  initial: number;
  min: number;
  max: number;
  /**
   * Latencies below this (ms) count as this: differences among fast answers are noise, not queueing.
   */
  noiseFloorMs?: number;
}

export type LimitSample =
  /** An answer came (any status but an overload one); `limited`: work was waiting for a slot. */
  | { kind: 'answer'; latencyMs: number; limited: boolean }
  /** 429, 5xx or no answer in time; `retryAfterMs` when the destination said when to come back. */
  | { kind: 'overload'; retryAfterMs?: number };

export type LimitChange = 'grew' | 'shrank' | 'unchanged';

const OVERLOAD_DECREASE = 0.5;
/** The limit must have changed by this factor before latency can tell whether the change helped. */
const JUDGED_CHANGE = 1.25;
/** Latency rising faster than this power of the limit's rise means the destination queues the calls. */
const QUEUEING_ELASTICITY = 0.5;

export class AdaptiveLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #noiseFloorMs: number;
  #value: number;
  #slowStart = true;
  /** The limit and the mean latency at it that later limits are judged against. */
  #reference: { limit: number; latencyMs: number } | undefined;
  /**
   * The answers at the limit as it stands: the first `skip` answers after a change are of calls sent
   * before it, and say nothing about it.
   */
  #round = { skip: 0, answers: 0, totalMs: 0, limited: false };
  /** Answers since the last decrease: decreases are at most one per round. */
  #sinceDecrease = Number.POSITIVE_INFINITY;
  #pausedUntil = 0;

  constructor(options: AdaptiveLimitOptions) {
    if (!(options.min >= 1 && options.min <= options.initial && options.initial <= options.max)) {
      throw new Error(
        `adaptive limit: expected 1 <= min <= initial <= max, got ${options.min}, ${options.initial}, ${options.max}`,
      );
    }
    this.#min = options.min;
    this.#max = options.max;
    this.#value = options.initial;
    this.#noiseFloorMs = options.noiseFloorMs ?? 5;
  }

  /** Calls that may be under way now. */
  get limit(): number {
    return this.#value;
  }

  /** No new call before this time (epoch ms): the destination asked for a pause. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  sample(sample: LimitSample, now: number): LimitChange {
    const before = this.#value;
    this.#sinceDecrease += 1;
    if (sample.kind === 'overload') {
      if (sample.retryAfterMs !== undefined) {
        this.#pausedUntil = Math.max(this.#pausedUntil, now + sample.retryAfterMs);
      }
      this.#decrease();
    } else this.#answer(Math.max(this.#noiseFloorMs, sample.latencyMs), sample.limited);
    const after = this.#value;
    return after > before ? 'grew' : after < before ? 'shrank' : 'unchanged';
  }

  #answer(latencyMs: number, limited: boolean): void {
    const round = this.#round;
    if (round.skip > 0) {
      round.skip -= 1;
    } else {
      round.answers += 1;
      round.totalMs += latencyMs;
      round.limited ||= limited;
    }
    if (round.answers >= this.#value) {
      this.#judge(round.totalMs / round.answers, round.limited);
      return;
    }
    // Slow start: one more per answer while work waits, up to twice the last judged limit.
    const reference = this.#reference;
    if (this.#slowStart && limited && reference && this.#value < Math.min(this.#max, 2 * reference.limit)) {
      this.#set(this.#value + 1);
    }
  }

  /** A round of answers at the limit as it stands came back, `latencyMs` on average. */
  #judge(latencyMs: number, limited: boolean): void {
    const reference = this.#reference;
    const grown = reference ? this.#value / reference.limit : 1;
    if (reference && grown >= JUDGED_CHANGE) {
      const elasticity = Math.log(latencyMs / reference.latencyMs) / Math.log(grown);
      if (elasticity > QUEUEING_ELASTICITY) {
        // The destination queued what the growth added: back to the limit it answered as fast at.
        this.#slowStart = false;
        this.#set(Math.max(this.#min, reference.limit));
        return;
      }
    }
    // Judged good, or latency moved while the limit did not: the reference follows.
    if (!reference || grown >= JUDGED_CHANGE || grown <= 1) {
      this.#reference = { limit: this.#value, latencyMs };
    }
    if (limited && this.#value < this.#max) this.#set(this.#value + 1);
    else this.#set(this.#value);
  }

  #decrease(): void {
    this.#slowStart = false;
    if (this.#sinceDecrease < this.#value) return;
    this.#sinceDecrease = 0;
    this.#reference = undefined;
    this.#set(Math.max(this.#min, Math.floor(this.#value * OVERLOAD_DECREASE)));
  }

  /** Sets the limit and starts a new round: the calls under way now answer first. */
  #set(value: number): void {
    this.#round = { skip: Math.min(this.#value, value), answers: 0, totalMs: 0, limited: false };
    this.#value = value;
  }
}
