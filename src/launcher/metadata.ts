import type { CreateRunnerAction } from '../model/action.ts';
import { toLabelValue } from '../model/kube-names.ts';
import { runnerNameFor } from '../model/runner-name.ts';

/**
 * The names, labels and annotations Gantry puts on what it creates. The managed-by and component labels let
 * the ledger find every runner pod (and orphaned secret) again after a restart.
 */

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_CLASS = 'gantry.dev/class';
export const LABEL_SOURCE = 'gantry.dev/source';
/** Sanitised (`owner_name`); the exact repository is in ANNOTATION_REPO. */
export const LABEL_REPO = 'gantry.dev/repo';
/** Sanitised job key of the job the runner was planned for; the exact key is in ANNOTATION_JOB. */
export const LABEL_JOB = 'gantry.dev/job';
/** On a JIT config secret: the runner pod it belongs to. */
export const LABEL_RUNNER = 'gantry.dev/runner';

export const ANNOTATION_REPO = 'gantry.dev/repo';
export const ANNOTATION_JOB = 'gantry.dev/job';
export const ANNOTATION_NAME_SEED = 'gantry.dev/name-seed';

export const MANAGED_BY_GANTRY = 'gantry';
export const COMPONENT_RUNNER = 'runner';
export const COMPONENT_JIT_CONFIG = 'runner-jit-config';

/** Label selector for every runner pod Gantry manages. */
export const RUNNER_POD_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_GANTRY},${LABEL_COMPONENT}=${COMPONENT_RUNNER}`;
/** Label selector for every JIT config secret Gantry manages. */
export const JIT_CONFIG_SECRET_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_GANTRY},${LABEL_COMPONENT}=${COMPONENT_JIT_CONFIG}`;

/** Labels shared by a runner's pod and secret: who manages it, its class, and where known its repo and job. */
export function runnerObjectLabels(create: CreateRunnerAction, component: string): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL_MANAGED_BY]: MANAGED_BY_GANTRY,
    [LABEL_COMPONENT]: component,
    [LABEL_CLASS]: create.className,
    [LABEL_SOURCE]: 'github',
  };
  const repo = create.repo !== undefined ? toLabelValue(create.repo) : '';
  if (repo) labels[LABEL_REPO] = repo;
  const job = create.jobKey !== undefined ? toLabelValue(create.jobKey) : '';
  if (job) labels[LABEL_JOB] = job;
  return labels;
}

/** The runner's name; it must be the one its seed gives, or retried creates would not be idempotent. */
export function runnerNameOf(create: CreateRunnerAction): string {
  const expected = runnerNameFor(create.className, create.nameSeed, create.namePrefix);
  if (create.runnerName !== expected) {
    throw new Error(
      `create-runner ${create.className}: runnerName ${create.runnerName} is not the name its nameSeed gives (${expected})`,
    );
  }
  return expected;
}
