import type { RunnerClass, RunnerClasses } from '../config/classes.ts';
import { podResourceTotals } from '../config/runner-resources.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import type { EpochMillis } from '../model/job.ts';
import type { LedgerSnapshot, QuotaHeadroom, QuotaResource } from '../model/ledger-snapshot.ts';
import { cpuMillicores, parseQuantity } from '../model/quantity.ts';

/** What one runner pod of a class counts against its namespace's ResourceQuota. */
export type QuotaUsage = Partial<Record<QuotaResource, number>>;

/** Classes are parsed once and never changed: each one's usage is worked out once. */
const usageByClass = new WeakMap<RunnerClass, Readonly<QuotaUsage>>();

export function runnerQuotaUsage(runnerClass: RunnerClass): Readonly<QuotaUsage> {
  let usage = usageByClass.get(runnerClass);
  if (!usage) {
    usage = Object.freeze(computeUsage(runnerClass));
    usageByClass.set(runnerClass, usage);
  }
  return usage;
}

function computeUsage(runnerClass: RunnerClass): QuotaUsage {
  // The pod's effective amounts: init and sidecar containers and Gantry's defaults included.
  const { requests, limits } = podResourceTotals(runnerClass);
  const usage: QuotaUsage = { pods: 1 };
  if (requests.cpu !== undefined) usage['requests.cpu'] = cpuMillicores(requests.cpu);
  if (limits.cpu !== undefined) usage['limits.cpu'] = cpuMillicores(limits.cpu);
  const bytes = (key: QuotaResource, value: number | undefined) => {
    if (value !== undefined) usage[key] = Math.ceil(value);
  };
  bytes('requests.memory', requests.memory);
  bytes('limits.memory', limits.memory);
  bytes('requests.ephemeral-storage', requests['ephemeral-storage']);
  bytes('limits.ephemeral-storage', limits['ephemeral-storage']);
  const claims = runnerClass.caches.filter((cache) => cache.type === 'ephemeral');
  if (claims.length > 0) {
    usage.persistentvolumeclaims = claims.length;
    usage['requests.storage'] = claims.reduce(
      (sum, cache) => sum + Math.ceil(parseQuantity(cache.size) ?? 0),
      0,
    );
  }
  return usage;
}

/** Whether one more runner fits what the quota has left; resources the quota does not limit always fit. */
export function fitsQuota(remaining: QuotaHeadroom['remaining'], usage: QuotaUsage): boolean {
  for (const [resource, left] of Object.entries(remaining) as [QuotaResource, number][]) {
    if ((usage[resource] ?? 0) > left) return false;
  }
  return true;
}

/** The quota left after one more runner. */
export function consumeQuota(
  remaining: QuotaHeadroom['remaining'],
  usage: QuotaUsage,
): QuotaHeadroom['remaining'] {
  const next: QuotaHeadroom['remaining'] = { ...remaining };
  for (const [resource, left] of Object.entries(remaining) as [QuotaResource, number][]) {
    next[resource] = left - (usage[resource] ?? 0);
  }
  return next;
}

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
