import type { CreateRunnerAction } from '../model/action.ts';
import {
  LABEL_CLASS,
  LABEL_COMPONENT,
  LABEL_JOB,
  LABEL_MANAGED_BY,
  LABEL_REPO,
  LABEL_SOURCE,
  MANAGED_BY_GANTRY,
} from '../model/keys.ts';
import { toLabelValue } from '../model/kube-names.ts';
import { runnerNameFor } from '../model/runner-name.ts';

/** The name and labels a runner's pod and Secret share (the keys are in model/keys.ts). */

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
