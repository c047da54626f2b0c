import { consumeQuota, fitsQuota, runnerQuotaUsage } from '../classes/quota-usage.ts';
import type { RunnerClass, RunnerClasses } from '../classes/schema.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import type { EpochMillis } from '../model/job.ts';
import type { LedgerSnapshot } from '../model/ledger-snapshot.ts';

/** How long after a quota refusal a namespace counts as tight, whatever its quota's status says. */
export const QUOTA_CAUTION_MS = 60_000;

/**
 * The namespaces of `creates` whose quota, as the snapshot knows it, still has room for one more
 * runner of each class created there once all of `creates` are made, and that refused no create in
 * the last minute (or have no quota at all). There a refusal needs someone else to take the room
 * first: unlikely enough to register a runner while its pod is being created.
 */
export function quotaSlack(
  snapshot: LedgerSnapshot,
  creates: readonly CreateRunnerAction[],
  classes: RunnerClasses,
  now: EpochMillis,
): Set<string> {
  const byNamespace = new Map<string, RunnerClass[]>();
  for (const create of creates) {
    const runnerClass = classes[create.className];
    if (!runnerClass) continue;
    const list = byNamespace.get(create.namespace) ?? [];
    list.push(runnerClass);
    byNamespace.set(create.namespace, list);
  }
  const slack = new Set<string>();
  for (const [namespace, created] of byNamespace) {
    const quota = snapshot.quotas[namespace];
    if (quota?.backoffUntil !== undefined && now < quota.backoffUntil + QUOTA_CAUTION_MS) continue;
    let remaining = quota?.remaining ?? {};
    for (const runnerClass of created) remaining = consumeQuota(remaining, runnerQuotaUsage(runnerClass));
    if (created.every((runnerClass) => fitsQuota(remaining, runnerQuotaUsage(runnerClass)))) {
      slack.add(namespace);
    }
  }
  return slack;
}
