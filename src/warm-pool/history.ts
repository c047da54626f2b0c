import { z } from 'zod';
import type { EpochMillis } from '../model/job.ts';
import { HOURS_PER_WEEK, hourOfWeek } from './schedule.ts';

/**
 * What a warm pool is sized from, learned per class: jobs arriving in each hour of the week (a moving
 * average over the weeks seen, so a change of habits shows within a month), how many jobs a run
 * brings at once, and recent waits: of jobs that found no runner (cold), of jobs that found an idle
 * one (warm), and runner start-up times. Pure: fed observations with their times, it keeps state a
 * ConfigMap can hold (a few KiB per class) and answers for any hour.
 */

const HOUR_MS = 3_600_000;
/** The average weighs the latest week at least this much (1/4: about a month of memory). */
const MAX_WEEKS_AVERAGED = 4;
/** Jobs of one run arriving within this of its first are one batch. */
const BATCH_WINDOW_MS = 30_000;
const MAX_BATCH = 64;
/** Batch counts are halved beyond this total, so recent runs weigh more. */
const BATCH_TOTAL_CAP = 5_000;
/** Waits kept per kind and class (the most recent). */
export const SAMPLES_KEPT = 200;
/** An hour observed for less than this share is not folded into the average. */
const MIN_OBSERVED_SHARE = 1 / 6;

export type LatencyKind = 'cold' | 'warm' | 'startup';

const round2 = (value: number) => Math.round(value * 100) / 100;

const classState = z.strictObject({
  jobsPerHour: z.array(z.number().min(0)).length(HOURS_PER_WEEK),
  hoursSeen: z.array(z.int().min(0)).length(HOURS_PER_WEEK),
  batchSizes: z.record(z.string().regex(/^\d+$/), z.number().min(0)),
  coldSeconds: z.array(z.number().min(0)).max(SAMPLES_KEPT),
  warmSeconds: z.array(z.number().min(0)).max(SAMPLES_KEPT),
  startupSeconds: z.array(z.number().min(0)).max(SAMPLES_KEPT),
});

export const historyStateSchema = z.strictObject({
  version: z.literal(1),
  classes: z.record(z.string(), classState),
  current: z
    .strictObject({
      hour: z.int(),
      observedFrom: z.number(),
      watchedUntil: z.number(),
      jobs: z.record(z.string(), z.int().min(0)),
    })
    .optional(),
});

export type HistoryState = z.output<typeof historyStateSchema>;
type ClassState = z.output<typeof classState>;

function emptyClass(): ClassState {
  return {
    jobsPerHour: new Array<number>(HOURS_PER_WEEK).fill(0),
    hoursSeen: new Array<number>(HOURS_PER_WEEK).fill(0),
    batchSizes: {},
    coldSeconds: [],
    warmSeconds: [],
    startupSeconds: [],
  };
}

interface CurrentHour {
  /** Epoch hour (ms since the epoch / 1 h). */
  hour: number;
  /** From when, and until when, this hour was watched. */
  observedFrom: EpochMillis;
  watchedUntil: EpochMillis;
  jobs: Map<string, number>;
}

/** Hours of silence folded in at most, one after the other: beyond a month they change nothing more. */
const MAX_HOURS_FOLDED = MAX_WEEKS_AVERAGED * HOURS_PER_WEEK;

export class ArrivalHistory {
  readonly #classes = new Map<string, ClassState>();
  #current: CurrentHour | undefined;
  /** Runs whose batch is still open: run key → class, jobs so far, first arrival. Oldest first. */
  readonly #openRuns = new Map<string, { className: string; count: number; firstAt: EpochMillis }>();

