import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { RunnerClass } from '../classes/schema.ts';
import {
  isQuotaExceeded,
  isTransientKubeError,
  kubeMessage,
  kubeReason,
  kubeRetryAfterMs,
  kubeStatus,
} from '../kube/errors.ts';
import type { CheckRunnerAction, CreateRunnerAction, DeleteRunnerAction } from '../model/action.ts';
import {
  type CheckOutcome,
  type CreateOutcome,
  type DeleteOutcome,
  RegistrationDeferredError,
  RegistrationExistsError,
  type RunnerRegistrar,
} from '../ports.ts';
import { withRetry } from '../util/retry.ts';
import { CALL_RETRIES } from '../util/schedules.ts';
import { buildJitConfigSecret, jitConfigSecretName, runnerPodOwnerReference } from './jit-config-secret.ts';
import { buildRunnerPod } from './runner-pod.ts';

export interface KubeLauncherOptions {
  core: CoreV1Api;
  registrar: RunnerRegistrar;
  logger: Logger;
  retry?: { attempts: number; baseDelayMs: number; maxDelayMs: number };
  /**
   * Told of a registration made alongside a pod create that was removed again because the pod was
   * not created (`reason`: why not), or `removed: false` when removing it failed (the sweep will).
   */
  onRegistrationDiscarded?: (discarded: {
    className: string;
    reason: DiscardReason;
    removed: boolean;
  }) => void;
}

/** Why a registration made alongside a pod create was not used. */
export type DiscardReason = 'quota-exceeded' | 'refused' | 'failed' | 'pod-exists';

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

const settled = <T>(promise: Promise<T>): Promise<Settled<T>> =>
  promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );

/**
 * Carries out the planner's runner actions against Kubernetes. Per runner it writes twice to start
 * it (the Pod, then the Secret with the JIT config, owned by the Pod so the garbage collector removes
 * it) and once to remove it. Every step is idempotent, so a retried action converges.
 *
 * The JIT config comes from the CI system after the pod was created, so that a quota refusal costs
 * no registration; or, where the caller says the quota has room to spare, during the pod's create,
 * which takes the registration's wait out of every runner's start. A registration so made for a pod
 * that was not created after all is removed at once, and reported.
 */
