/** What the planner asks the actuators to do. Each action is idempotent when carried out twice. */

export interface CreateRunnerAction {
  kind: 'create-runner';
  className: string;
  namespace: string;
  /** Seed of the runner's name; `runnerName` is `runnerNameFor(className, nameSeed, namePrefix)`. */
  nameSeed: string;
  runnerName: string;
  /** `github.runners.namePrefix`; absent: the default, `gantry`. */
  namePrefix?: string;
  /** The repository a repo-scoped runner registers to; absent for org-scoped runners. */
  repo?: string;
  /**
   * The waiting job this runner was planned for. GitHub may still hand the runner another job of
   * the same scope, so this says why it was created, not what it will run.
   */
  jobKey?: string;
  /** `queued-jobs`: a job waits for it; `warm-pool`: it keeps the class's minIdle. */
  reason: 'queued-jobs' | 'warm-pool';
}

export type DeleteRunnerReason =
  | 'idle-timeout'
  | 'failed'
  | 'finished'
  | 'stuck'
  /** The cluster took its pod away (node lost, evicted, OOM-killed): what is left of it is removed. */
  | 'lost'
  | 'class-removed'
  /** It took a job it must not run: stopped at once, job and all. */
  | 'trust-violation'
  /** Its class's runner group lets untrusted jobs reach it: an idle or starting runner goes. */
  | 'placement-unsafe'
  /** Its pod has no JIT Secret (a create stopped half-way, e.g. by a crash): it can never connect. */
  | 'half-made';

export interface DeleteRunnerAction {
  kind: 'delete-runner';
  className: string;
  namespace: string;
  runnerName: string;
  /** The repository a repo-scoped runner is registered to. */
  repo?: string;
  reason: DeleteRunnerReason;
}

/**
 * Looks whether a runner's JIT Secret exists for its pod. A runner whose create this run of Gantry
 * did not see through (a predecessor's, or one that ended in an error) is not counted on until then.
 */
export interface CheckRunnerAction {
  kind: 'check-runner';
  className: string;
  namespace: string;
  runnerName: string;
  /** The pod's uid: a Secret left by an earlier pod of the same name is not this one's. */
  podUid: string;
}

/** Lets a pending Tekton PipelineRun start: it now holds one slot of its class. */
export interface AdmitRunAction {
  kind: 'admit-run';
  className: string;
  /** The PipelineRun's job key. */
  runKey: string;
  repo: string;
}

/** Cancels a Tekton PipelineRun that waited in the queue longer than its class allows. */
export interface CancelRunAction {
  kind: 'cancel-run';
  className: string;
  runKey: string;
  repo: string;
  reason: 'max-queue-age';
}

export type Action =
  | CreateRunnerAction
  | DeleteRunnerAction
  | CheckRunnerAction
  | AdmitRunAction
  | CancelRunAction;
