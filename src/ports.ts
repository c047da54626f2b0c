import type { RunnerClass, RunnerClasses } from './classes/schema.ts';
import type {
  AdmitRunAction,
  CancelRunAction,
  CheckRunnerAction,
  CreateRunnerAction,
  DeleteRunnerAction,
} from './model/action.ts';
import type { EpochMillis } from './model/job.ts';

/**
 * The ports: what the reconcile loop asks of the parts that act, and what the launcher asks of a
 * CI system. The loop and the launcher depend on these, never on the implementations.
 */

/** A runner as its registration is found again: its name, class and (repo scope) repository. */
export interface RegisteredRunner {
  runnerName: string;
  className: string;
  repo?: string;
}

/** A registration of the runner's name exists already, and the caller asked not to replace it. */
export class RegistrationExistsError extends Error {
  override name = 'RegistrationExistsError';
}

/** The CI system takes no registrations before `retryAt` (a rate limit); nothing was registered. */
export class RegistrationDeferredError extends Error {
  override name = 'RegistrationDeferredError';
  readonly retryAt: EpochMillis;
  constructor(message: string, retryAt: EpochMillis, options?: ErrorOptions) {
    super(message, options);
    this.retryAt = retryAt;
  }
}

/** The CI system's side of a runner: registering it (its JIT config) and removing the registration. */
export interface RunnerRegistrar {
  /**
   * Registers the runner and returns its secret JIT config. RegistrationDeferredError says when the
   * CI system will take registrations again (a rate limit). A registration of the
   * same name is replaced (it is an earlier runner's, whose pod is gone), unless `replaceExisting` is
   * false: then RegistrationExistsError.
   */
  register(
    action: CreateRunnerAction,
    runnerClass: RunnerClass,
    options?: { replaceExisting?: boolean },
  ): Promise<{ encodedJitConfig: string }>;
  /** Removes the registration. `busy`: the CI system refused because the runner just took a job. */
  unregister(runner: RegisteredRunner): Promise<'removed' | 'busy' | 'absent'>;
  /**
   * The runner's pod is gone: remove its registration now, or once the CI system lets go of it (it
   * refuses while the runner still holds the job it lost with its pod). Never throws; works on in
   * the background.
   */
  forget(runner: RegisteredRunner): void;
}

export type CreateOutcome =
  | { kind: 'created' }
  /** The pod and its secret already existed: a retried action. */
  | { kind: 'exists' }
  /** The namespace's ResourceQuota refused the pod: a capacity signal, nothing was left behind. */
  | { kind: 'quota-exceeded'; message: string; retryAfterMs?: number }
  /**
   * The apiserver refused the pod for good (Pod Security, validation, a missing service account or
   * namespace, no permission): `detail` is its reason, `message` its words. Nothing was stored.
   */
  | { kind: 'refused'; detail: string; message: string }
  /** The CI system did not register the runner; its pod was removed again. `retryAt`: when it will. */
  | { kind: 'registration-failed'; error: Error; retryAt?: number }
  /**
   * `podMayExist`: the apiserver did not answer (or the clean-up failed), so the pod may have been
   * stored all the same; the create is idempotent and can be sent again to find out and finish it.
   */
  | { kind: 'failed'; error: Error; podMayExist?: boolean };

export type DeleteOutcome = { kind: 'deleted' } | { kind: 'kept-busy' } | { kind: 'failed'; error: Error };

/** Whether a runner's pod has its own JIT Secret; `failed`: the apiserver could not say. */
export type CheckOutcome = { kind: 'written' } | { kind: 'missing' } | { kind: 'failed'; error: Error };

export interface CreateOptions {
  /**
   * Register the runner while its pod is being created rather than after: the namespace's quota has
   * room to spare and refused nothing lately, so a refusal (which then costs a registration, removed
   * at once) is unlikely. False on retries, which must find out first what an earlier try left.
   */
  overlapRegistration: boolean;
}

export interface RunnerActuator {
  create(
    action: CreateRunnerAction,
    runnerClass: RunnerClasses[string],
    options?: CreateOptions,
  ): Promise<CreateOutcome>;
  remove(action: DeleteRunnerAction): Promise<DeleteOutcome>;
  check(action: CheckRunnerAction): Promise<CheckOutcome>;
}

/** What became of an admission or cancellation of a queued run. */
export type RunOutcome =
  /** Done as asked. */
  | { kind: 'done' }
  /** The run is no longer queued (started, cancelled or deleted by someone else): nothing to do. */
  | { kind: 'gone' }
  | { kind: 'failed'; error: Error };

/** Tekton's side: lets queued PipelineRuns start, or cancels them. */
export interface RunActuator {
  admit(action: AdmitRunAction): Promise<RunOutcome>;
  cancel(action: CancelRunAction): Promise<RunOutcome>;
}
