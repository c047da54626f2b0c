import type { EpochMillis } from './job.ts';

/**
 * A runner pod's lifecycle as Gantry tracks it. `Requested` is Gantry's own: a create is on its way
 * and the watch has not reported the pod yet. The rest are the pod's phase.
 */
export type RunnerPhase = 'Requested' | 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** What the pod watch reports of one runner pod, reduced to what the ledger decides on. */
export interface RunnerObservation {
  /** The pod's name, which is also the runner's name on GitHub. */
  name: string;
  namespace: string;
  className: string;
  /** The repository a repo-scoped runner registers to. */
  repo?: string;
  /** The job the runner was created for; GitHub may still hand it another of the same labels. */
  plannedFor?: string;
  phase: RunnerPhase;
  /** The scheduler found no node for it (PodScheduled=False, Unschedulable): a capacity signal. */
  unschedulable?: boolean;
  createdAt: EpochMillis;
  /** When its container started running. */
  runningSince?: EpochMillis;
  /** When it stopped running: its container finished, or else its deletion began. */
  endedAt?: EpochMillis;
  /** The pod has a deletionTimestamp. */
  deleting: boolean;
  /** Why the pod failed, as the kubelet put it (DeadlineExceeded, Evicted, OOMKilled, Error…). */
  failureReason?: string;
}
