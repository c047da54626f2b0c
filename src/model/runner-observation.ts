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
  /** The pod's uid; absent for a create not yet reported by the watch. */
  uid?: string;
  className: string;
  /** The repository a repo-scoped runner registers to. */
  repo?: string;
  /** The job the runner was created for; GitHub may still hand it another of the same labels. */
  plannedFor?: string;
  phase: RunnerPhase;
  /** The scheduler found no node for it (PodScheduled=False, Unschedulable): a capacity signal. */
  unschedulable?: boolean;
  createdAt: EpochMillis;
  /** When the scheduler bound it to a node (PodScheduled=True). */
  scheduledAt?: EpochMillis;
  /** A container of the pod cannot start, as the kubelet reports it (an image that does not pull…). */
  startFailure?: StartFailure;
  /** The cluster took the pod away from under its runner (its node went, it was evicted or OOM-killed). */
  lost?: LostReason;
  /** When its container started running. */
  runningSince?: EpochMillis;
  /** When it stopped running: its container finished, or else its deletion began. */
  endedAt?: EpochMillis;
  /** The pod has a deletionTimestamp. */
  deleting: boolean;
  /** Why the pod failed, as the kubelet put it (DeadlineExceeded, Evicted, OOMKilled, Error…). */
  failureReason?: string;
}

/**
 * What Gantry knows of a runner's JIT Secret, without which its pod never becomes a runner:
 * - `creating`: this run of Gantry is creating the runner (pod, registration, Secret);
 * - `written`: the create went through, or a check found the Secret;
 * - `unknown`: the pod was made by an earlier run (before a restart or a takeover) or its create
 *   ended in an error: to be checked;
 * - `checking`: a check is on its way;
 * - `missing`: the pod has no Secret of its own: it is removed.
 */
export type SecretState = 'creating' | 'written' | 'unknown' | 'checking' | 'missing';

/** What the ledger knows of one runner, beyond its pod: what its health depends on. */
export interface RunnerFacts {
  observation: RunnerObservation;
  secret: SecretState;
  /** Gantry asked for its deletion. */
  deleteRequested: boolean;
  /** The job the runner took (from the source's `started`); a one-shot runner never takes another. */
  jobKey?: string;
  /** The CI system refused to remove it as busy: it took a job no event has named yet. */
  tookUnnamedJob?: boolean;
  /** It took a job it must not run and is to be stopped at once. */
  contain?: boolean;
}

/**
 * Why a runner never got running:
 * - `image-pull`: an image of the pod does not pull (ErrImagePull, ImagePullBackOff, InvalidImageName…);
 * - `container-config`: the kubelet cannot build a container from the spec (CreateContainerConfigError:
 *   a missing Secret or ConfigMap key, a root user under runAsNonRoot);
 * - `refused`: the apiserver refused the pod itself (Pod Security, validation, a missing service account).
 */
export type StartFailureReason = 'image-pull' | 'container-config' | 'refused';

export interface StartFailure {
  reason: StartFailureReason;
  /** The kubelet's or apiserver's own word for it (ErrImagePull, Forbidden…). */
  detail: string;
  /** The container concerned; absent for a refused pod. */
  container?: string;
  message?: string;
}

/**
 * How the cluster took a runner's pod away, read from the pod alone:
 * - `node-lost`: its node was deleted or stopped answering (the pod garbage collector or the taint
 *   eviction of the node lifecycle controller marked it DisruptionTarget), or shut down;
 * - `evicted`: the kubelet evicted it for node pressure, the Eviction API did (a drain), or the
 *   scheduler preempted it;
 * - `oom-killed`: the runner container ran out of memory.
 */
export type LostReason = 'node-lost' | 'evicted' | 'oom-killed';
export const LOST_REASONS: readonly LostReason[] = ['node-lost', 'evicted', 'oom-killed'];
