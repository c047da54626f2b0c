import { LRUCache } from 'lru-cache';
import type { JobIdentity } from '../../model/job.ts';
import { type JobPhase, PHASE_ORDER } from './workflow-job.ts';

export interface TrackedJob {
  phase: JobPhase;
  /** Null while the job only waits for approval (no identity was needed yet). */
  identity: JobIdentity | null;
  repo: string;
  runId: number;
  /** When the job was created (epoch ms), null while only waiting was seen. */
  createdAt: number | null;
}

export interface RunRef {
  repo: string;
  runId: number;
}

/**
 * What the source has already said about each job, so webhooks, redeliveries and polls that report
 * the same job emit each transition once, and only forwards (a late `queued` after `in_progress` is
 * stale). Bounded: the oldest jobs are forgotten first.
 */
export class JobTracker {
  readonly #jobs: LRUCache<string, TrackedJob>;
  /** Last webhook per run (epoch ms): the poller leaves runs that webhooks keep current to them. */
  readonly #runWebhooks: LRUCache<number, number>;

  constructor(maxJobs = 50_000) {
    this.#jobs = new LRUCache({ max: maxJobs });
    this.#runWebhooks = new LRUCache({ max: maxJobs });
  }

  get(key: string): TrackedJob | undefined {
    return this.#jobs.get(key);
  }

  /** Whether moving `key` to `phase` is news. */
  isAdvance(key: string, phase: JobPhase): boolean {
    const known = this.#jobs.get(key);
    return !known || PHASE_ORDER[phase] > PHASE_ORDER[known.phase];
  }

  /** Records the transition; returns false (and records nothing) when it is not news. */
  advance(key: string, entry: TrackedJob): boolean {
    if (!this.isAdvance(key, entry.phase)) return false;
    this.#jobs.set(key, entry);
    return true;
  }

  noteWebhook(runId: number, nowMs: number): void {
    this.#runWebhooks.set(runId, nowMs);
  }

  lastWebhookAt(runId: number): number | undefined {
    return this.#runWebhooks.get(runId);
  }

  /** Runs with a job Gantry believes queued or running: the poller confirms how they ended. */
  openRuns(): RunRef[] {
    const runs = new Map<number, RunRef>();
    for (const job of this.#jobs.values()) {
      if (job.phase === 'queued' || job.phase === 'started')
        runs.set(job.runId, { repo: job.repo, runId: job.runId });
    }
    return [...runs.values()];
  }

  /** The jobs of a run that Gantry believes queued or running, with their keys. */
  openJobsOf(runId: number): { key: string; job: TrackedJob }[] {
    const open: { key: string; job: TrackedJob }[] = [];
    for (const [key, job] of this.#jobs.entries()) {
      if (job.runId === runId && (job.phase === 'queued' || job.phase === 'started')) open.push({ key, job });
    }
    return open;
  }
}
