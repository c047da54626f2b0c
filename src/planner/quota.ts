import type { RunnerClass } from '../config/classes.ts';
import type { QuotaHeadroom, QuotaResource } from '../model/ledger-snapshot.ts';
import { cpuMillicores, parseQuantity } from '../model/quantity.ts';

/** What one runner pod of a class counts against its namespace's ResourceQuota. */
export type QuotaUsage = Partial<Record<QuotaResource, number>>;

export function runnerQuotaUsage(runnerClass: RunnerClass): QuotaUsage {
  const { requests, limits } = runnerClass.resources;
  const amount = (text: string | undefined) => (text === undefined ? undefined : parseQuantity(text));
  // Kubernetes takes a missing request from the limit, and quota counts it that way.
  const requestCpu = amount(requests.cpu ?? limits.cpu);
  const limitCpu = amount(limits.cpu);
  const usage: QuotaUsage = { pods: 1 };
  if (requestCpu !== undefined) usage['requests.cpu'] = cpuMillicores(requestCpu);
  if (limitCpu !== undefined) usage['limits.cpu'] = cpuMillicores(limitCpu);
  const bytes = (key: QuotaResource, text: string | undefined) => {
    const value = amount(text);
    if (value !== undefined) usage[key] = Math.ceil(value);
  };
  bytes('requests.memory', requests.memory ?? limits.memory);
  bytes('limits.memory', limits.memory);
  bytes('requests.ephemeral-storage', requests['ephemeral-storage'] ?? limits['ephemeral-storage']);
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
