import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import {
  type JobEvent,
  type JobIdentity,
  type JobOrigin,
  jobKey,
  type ObservedVia,
} from '../../model/job.ts';
import { BACKGROUND_RETRIES, doublingDelayMs } from '../../util/schedules.ts';
import type { Clock } from './clock.ts';
import type { JobTracker, TrackedJob } from './job-tracker.ts';
import type { GithubMetrics } from './metrics.ts';
import type { RunOrigins } from './run-origin.ts';
import { eventOf, identityOf, type JobPhase, PHASE_ORDER, type WorkflowJobFields } from './workflow-job.ts';

/** Waits between look-ups of a run that could not be looked up. */
const { originLookup } = BACKGROUND_RETRIES;

export interface JobApplier {
  /** Turns what a webhook or a poll said about a job into at most one new event. */
  apply(job: WorkflowJobFields, repo: string, phase: JobPhase, via: ObservedVia): Promise<JobEvent | null>;
  /** Emits a completion for a job whose end could not be read (its run finished without it). */
  closeUnseen(tracked: TrackedJob, key: string): void;
  /** Ends the retries of held jobs (see apply) and waits for those in flight; they emit nothing after. */
  stop(): Promise<void>;
}

/** An observation kept back until the origin of its job's run is known. */
interface HeldJob {
  job: WorkflowJobFields;
  repo: string;
  phase: JobPhase;
  via: ObservedVia;
}

/**
 * The one place where job observations become events: deduplicated and forward-only through the
 * tracker, with the origin of the job's run (untrusted per the trust policy), handed to the consumer once.
 *
 * A job's identity, untrusted flag included, is fixed by its first event. When its run cannot be
 * looked up, the job is held back (no event, nothing tracked) rather than guessed: it must never pass
 * as trusted, and a guess of untrusted would stay with it for good. The run is looked up again with a
 * growing delay until the verdict is known or other observations moved the job on.
 */
