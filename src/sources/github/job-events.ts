import type { Logger } from 'pino';
import { type JobEvent, jobKey, type ObservedVia } from '../../model/job.ts';
import type { Clock } from './clock.ts';
import type { RunTrust } from './fork-detection.ts';
import type { JobTracker, TrackedJob } from './job-tracker.ts';
import type { GithubMetrics } from './metrics.ts';
import { eventOf, identityOf, type JobPhase, type WorkflowJobFields } from './workflow-job.ts';

export interface JobApplier {
  /** Turns what a webhook or a poll said about a job into at most one new event. */
  apply(job: WorkflowJobFields, repo: string, phase: JobPhase, via: ObservedVia): Promise<JobEvent | null>;
  /** Emits a completion for a job whose end could not be read (its run finished without it). */
  closeUnseen(tracked: TrackedJob, key: string): void;
}

/**
 * The one place where job observations become events: deduplicated and forward-only through the
 * tracker, marked untrusted for fork pull requests, handed to the consumer once.
 */
export function createJobApplier(options: {
  tracker: JobTracker;
  runTrust: RunTrust;
  emit: (event: JobEvent) => void;
  clock: Clock;
  logger: Logger;
  metrics: GithubMetrics;
}): JobApplier {
  const { tracker, metrics } = options;
  const log = options.logger.child({ component: 'github-jobs' });

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

  return {
    async apply(job, repo, phase, via) {
      const key = jobKey('github', job.id);
      if (!tracker.isAdvance(key, phase)) return null;
      if (phase === 'waiting') {
        tracker.advance(key, { phase, identity: null, repo, runId: job.run_id, createdAt: null });
        return null;
      }
      const known = tracker.get(key)?.identity;
      const identity = known ?? identityOf(job, repo, await options.runTrust.isUntrusted(repo, job.run_id));
      const event = eventOf(job, phase, identity, via);
      // Another observation may have moved the job on while the run was looked up.
      if (
        !event ||
        !tracker.advance(key, { phase, identity, repo, runId: job.run_id, createdAt: event.createdAt })
      ) {
        return null;
      }
      deliver(event);
      return event;
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
  };
}
