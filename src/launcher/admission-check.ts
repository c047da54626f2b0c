import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { RunnerClasses } from '../classes/schema.ts';
import {
  isQuotaExceeded,
  isTransientKubeError,
  kubeMessage,
  kubeRetryAfterMs,
  kubeStatus,
} from '../kube/errors.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import { runnerNameFor } from '../model/runner-name.ts';
import { withRetry } from '../util/retry.ts';
import { CALL_RETRIES } from '../util/schedules.ts';
import { buildRunnerPod } from './runner-pod.ts';

/** A class whose runner pods the apiserver refuses, in its words. */
export interface AdmissionProblem {
  className: string;
  namespace: string;
  message: string;
}

const SEED = 'admission-check';

/**
 * Asks the apiserver whether it admits a runner pod of each GitHub class, storing nothing (a dry
 * run: every admission step runs, nothing is persisted). What only the cluster can judge, such as
 * the namespace's Pod Security level against a privileged sidecar, a service account that does not
 * exist or a namespace that is missing, shows at start with the class named, instead of as refused
 * creates once jobs wait. A quota without room, or an apiserver that does not answer, is no problem
 * of the class: it is left to the creates.
 */
export async function findAdmissionProblems(
  core: CoreV1Api,
  classes: RunnerClasses,
  logger: Logger,
): Promise<AdmissionProblem[]> {
  const policy = {
    ...CALL_RETRIES.kubeDryRun,
    isRetryable: isTransientKubeError,
    requestedDelayMs: kubeRetryAfterMs,
  };
  const checks = Object.entries(classes)
    .filter(([, runnerClass]) => runnerClass.match.github)
    .map(async ([className, runnerClass]): Promise<AdmissionProblem | undefined> => {
      const { namespace } = runnerClass;
      const action: CreateRunnerAction = {
        kind: 'create-runner',
        className,
        namespace,
        nameSeed: SEED,
        runnerName: runnerNameFor(className, SEED),
        reason: 'warm-pool',
      };
      try {
        await withRetry(
          () =>
            core.createNamespacedPod({ namespace, body: buildRunnerPod(action, runnerClass), dryRun: 'All' }),
          policy,
        );
        return undefined;
      } catch (err) {
        if (isQuotaExceeded(err) || kubeStatus(err) === 409) return undefined;
        if (isTransientKubeError(err)) {
          logger.warn(
            { class: className, namespace, err: kubeMessage(err) },
            'could not ask the apiserver whether it admits the class’s runner pods; left to the creates',
          );
          return undefined;
        }
        return { className, namespace, message: kubeMessage(err) };
      }
    });
  return (await Promise.all(checks)).filter((problem) => problem !== undefined);
}
