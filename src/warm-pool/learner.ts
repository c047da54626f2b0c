import type { RunnerClasses } from '../classes/schema.ts';
import type { LedgerChange } from '../ledger/ledger.ts';
import type { EpochMillis } from '../model/job.ts';
import { ArrivalHistory, type HistoryState } from './history.ts';
import { hourOfWeek } from './schedule.ts';
import { leadTimeMs, learnedSupply, type TargetEstimate, targetForHour } from './targets.ts';

/**
 * Warm pools sized from an objective, live: learns each warm-pool class's arrivals by hour of week,
 * its cold and warm waits and its runners' start-ups from the ledger's changes, and answers the pool
 * to keep now. An observer only: it plans nothing; the planner reads its target as the class's minIdle.
 */

export interface WarmPoolStatus {
  className: string;
  target: number;
  /** e.g. p95 ≤ 30 s. */
  objective: { percentile: string; seconds: number };
  predictedSeconds: number;
  met: boolean;
  /** Nothing learned yet to size the pool from. */
  unknown?: TargetEstimate['unknown'];
}

export interface WarmPoolLearnerOptions {
  classes: RunnerClasses;
  now: () => EpochMillis;
  /** When the runner (pod) of that name was created, while the ledger knows it. */
  runnerCreatedAt: (runnerName: string) => EpochMillis | undefined;
}

/** A job created this long before the learner started is one it did not see arrive. */
const RELIST_TOLERANCE_MS = 5_000;
/** Targets are estimated again at most this often (and at each hour). */
const REESTIMATE_MS = 60_000;

export function createWarmPoolLearner(options: WarmPoolLearnerOptions) {
  const { classes, now } = options;
  const warmClasses = new Set(Object.entries(classes).flatMap(([name, c]) => (c.warmPool ? [name] : [])));
  let history = new ArrivalHistory();
  const watchingSince = now();
  history.observeFrom(watchingSince);
  const cache = new Map<
    string,
    { at: EpochMillis; leadMs: number; hours: string; target: number; estimate: TargetEstimate }
  >();
  const hoursOf = (at: EpochMillis, leadMs: number) => `${hourOfWeek(at)}:${hourOfWeek(at + leadMs)}`;

  // The planner reads the target on every pass: it is estimated again only each minute, and when the
  // hour (or the next hour, a lead ahead) changes.
  const estimate = (className: string, at: EpochMillis) => {
    const runnerClass = classes[className];
    if (!runnerClass?.warmPool) return undefined;
    const cached = cache.get(className);
    if (cached && at - cached.at < REESTIMATE_MS && cached.hours === hoursOf(at, cached.leadMs))
      return cached;
    const supply = learnedSupply(history, className, runnerClass);
    const leadMs = leadTimeMs(supply);
    const current = targetForHour(history, className, runnerClass, supply, hourOfWeek(at));
    const ahead =
      hourOfWeek(at + leadMs) === hourOfWeek(at)
        ? current
        : targetForHour(history, className, runnerClass, supply, hourOfWeek(at + leadMs));
    const entry = {
      at,
      leadMs,
      hours: hoursOf(at, leadMs),
      target: Math.max(current.size, ahead.size),
      estimate: current,
    };
    cache.set(className, entry);
    return entry;
  };

  return {
    classNames: [...warmClasses].sort(),
    /** A ledger change: arrivals, waits and start-ups of warm-pool classes are learned. */
    observe(change: LedgerChange): void {
      switch (change.kind) {
        case 'job-queued': {
          const { job } = change;
          if (!job.classification.matched || job.identity.source !== 'github') return;
          const className = job.classification.className;
          if (!warmClasses.has(className)) return;
          // Found again after a restart (the poller relists what is queued): counted when it arrived,
          // by the process watching then.
          if (job.createdAt < watchingSince - RELIST_TOLERANCE_MS) return;
          const { repo, runId, runAttempt } = job.identity;
          history.noteJob(className, now(), `${repo}#${runId}#${runAttempt}`);
          return;
        }
        case 'job-started': {
          const { job } = change;
          if (!job.classification.matched || !warmClasses.has(job.classification.className)) return;
          const createdAt =
            job.runnerName !== undefined ? options.runnerCreatedAt(job.runnerName) : undefined;
          if (createdAt === undefined) return;
          // Warm: the runner existed before the job did. Both times are whole seconds (GitHub's and the
          // apiserver's), so a runner made in the job's own second was made for it.
          const warm = createdAt < job.createdAt;
          history.noteLatency(
            job.classification.className,
            warm ? 'warm' : 'cold',
            change.queuedForMs / 1000,
          );
          return;
        }
        case 'runner-running': {
          const { runner } = change;
          if (!warmClasses.has(runner.className)) return;
          history.noteLatency(
            runner.className,
            'startup',
            Math.max(0, runner.runningSince - runner.createdAt) / 1000,
          );
          return;
        }
        default:
          return;
      }
    },
    /** Time passed: hours that ended are learned. */
    tick(): void {
      history.roll(now());
    },
    /** The warm pool the class keeps now (its minIdle to the planner). */
    targetOf(className: string): number {
      return estimate(className, now())?.target ?? 0;
    },
    status(): WarmPoolStatus[] {
      const at = now();
      return [...warmClasses].sort().flatMap((className) => {
        const entry = estimate(className, at);
        const pool = classes[className]?.warmPool;
        if (!entry || !pool) return [];
        return [
          {
            className,
            target: entry.target,
            objective: { percentile: pool.objective.percentile, seconds: pool.objective.seconds },
            predictedSeconds: entry.estimate.predictedSeconds,
            met: entry.estimate.met,
            ...(entry.estimate.unknown ? { unknown: entry.estimate.unknown } : {}),
          },
        ];
      });
    },
    /** What to keep across restarts. */
    state(): HistoryState {
      history.roll(now());
      return history.toJSON();
    },
    /**
     * Takes over what was saved (a replica that starts leading). Arrivals this replica counted in the
     * hour in progress are kept when they are more than the saved ones (it applied the same webhooks).
     */
    restore(saved: HistoryState): void {
      const own = history.toJSON();
      const merged = structuredClone(saved);
      if (own.current && merged.current && own.current.hour === merged.current.hour) {
        for (const [name, count] of Object.entries(own.current.jobs)) {
          merged.current.jobs[name] = Math.max(count, merged.current.jobs[name] ?? 0);
        }
        merged.current.observedFrom = Math.min(own.current.observedFrom, merged.current.observedFrom);
      }
      history = new ArrivalHistory(merged);
      history.keepOnly(warmClasses);
      history.observeFrom(now());
      cache.clear();
    },
  };
}

export type WarmPoolLearner = ReturnType<typeof createWarmPoolLearner>;
