import type { V1ResourceQuota } from '@kubernetes/client-node';
import type { QuotaLimits, QuotaResource } from '../model/ledger-snapshot.ts';
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
 * The binding limit per resource over all of a namespace's ResourceQuotas (the one with the least
 * left), CPU in millicores, memory and storage in bytes. A quota whose status the controller has not
 * computed yet says nothing; the apiserver still judges every create.
 */
export function quotaLimits(quotas: readonly V1ResourceQuota[]): QuotaLimits {
  const limits: QuotaLimits = {};
  for (const quota of quotas) {
    const hard = quota.status?.hard ?? {};
    const used = quota.status?.used ?? {};
    for (const [name, limit] of Object.entries(hard)) {
      const resource = ALIASES[name] ?? name;
      if (!TRACKED.has(resource)) continue;
      const key = resource as QuotaResource;
      const inCpu = key.endsWith('.cpu');
      const next = { hard: amount(limit, inCpu), used: amount(used[name] ?? '0', inCpu) };
      const current = limits[key];
      if (!current || next.hard - next.used < current.hard - current.used) limits[key] = next;
    }
  }
  return limits;
}

function amount(quantity: string, millicores: boolean): number {
  const value = parseQuantity(quantity) ?? 0;
  return millicores ? cpuMillicores(value) : value;
}
