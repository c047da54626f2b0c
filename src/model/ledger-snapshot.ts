import type { EpochMillis, JobIdentity, JobSourceName } from './job.ts';
import type { LostReason, RunnerFacts } from './runner-observation.ts';

/**
 * What the planner sees of the ledger at one instant: per class, the demand still waiting and the
 * supply that exists. Plain data, so a snapshot can be built in a test or a benchmark by hand.
 */

/** What the classifier needs to know about a job; a subset of the job identity every source reports. */
export type ClassifiableJob = Pick<
  JobIdentity,
  'source' | 'labels' | 'untrusted' | 'origin' | 'tektonLabels' | 'tektonNamespace' | 'requestedClass'
>;

/** A job (GitHub) or PipelineRun (Tekton) classified into a class and not yet assigned a runner. */
export interface QueuedJob {
  /** The job's stable key (`JobIdentity.key`). */
  key: string;
  source: JobSourceName;
  /** `owner/name` for GitHub; for Tekton the PipelineRun's namespace. Fairness shares capacity per repo. */
  repo: string;
  queuedAt: EpochMillis;
}

/**
 * - `starting`: created (or requested and not yet seen by the watch), not yet registered;
 * - `idle`: registered and waiting for a job;
 * - `busy`: running a job;
 * - `terminating`: being deleted;
 * - `failed`: the pod failed, a container of it cannot start, the cluster took it away (`lost`), or
 *   it has no JIT Secret (`halfMade`: its create stopped between the pod and the Secret);
 * - `finished`: the one-shot runner's pod ended after its job; only its removal is left;
 * - `stuck`: starting (or waiting for capacity) or busy for longer than the ledger allows;
 * - `compromised`: it took a job it must not run (an untrusted job on a trusted runner): stop it now.
 */
export type RunnerState =
  | 'starting'
  | 'idle'
  | 'busy'
  | 'terminating'
  | 'failed'
  | 'finished'
  | 'stuck'
  | 'compromised';

export interface RunnerView {
  /** The pod name, which is also the runner's name. */
  name: string;
  namespace: string;
  state: RunnerState;
  createdAt: EpochMillis;
  /** When the runner became idle; `createdAt` is used when absent. */
  idleSince?: EpochMillis;
  /** The repository a repo-scoped runner is registered to. */
  repo?: string;
  /** The job a busy runner serves. */
  jobKey?: string;
  /** The job the runner was created for (a warm-pool runner has none). */
  plannedFor?: string;
  /** A failed runner the cluster took away (its node went, eviction, OOM kill). */
  lost?: LostReason;
  /** A failed runner whose pod has no JIT Secret: it can never connect. */
  halfMade?: boolean;
  /** A starting runner the scheduler found no node for yet. */
  waitingForCapacity?: boolean;
  /**
   * A starting or idle runner whose JIT Secret Gantry has not seen written: its create was another
   * run's (before a restart or a takeover) or ended in an error. A pod without its Secret never
   * becomes a runner, so the planner has it checked.
   */
  unconfirmed?: boolean;
  /** The pod's uid, for an unconfirmed runner's check. */
  podUid?: string;
}

/**
 * The health rules the ledger applies when it projects a snapshot (planner/runner-health.ts): a
 * runner's state from its facts and the clock, and the class-wide rule for idle runners no job takes.
 */
export interface RunnerHealth {
  of(
    facts: RunnerFacts,
    activeDeadlineSeconds: number | undefined,
    now: EpochMillis,
  ): Pick<
    RunnerView,
    'state' | 'idleSince' | 'jobKey' | 'lost' | 'waitingForCapacity' | 'halfMade' | 'unconfirmed' | 'podUid'
  >;
  markIdleWhileJobsWait(found: { queued: QueuedJob[]; runners: RunnerView[] }, now: EpochMillis): void;
}

/** A Tekton PipelineRun Gantry admitted that has not finished: it holds one slot of its class. */
export interface AdmittedRun {
  key: string;
  /** The PipelineRun's namespace, the Tekton counterpart of a repository. */
  repo: string;
}

/**
 * Resource names a namespace ResourceQuota can limit that runner pods consume. `cpu` and `memory`
 * in a quota spec mean `requests.cpu` and `requests.memory`; the ledger reports them under those names.
 */
export type QuotaResource =
  | 'pods'
  | 'requests.cpu'
  | 'limits.cpu'
  | 'requests.memory'
  | 'limits.memory'
  | 'requests.ephemeral-storage'
  | 'limits.ephemeral-storage'
  | 'persistentvolumeclaims'
  | 'requests.storage';

/** A namespace's quota per resource: the limit and what the quota controller counts as used. */
export type QuotaLimits = Partial<Record<QuotaResource, { hard: number; used: number }>>;

/** What a namespace's ResourceQuota still allows, as far as the ledger knows. */
export interface QuotaHeadroom {
  /** Remaining amount per limited resource: CPU in millicores, memory and storage in bytes, others counts. */
  remaining: Partial<Record<QuotaResource, number>>;
  /** Set after the apiserver refused a create for quota: create nothing in this namespace before then. */
  backoffUntil?: EpochMillis;
}

/** Token-bucket state of a class's creation rate; absent means a full bucket. */
export interface CreationBudget {
  tokens: number;
  at: EpochMillis;
}

export interface ClassSnapshot {
  queued: readonly QueuedJob[];
  /**
   * Every runner pod of the class, in any state. Runners the actuator has been asked to create but the
   * watch has not reported yet belong here as `starting`, so they are not planned a second time.
   */
  runners: readonly RunnerView[];
  /** Tekton runs admitted into this class and still running. */
  admittedRuns: readonly AdmittedRun[];
  budget?: CreationBudget;
  /** Registering the class's runners failed, or they failed to start: no new runner before this time. */
  creationsHeldUntil?: EpochMillis;
  /**
   * The class's runners failed to start (an image that does not pull…) and none has run since: after
   * the hold, one runner starts at a time until one runs, rather than a pod per waiting job.
   */
  startsFailing?: boolean;
  /** Set while the class's placement on GitHub's side is not known to be safe (see PlacementHold). */
  placement?: PlacementHold;
}

/**
 * Why a class's runners are held back on account of its runner group:
 * - `unsafe`: the group lets untrusted jobs reach its runners (a check after start found it): no new
 *   runner, and idle and starting ones go;
 * - `unknown`: the group could not be read yet (GitHub unreachable at start): no new runner.
 */
export type PlacementHold = 'unsafe' | 'unknown';

export interface LedgerSnapshot {
  /** Keyed by class name. A class missing here has no demand and no runners. */
  classes: Readonly<Record<string, ClassSnapshot>>;
  /** Keyed by namespace. A namespace missing here has no known quota. */
  quotas: Readonly<Record<string, QuotaHeadroom>>;
  /**
   * Names of runners whose pods are gone, recently. A new runner never takes one: GitHub may still
   * hold that runner's registration (busy or offline) and events naming it, and its Secret may not
   * be collected yet.
   */
  retiredNames?: { has(name: string): boolean };
  /** How new runners are named; absent: the default prefix and no generation. */
  naming?: RunnerNaming;
}

export interface RunnerNaming {
  /** `github.runners.namePrefix`: GitHub and the cluster see runners under it. */
  prefix: string;
  /**
   * A token of this run of Gantry, mixed into every name seed: names of retired runners are
   * remembered only while Gantry runs, so a restarted one must not produce them again.
   */
  generation: string;
}
