import type { EpochMillis } from '../model/job.ts';
import { type CostUse, dollarsFor, type Interval, splitBusyIdle, utcDayStart } from './cost.ts';

/** What a runner's cost is labelled with. */
export interface CostKey {
  className: string;
  source: string;
}

interface MeteredRunner {
  key?: CostKey;
  hourlyRate?: number;
  /** From when the runner costs: it runs (and not before the meter started). */
  start?: EpochMillis;
  /** When it stopped costing: its container ended, its deletion began, or it vanished. */
  end?: EpochMillis;
  job?: { start: EpochMillis; end?: EpochMillis };
  /** Accounted up to here. */
  accounted?: EpochMillis;
  /** The watch saw it go; it is dropped once accounted to its end. */
  gone?: EpochMillis;
}

export interface CostMeterOptions {
  /** When metering began: time before it was counted by an earlier process. */
  startedAt: EpochMillis;
  /**
   * How far behind the clock accounting stays, so that a job's start or end reported a little late
   * (a webhook in flight, a poll) still splits busy from idle where it really happened.
   */
  settleMs: number;
  /** Called with each accounted amount. */
  onCost: (key: CostKey, use: CostUse, dollars: number) => void;
}

/**
 * Accrues each runner's cost as its life goes by: `settle(now)` accounts every runner up to
 * `now - settleMs` (or up to its end), so counters rise smoothly rather than in one step per runner.
 * Fed by ledger changes only; keeps no other record of runners.
 */
export class CostMeter {
  readonly #options: CostMeterOptions;
  readonly #runners = new Map<string, MeteredRunner>();
  #today: { day: EpochMillis; byClass: Map<string, number> } = { day: 0, byClass: new Map() };

  constructor(options: CostMeterOptions) {
    this.#options = options;
  }

  #runner(name: string): MeteredRunner {
    let found = this.#runners.get(name);
    if (!found) {
      found = {};
      this.#runners.set(name, found);
    }
    return found;
  }

  /** The runner's container started at `runningSince`. */
  running(name: string, key: CostKey, hourlyRate: number, runningSince: EpochMillis): void {
    const runner = this.#runner(name);
    if (runner.start !== undefined) return;
    runner.key = key;
    runner.hourlyRate = hourlyRate;
    runner.start = Math.max(runningSince, this.#options.startedAt);
    runner.accounted = runner.start;
  }

  /** The runner stopped costing at `at` (its pod ended or its deletion began). */
  ended(name: string, at: EpochMillis): void {
    const runner = this.#runners.get(name);
    if (runner && runner.end === undefined) runner.end = at;
  }

  /** The watch saw the runner's pod disappear at `at`; `endedAt` is its end if the pod reported one. */
  gone(name: string, at: EpochMillis, endedAt?: EpochMillis): void {
    const runner = this.#runners.get(name);
    if (!runner) return;
    if (runner.start === undefined) {
      // Never ran: it cost nothing.
      this.#runners.delete(name);
      return;
    }
    runner.end ??= endedAt ?? at;
    runner.gone = at;
  }

  jobStarted(runnerName: string, at: EpochMillis): void {
    const runner = this.#runner(runnerName);
    runner.job ??= { start: at };
  }

  jobCompleted(runnerName: string, startedAt: EpochMillis | null, completedAt: EpochMillis): void {
    const runner = this.#runners.get(runnerName);
    if (!runner) return;
    runner.job = { start: runner.job?.start ?? startedAt ?? completedAt, end: completedAt };
  }

  /** Accounts every runner up to `now - settleMs`; gone runners whose job is settled are accounted to their end. */
  settle(now: EpochMillis): void {
    const horizon = now - this.#options.settleMs;
    for (const [name, runner] of this.#runners) {
      if (runner.start === undefined) continue;
      const end = runner.end ?? Number.POSITIVE_INFINITY;
      const jobSettled = runner.job === undefined || runner.job.end !== undefined;
      const final = runner.gone !== undefined && (jobSettled || horizon >= runner.gone);
      this.#account(runner, final ? end : Math.min(end, horizon), now);
      if (final) this.#runners.delete(name);
    }
  }

  #account(runner: MeteredRunner, upTo: EpochMillis, now: EpochMillis): void {
    const { key, hourlyRate, accounted } = runner;
    if (key === undefined || hourlyRate === undefined || accounted === undefined || upTo <= accounted) return;
    const span: Interval = { from: accounted, to: upTo };
    const job = runner.job
      ? { from: runner.job.start, to: runner.job.end ?? Number.POSITIVE_INFINITY }
      : undefined;
    const split = splitBusyIdle(span, job);
    for (const use of ['busy', 'idle'] as const) {
      if (split[use] > 0) this.#options.onCost(key, use, dollarsFor(split[use], hourlyRate));
    }
    // What falls on today's UTC date, for the status page.
    const day = utcDayStart(now);
    if (this.#today.day !== day) this.#today = { day, byClass: new Map() };
    const todayMs = Math.max(0, upTo - Math.max(accounted, day));
    if (todayMs > 0) {
      const byClass = this.#today.byClass;
      byClass.set(key.className, (byClass.get(key.className) ?? 0) + dollarsFor(todayMs, hourlyRate));
    }
    runner.accounted = upTo;
  }

  /** Dollars accounted per class for today's UTC date. */
  costToday(now: EpochMillis): ReadonlyMap<string, number> {
    return this.#today.day === utcDayStart(now) ? this.#today.byClass : new Map();
  }

  /** Runners still being metered (running, or gone and waiting for their job's end). */
  get metered(): number {
    let count = 0;
    for (const runner of this.#runners.values()) if (runner.start !== undefined) count++;
    return count;
  }
}