export function createKubeLauncher({
  core,
  registrar,
  logger,
  retry,
  onRegistrationDiscarded,
}: KubeLauncherOptions) {
  const policy = {
    ...CALL_RETRIES.kube,
    ...retry,
    isRetryable: isTransientKubeError,
    requestedDelayMs: kubeRetryAfterMs,
  };
  const log = logger.child({ component: 'launcher' });

  async function create(
    action: CreateRunnerAction,
    runnerClass: RunnerClass,
    options?: { overlapRegistration?: boolean },
  ): Promise<CreateOutcome> {
    const { runnerName: name, namespace } = action;
    const fields = { class: action.className, pod: name, namespace };
    // Never replacing a registration of the same name: one may be in use by a pod that exists.
    const early = options?.overlapRegistration
      ? settled(registrar.register(action, runnerClass, { replaceExisting: false }))
      : undefined;
    // The pod first: the quota admission judges it before any GitHub registration is spent (or, with
    // an early registration, before it is used).
    const body = buildRunnerPod(action, runnerClass);
    let podUid = '';
    let existed = false;
    let refusal: CreateOutcome | undefined;
    try {
      const created = await withRetry(() => core.createNamespacedPod({ namespace, body }), policy);
      podUid = created.metadata?.uid ?? '';
    } catch (err) {
      if (isQuotaExceeded(err)) {
        const retryAfterMs = kubeRetryAfterMs(err);
        refusal = {
          kind: 'quota-exceeded',
          message: kubeMessage(err),
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        };
      } else if (isTransientKubeError(err)) {
        refusal = { kind: 'failed', error: describe('create pod', name, err), podMayExist: true };
      } else if (kubeStatus(err) !== 409) {
        const detail = kubeReason(err) ?? String(kubeStatus(err));
        log.error(
          { ...fields, reason: detail, err: kubeMessage(err) },
          'the apiserver refused the runner pod',
        );
        refusal = { kind: 'refused', detail, message: kubeMessage(err) };
      } else {
        existed = true;
      }
    }
    if (refusal || existed) {
      // Not this create's pod: a registration made for it is not needed.
      if (early) {
        const reason: DiscardReason = refusal
          ? refusal.kind === 'quota-exceeded' || refusal.kind === 'refused'
            ? refusal.kind
            : 'failed'
          : 'pod-exists';
        await discard(action, await early, reason);
      }
      if (refusal) return refusal;
      try {
        const pod = await withRetry(() => core.readNamespacedPod({ name, namespace }), policy);
        podUid = pod.metadata?.uid ?? '';
        const secret = await secretOf(name, namespace, podUid);
        if (secret === 'own') return { kind: 'exists' };
        if (secret === 'stale') return staleSecret(name);
        // The pod exists without its secret: an earlier try stopped half-way; finish it.
      } catch (readErr) {
        return { kind: 'failed', error: describe('read pod', name, readErr), podMayExist: true };
      }
    }

    let encodedJitConfig: string;
    try {
      const made = existed ? undefined : await early;
      if (made?.ok) ({ encodedJitConfig } = made.value);
      // Registered already: an earlier runner's, as this pod is new; replaced as usual.
      else if (made && !(made.error instanceof RegistrationExistsError)) throw made.error;
      else ({ encodedJitConfig } = await registrar.register(action, runnerClass));
    } catch (err) {
      await removePod(name, namespace);
      forgetUnanswered(action, err);
      return {
        kind: 'registration-failed',
        error: describe('register runner', name, err),
        ...(err instanceof RegistrationDeferredError ? { retryAt: err.retryAt } : {}),
      };
    }
    try {
      const secret = buildJitConfigSecret(action, encodedJitConfig);
      secret.metadata = {
        ...secret.metadata,
        ownerReferences: [runnerPodOwnerReference({ name, uid: podUid })],
      };
      let conflict = false;
      await withRetry(() => core.createNamespacedSecret({ namespace, body: secret }), policy).catch(
        (err: unknown) => {
          if (kubeStatus(err) !== 409) throw err;
          conflict = true;
        },
      );
      // This pod's own from an earlier try, or an earlier pod's of the same name.
      if (conflict && (await secretOf(name, namespace, podUid)) !== 'own') return staleSecret(name);
    } catch (err) {
      // A write that timed out may still have been stored, and the runner already given a job:
      // unregister first, and keep a runner GitHub says is busy.
      const registration = await registrar.unregister(action).catch(() => 'absent' as const);
      if (registration === 'busy') {
        log.warn({ ...fields, err: kubeMessage(err) }, 'secret write failed but the runner took a job; kept');
        return { kind: 'created' };
      }
      const removed = await removePod(name, namespace);
      return {
        kind: 'failed',
        error: describe('create secret', name, err),
        ...(removed ? {} : { podMayExist: true }),
      };
    }
    log.info(
      { ...fields, reason: action.reason, repo: action.repo, job: action.jobKey },
      existed ? 'runner completed' : 'runner created',
    );
    return { kind: 'created' };
  }

  /**
   * A registration that failed without the CI system saying it made nothing (no answer in time, a
   * 5xx) may have been made all the same, for a pod that is now gone: its removal is handed to the
   * registrar, which finds nothing to remove if none was made. A rate limit sent nothing; a name
   * registered already is another runner's.
   */
  function forgetUnanswered(action: CreateRunnerAction, err: unknown): void {
    if (err instanceof RegistrationDeferredError || err instanceof RegistrationExistsError) return;
    registrar.forget(action);
  }

  /** Removes a registration made alongside a pod create that did not make the pod. */
  async function discard(action: CreateRunnerAction, made: Settled<unknown>, reason: DiscardReason) {
    if (!made.ok) {
      forgetUnanswered(action, made.error);
      return;
    }
    let removed = true;
    try {
      await registrar.unregister(action);
    } catch (err) {
      removed = false;
      log.warn(
        { class: action.className, pod: action.runnerName, reason, err: (err as Error).message },
        'could not remove a registration its pod was not created for; the runner sweep will',
      );
    }
    onRegistrationDiscarded?.({ className: action.className, reason, removed });
  }

  /**
   * Whether the runner's JIT Secret exists for the pod `podUid`. `stale`: one left by an earlier pod
   * of the same name, which the garbage collector is about to remove (it is immutable, and Gantry
   * may not delete Secrets): the create is tried again once it is gone.
   */
  async function secretOf(
    name: string,
    namespace: string,
    podUid: string,
  ): Promise<'own' | 'stale' | 'absent'> {
    try {
      const secret = await withRetry(
        () => core.readNamespacedSecret({ name: jitConfigSecretName(name), namespace }),
        policy,
      );
      return secret.metadata?.ownerReferences?.some((owner) => owner.uid === podUid) ? 'own' : 'stale';
    } catch (err) {
      if (kubeStatus(err) === 404) return 'absent';
      throw err;
    }
  }

  function staleSecret(name: string): CreateOutcome {
    const error = new Error(
      `create secret ${name}: an earlier pod's JIT Secret of that name is not collected yet`,
    );
    return { kind: 'failed', error, podMayExist: true };
  }

  /**
   * Idle and unneeded runners are unregistered first: GitHub refuses (busy) when one just took a
   * job, and then the pod is kept. Spent runners (finished, failed, stuck) go at once, and so does a
   * runner that took a job it must not run: its pod first, then its registration.
   */
  async function remove(action: DeleteRunnerAction): Promise<DeleteOutcome> {
    const { runnerName: name, namespace } = action;
    const idle =
      action.reason === 'idle-timeout' ||
      action.reason === 'class-removed' ||
      action.reason === 'placement-unsafe';
    try {
      if (idle) {
        const registration = await registrar.unregister(action);
        if (registration === 'busy') {
          log.info({ class: action.className, pod: name }, 'runner took a job before its removal; kept');
          return { kind: 'kept-busy' };
        }
      }
      await removePod(name, namespace, true);
      // A one-shot runner that ran its job and exited is gone from GitHub already: asking costs a
      // request per runner. What is left over (an exit before any job) the registration sweep finds.
      if (!idle && action.reason !== 'finished') registrar.forget(action);
      log.info({ class: action.className, pod: name, namespace, reason: action.reason }, 'runner removed');
      return { kind: 'deleted' };
    } catch (err) {
      return { kind: 'failed', error: describe('delete runner', name, err) };
    }
  }

  /** One read: a pod whose Secret is absent, or an earlier pod's, never becomes a runner. */
  async function check(action: CheckRunnerAction): Promise<CheckOutcome> {
    try {
      const secret = await secretOf(action.runnerName, action.namespace, action.podUid);
      if (secret === 'own') return { kind: 'written' };
      log.warn(
        { class: action.className, pod: action.runnerName, namespace: action.namespace, secret },
        'runner pod has no JIT Secret of its own (its create stopped half-way); it is removed',
      );
      return { kind: 'missing' };
    } catch (err) {
      return { kind: 'failed', error: describe('check runner', action.runnerName, err) };
    }
  }

  /** Whether the pod is gone (removed now, or already absent). */
  async function removePod(name: string, namespace: string, rethrow = false): Promise<boolean> {
    try {
      await withRetry(() => core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }), policy);
      return true;
    } catch (err) {
      if (kubeStatus(err) === 404) return true;
      if (rethrow) throw err;
      log.warn(
        { pod: name, namespace, err: kubeMessage(err) },
        'could not remove runner pod; the planner will retry',
      );
      return false;
    }
  }

  return { create, remove, check };
}

export type KubeLauncher = ReturnType<typeof createKubeLauncher>;

function describe(step: string, runner: string, err: unknown): Error {
  const status = kubeStatus(err);
  return new Error(`${step} ${runner}: ${status ? `${status} ` : ''}${kubeMessage(err)}`, { cause: err });
}
