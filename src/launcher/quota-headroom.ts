import type { V1ResourceQuota } from '@kubernetes/client-node';
import type { QuotaHeadroom, QuotaResource } from '../model/ledger-snapshot.ts';
import { cpuMillicores, parseQuantity } from '../model/quantity.ts';

const TRACKED: ReadonlySet<string> = new Set<QuotaResource>([
  'pods',
  'requests.cpu',
  'limits.cpu',
  'requests.memory',
  'limits.memory',
  'requests.ephemeral-storage',
  'limits.ephemeral-storage',
  'persistentvolumeclaims',
  'requests.storage',
]);
/** In a quota spec, `cpu` and `memory` mean their requests. */
const ALIASES: Readonly<Record<string, QuotaResource>> = { cpu: 'requests.cpu', memory: 'requests.memory' };

/**
 * What the namespace's ResourceQuotas still allow: per resource, the smallest `hard - used` over all
 * quotas (CPU in millicores, memory and storage in bytes). A quota whose status the controller has
 * not computed yet says nothing; the apiserver will still judge every create.
 */
export function quotaHeadroom(quotas: readonly V1ResourceQuota[]): QuotaHeadroom['remaining'] {
  const remaining: Partial<Record<QuotaResource, number>> = {};
  for (const quota of quotas) {
    const hard = quota.status?.hard ?? {};
    const used = quota.status?.used ?? {};
    for (const [name, limit] of Object.entries(hard)) {
      const resource = ALIASES[name] ?? name;
      if (!TRACKED.has(resource)) continue;
      const key = resource as QuotaResource;
      const inCpu = key.endsWith('.cpu');
      const left = amount(limit, inCpu) - amount(used[name] ?? '0', inCpu);
      remaining[key] = Math.min(remaining[key] ?? Number.POSITIVE_INFINITY, Math.max(0, left));
    }
  }
  return remaining;
}

function amount(quantity: string, millicores: boolean): number {
  const value = parseQuantity(quantity) ?? 0;
  return millicores ? cpuMillicores(value) : value;
}