export function createJobApplier(options: {
  tracker: JobTracker;
  origins: RunOrigins;
  emit: (event: JobEvent) => void;
  clock: Clock;
  logger: Logger;
  metrics: GithubMetrics;
  /** Jobs held at most; beyond, the oldest is dropped (the poller finds it again: it was never tracked). */
  maxHeld?: number;
  /** Whether some class could take a job with these labels; one none could is dropped before its look-up. */
  isServable?: (labels: readonly string[]) => boolean;
}): JobApplier {
  const { tracker, metrics, origins } = options;
  const log = options.logger.child({ component: 'github-jobs' });
  const maxHeld = options.maxHeld ?? 5_000;
  /** By job key, oldest first. */
  const held = new Map<string, HeldJob>();
  /** One retry loop per run, so the held jobs of a run share each look-up. */
  const retrying = new Map<number, Promise<void>>();
  const stopping = new AbortController();
  /** Jobs dropped for want of a class, so each is counted once however often it is seen. */
  const ignored = new LRUCache<string, true>({ max: 10_000 });

  const deliver = (event: JobEvent) => {
    metrics.events.inc({ kind: event.kind, via: event.via });
    log.debug(
      { job: event.job.key, repo: event.job.repo, run: event.job.runId, kind: event.kind, via: event.via },
      'job event',
    );
    try {
      options.emit(event);
    } catch (err) {
      log.error({ job: event.job.key, err: (err as Error).message }, 'job event consumer failed');
    }
  };

  const heldOf = (runId: number) => [...held].filter(([, h]) => h.job.run_id === runId);

  const release = (key: string) => {
    if (held.delete(key)) metrics.jobsAwaitingOrigin.set(held.size);
  };

  /** Records and delivers the observation's event, unless another observation moved the job on. */
  const settle = (key: string, observation: HeldJob, identity: JobIdentity): JobEvent | null => {
    const { job, repo, phase, via } = observation;
    const event = eventOf(job, phase, identity, via);
    if (
      !event ||
      !tracker.advance(key, { phase, identity, repo, runId: job.run_id, createdAt: event.createdAt })
    ) {
      return null;
    }
    const pending = held.get(key);
    if (pending && !tracker.isAdvance(key, pending.phase)) release(key);
    deliver(event);
    return event;
  };

  const retryRun = (repo: string, runId: number) => {
    if (retrying.has(runId) || stopping.signal.aborted) return;
    const loop = (async () => {
      try {
        for (let attempt = 0; ; attempt++) {
          const delay = doublingDelayMs(originLookup, attempt);
          try {
            await options.clock.sleep(delay, stopping.signal);
          } catch {
            return;
          }
          // Every held job of the run was settled by another observation, or dropped.
          if (heldOf(runId).length === 0) return;
          let origin: JobOrigin;
          try {
            origin = await origins.originOf(repo, runId);
          } catch {
            continue;
          }
          // Nothing is held any more after stop(): a look-up that ends later releases nothing.
          for (const [key, observation] of heldOf(runId)) {
            release(key);
            if (!tracker.isAdvance(key, observation.phase)) continue;
            const identity =
              tracker.get(key)?.identity ?? identityOf(observation.job, observation.repo, origin);
            try {
              settle(key, observation, identity);
            } catch (err) {
              log.warn({ repo, run: runId, job: key, err: (err as Error).message }, 'held job skipped');
            }
          }
          return;
        }
      } finally {
        // Synchronously at the loop's end, so a job held right after starts a new loop.
        retrying.delete(runId);
      }
    })();
    // The loop's first step is a sleep: it cannot reach its finally before this.
    retrying.set(runId, loop);
  };

  const hold = (key: string, observation: HeldJob, err: Error) => {
    if (stopping.signal.aborted) return;
    const previous = held.get(key);
    if (previous) {
      // Keep the latest news: a completion seen meanwhile replaces the queued observation.
      if (PHASE_ORDER[observation.phase] > PHASE_ORDER[previous.phase]) held.set(key, observation);
      return;
    }
    const [oldest] = held;
    if (oldest && held.size >= maxHeld) {
      const [oldestKey, { repo, job }] = oldest;
      held.delete(oldestKey);
      log.warn(
        { repo, run: job.run_id, job: oldestKey, maxHeld },
        'too many jobs awaiting their workflow run look-up; dropped the oldest (polling finds it again)',
      );
    }
    held.set(key, observation);
    metrics.jobsAwaitingOrigin.set(held.size);
    log.warn(
      { repo: observation.repo, run: observation.job.run_id, job: key, err: err.message },
      'cannot look up workflow run; holding the job until its origin is known',
    );
    retryRun(observation.repo, observation.job.run_id);
  };

  return {
    async apply(job, repo, phase, via) {
      const key = jobKey('github', job.id);
      if (!tracker.isAdvance(key, phase)) return null;
      // A job no class could take costs no look-up and no memory. (One such job that started on a
      // runner of Gantry's would be one some class takes: runners carry their class's labels.)
      if (options.isServable && !tracker.get(key) && !options.isServable(job.labels)) {
        if (!ignored.has(key)) {
          ignored.set(key, true);
          metrics.jobsIgnored.inc({ reason: 'no-class' });
        }
        return null;
      }
      if (phase === 'waiting') {
        tracker.advance(key, { phase, identity: null, repo, runId: job.run_id, createdAt: null });
        return null;
      }
      const observation = { job, repo, phase, via };
      let identity = tracker.get(key)?.identity;
      if (!identity) {
        try {
          identity = identityOf(job, repo, await origins.originOf(repo, job.run_id));
        } catch (err) {
          hold(key, observation, err as Error);
          return null;
        }
      }
      // Another observation may have moved the job on while the run was looked up.
      return settle(key, observation, identity);
    },

    closeUnseen(tracked, key) {
      if (!tracked.identity) return;
      if (!tracker.advance(key, { ...tracked, phase: 'completed' })) return;
      const now = options.clock.now();
      deliver({
        kind: 'completed',
        job: tracked.identity,
        via: 'poll',
        createdAt: tracked.createdAt ?? now,
        startedAt: null,
        completedAt: now,
        conclusion: 'unknown',
        runnerName: null,
      });
    },

    async stop() {
      stopping.abort();
      held.clear();
      metrics.jobsAwaitingOrigin.set(0);
      await Promise.all(retrying.values());
    },
  };
}
