/**
 * How many calls to one destination (the Kubernetes apiserver, GitHub) may be under way at once,
 * learnt from the answers: additive increase, multiplicative decrease, steered by latency.
 *
 * - While work waits for a slot and answers come back about as fast as the destination's recent
 *   best, the limit grows: by one per answer at first (doubling every round of answers), then, once
 *   it has had to shrink, by one per round.
 * - Answers much slower than that best (more than `tolerance` times, and by more than `slackMs`) are
 *   the destination queueing: the limit shrinks by a tenth, but not below `initial`. Latency alone
 *   only takes back what it gave: other load on the destination slows its answers too, and yielding
 *   to it below the configured start would lose throughput to it for nothing.
 * - An overload answer (429, 5xx, no answer in time) halves it, and a Retry-After pauses new calls.
 * - It shrinks at most once per round (as many answers as the limit), so a burst of failures from
 *   calls sent together counts once.
 *
 * Pure: time comes in with every sample, so the policy is tested without a clock.
 */
export interface AdaptiveLimitOptions {
  /** The limit before anything is learnt. */
  initial: number;
  min: number;
  max: number;
  /** Answers this many times slower than the recent best mean the destination is queueing. */
  tolerance?: number;
  /** Latency rises smaller than this (ms) are noise, whatever the ratio: fast calls jitter. */
  slackMs?: number;
  /** How long the best latency seen is remembered; a later, slower normal replaces it after that. */
  baselineWindowMs?: number;
}

export type LimitSample =
  /** An answer came (any status but an overload one); `limited`: work was waiting for a slot. */
  | { kind: 'answer'; latencyMs: number; limited: boolean }
  /** 429, 5xx or no answer in time; `retryAfterMs` when the destination said when to come back. */
  | { kind: 'overload'; retryAfterMs?: number };

export type LimitChange = 'grew' | 'shrank' | 'unchanged';

const SMOOTHING = 0.2;
const LATENCY_DECREASE = 0.9;
const OVERLOAD_DECREASE = 0.5;

export class AdaptiveLimit {
  readonly #min: number;
  readonly #initial: number;
  readonly #max: number;
  readonly #tolerance: number;
  readonly #slackMs: number;
  readonly #windowMs: number;
  #value: number;
  #slowStart = true;
  /** Latency smoothed over the last few answers. */
  #smoothed: number | undefined;
  /** The lowest smoothed latency of the current and the previous half window. */
  #best: { current: number; previous: number; since: number } | undefined;
  /** Answers since the last decrease: decreases are at most one per round. */
  #sinceDecrease = Number.POSITIVE_INFINITY;
  #pausedUntil = 0;
  /** Answers that would have grown the limit since it last grew, after slow start. */
  #towardsNext = 0;

  constructor(options: AdaptiveLimitOptions) {
    if (!(options.min >= 1 && options.min <= options.initial && options.initial <= options.max)) {
      throw new Error(
        `adaptive limit: expected 1 <= min <= initial <= max, got ${options.min}, ${options.initial}, ${options.max}`,
      );
    }
    this.#min = options.min;
    this.#initial = options.initial;
    this.#max = options.max;
    this.#value = options.initial;
    this.#tolerance = options.tolerance ?? 2;
    this.#slackMs = options.slackMs ?? 10;
    this.#windowMs = options.baselineWindowMs ?? 60_000;
  }

  /** Calls that may be under way now. */
  get limit(): number {
    return Math.max(this.#min, Math.min(this.#max, Math.floor(this.#value)));
  }

  /** No new call before this time (epoch ms): the destination asked for a pause. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** The recent best latency (ms) the policy compares with; undefined before the first answer. */
  get baselineMs(): number | undefined {
    return this.#best ? Math.min(this.#best.current, this.#best.previous) : undefined;
  }

  sample(sample: LimitSample, now: number): LimitChange {
    const before = this.limit;
    this.#sinceDecrease += 1;
    if (sample.kind === 'overload') {
      if (sample.retryAfterMs !== undefined) {
        this.#pausedUntil = Math.max(this.#pausedUntil, now + sample.retryAfterMs);
      }
      this.#decrease(OVERLOAD_DECREASE);
    } else {
      const latency = Math.max(0, sample.latencyMs);
      this.#smoothed =
        this.#smoothed === undefined ? latency : this.#smoothed + SMOOTHING * (latency - this.#smoothed);
      const baseline = this.#remember(this.#smoothed, now);
      const queueing =
        this.#smoothed > baseline * this.#tolerance && this.#smoothed - baseline > this.#slackMs;
      if (queueing) this.#decrease(LATENCY_DECREASE, this.#initial);
      else if (sample.limited && this.#value < this.#max) this.#increase();
    }
    const after = this.limit;
    return after > before ? 'grew' : after < before ? 'shrank' : 'unchanged';
  }

  #increase(): void {
    if (!this.#slowStart) {
      // One more per round of answers that all found work waiting.
      this.#towardsNext += 1;
      if (this.#towardsNext < this.limit) return;
    }
    this.#towardsNext = 0;
    this.#value = Math.min(this.#max, this.#value + 1);
  }

  #decrease(factor: number, floor = this.#min): void {
    if (this.#value <= floor) return;
    this.#slowStart = false;
    if (this.#sinceDecrease < this.limit) return;
    this.#sinceDecrease = 0;
    this.#towardsNext = 0;
    this.#value = Math.max(floor, Math.floor(this.#value * factor));
  }

  /** Keeps the lowest smoothed latency over about one window (two halves); returns it. */
  #remember(latency: number, now: number): number {
    const half = this.#windowMs / 2;
    if (!this.#best) this.#best = { current: latency, previous: latency, since: now };
    else if (now - this.#best.since >= half) {
      // A whole window went by without a sample: the old best says nothing about now.
      const stale = now - this.#best.since >= 2 * half;
      this.#best = { current: latency, previous: stale ? latency : this.#best.current, since: now };
    } else this.#best.current = Math.min(this.#best.current, latency);
    return Math.min(this.#best.current, this.#best.previous);
  }
}
