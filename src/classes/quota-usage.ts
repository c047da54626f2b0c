import type { QuotaHeadroom, QuotaResource } from '../model/ledger-snapshot.ts';
import { cpuMillicores, parseQuantity } from '../model/quantity.ts';
import { podResourceTotals } from './runner-resources.ts';
import type { RunnerClass } from './schema.ts';

/** What one runner pod of a class counts against its namespace's ResourceQuota. */
export type QuotaUsage = Partial<Record<QuotaResource, number>>;

/** A class's usage is asked for per runner on every snapshot; its quantities are parsed once, and no caller can change them. */
const usageByClass = new WeakMap<RunnerClass, Readonly<QuotaUsage>>();

export function runnerQuotaUsage(runnerClass: RunnerClass): Readonly<QuotaUsage> {
  const known = usageByClass.get(runnerClass);
  if (known) return known;
  const usage = Object.freeze(computeUsage(runnerClass));
  usageByClass.set(runnerClass, usage);
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