  constructor(state?: HistoryState) {
    if (!state) return;
    for (const [name, cls] of Object.entries(state.classes)) this.#classes.set(name, structuredClone(cls));
    if (state.current) {
      this.#current = {
        hour: state.current.hour,
        observedFrom: state.current.observedFrom,
        watchedUntil: state.current.watchedUntil,
        jobs: new Map(Object.entries(state.current.jobs)),
      };
    }
  }

  #class(name: string): ClassState {
    let found = this.#classes.get(name);
    if (!found) {
      found = emptyClass();
      this.#classes.set(name, found);
    }
    return found;
  }

  /**
   * Watching starts (again) at `at`, after a time nothing was watched (Gantry was not running): the
   * hour last watched counts for the part of it that was, the hours in between teach nothing.
   */
  observeFrom(at: EpochMillis): void {
    const hour = Math.floor(at / HOUR_MS);
    const current = this.#current;
    if (current && current.hour === hour) {
      current.watchedUntil = Math.max(current.watchedUntil, at);
      return;
    }
    if (current && current.hour < hour) this.#fold(current);
    this.#current = { hour, observedFrom: at, watchedUntil: at, jobs: new Map() };
  }

  /** Time passed while watching, up to `at`: every hour that ended is folded into the averages. */
  roll(at: EpochMillis): void {
    let current = this.#current;
    if (!current) {
      this.observeFrom(at);
      return;
    }
    const hour = Math.floor(at / HOUR_MS);
    if (hour - current.hour > MAX_HOURS_FOLDED) {
      // A month of silence and more: fold that month, the rest is the same again.
      current = {
        hour: hour - MAX_HOURS_FOLDED,
        observedFrom: (hour - MAX_HOURS_FOLDED) * HOUR_MS,
        watchedUntil: 0,
        jobs: new Map(),
      };
    }
    while (current.hour < hour) {
      current.watchedUntil = (current.hour + 1) * HOUR_MS;
      this.#fold(current);
      const next: number = current.hour + 1;
      current = { hour: next, observedFrom: next * HOUR_MS, watchedUntil: next * HOUR_MS, jobs: new Map() };
    }
    current.watchedUntil = Math.max(current.watchedUntil, at);
    this.#current = current;
    this.#closeBatches(at);
  }

  #fold(current: CurrentHour): void {
    const hourStart = current.hour * HOUR_MS;
    const watched =
      Math.min(current.watchedUntil, hourStart + HOUR_MS) - Math.max(current.observedFrom, hourStart);
    const share = watched / HOUR_MS;
    if (share < MIN_OBSERVED_SHARE) return;
    const slot = hourOfWeek(hourStart);
    // Every class learns the hour, those without a job in it too: quiet hours are news as well.
    for (const name of new Set([...this.#classes.keys(), ...current.jobs.keys()])) {
      const cls = this.#class(name);
      const count = (current.jobs.get(name) ?? 0) / share;
      const seen = cls.hoursSeen[slot] ?? 0;
      const weight = 1 / Math.min(seen + 1, MAX_WEEKS_AVERAGED);
      const before = cls.jobsPerHour[slot] ?? 0;
      cls.jobsPerHour[slot] = round2(before + weight * (count - before));
      cls.hoursSeen[slot] = seen + 1;
    }
  }

  /** A job of `className` arrived at `at` (run `runKey`: jobs of one run come together). */
  noteJob(className: string, at: EpochMillis, runKey: string): void {
    this.roll(at);
    const current = this.#current;
    if (current) current.jobs.set(className, (current.jobs.get(className) ?? 0) + 1);
    this.#class(className);
    const open = this.#openRuns.get(runKey);
    if (open && open.className === className) open.count += 1;
    else this.#openRuns.set(runKey, { className, count: 1, firstAt: at });
  }

  /** A wait or a start-up, in seconds. */
  noteLatency(className: string, kind: LatencyKind, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const list = this.#class(className)[`${kind}Seconds`];
    list.push(round2(seconds));
    if (list.length > SAMPLES_KEPT) list.splice(0, list.length - SAMPLES_KEPT);
  }

  /** Closes the batches of runs that arrived long enough ago. */
  #closeBatches(at: EpochMillis): void {
    for (const [key, run] of this.#openRuns) {
      if (at - run.firstAt < BATCH_WINDOW_MS) break;
      this.#openRuns.delete(key);
      const sizes = this.#class(run.className).batchSizes;
      const size = String(Math.min(MAX_BATCH, run.count));
      sizes[size] = (sizes[size] ?? 0) + 1;
      const total = Object.values(sizes).reduce((sum, n) => sum + n, 0);
      if (total > BATCH_TOTAL_CAP) for (const k of Object.keys(sizes)) sizes[k] = round2((sizes[k] ?? 0) / 2);
    }
  }

  /**
   * Jobs expected in an hour of the week: the learned average; for an hour not seen yet, the same
   * hour of the days that were seen; none seen, nothing.
   */
  jobsPerHour(className: string, slot: number): number {
    const cls = this.#classes.get(className);
    if (!cls) return 0;
    if ((cls.hoursSeen[slot] ?? 0) > 0) return cls.jobsPerHour[slot] ?? 0;
    let sum = 0;
    let days = 0;
    for (let day = 0; day < 7; day++) {
      const other = day * 24 + (slot % 24);
      if ((cls.hoursSeen[other] ?? 0) > 0) {
        sum += cls.jobsPerHour[other] ?? 0;
        days += 1;
      }
    }
    return days > 0 ? sum / days : 0;
  }

  batchSizes(className: string): { size: number; weight: number }[] {
    const sizes = this.#classes.get(className)?.batchSizes ?? {};
    return Object.entries(sizes).map(([size, weight]) => ({ size: Number(size), weight }));
  }

  latencies(className: string, kind: LatencyKind): readonly number[] {
    return this.#classes.get(className)?.[`${kind}Seconds`] ?? [];
  }

  /** Forgets classes that are no longer configured with a warm pool. */
  keepOnly(classNames: ReadonlySet<string>): void {
    for (const name of [...this.#classes.keys()]) if (!classNames.has(name)) this.#classes.delete(name);
  }

  toJSON(): HistoryState {
    return {
      version: 1,
      classes: Object.fromEntries([...this.#classes].map(([name, cls]) => [name, structuredClone(cls)])),
      ...(this.#current
        ? {
            current: {
              hour: this.#current.hour,
              observedFrom: this.#current.observedFrom,
              watchedUntil: this.#current.watchedUntil,
              jobs: Object.fromEntries(this.#current.jobs),
            },
          }
        : {}),
    };
  }
}
