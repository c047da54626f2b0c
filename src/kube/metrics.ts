import { Counter, type Registry } from 'prom-client';
import type { KubeApiOptions } from './client.ts';

/** Counts every Kubernetes API answer by verb, resource and status: the `onResponse` of createKubeApis. */
export function kubeRequestCounter(registry: Registry): NonNullable<KubeApiOptions['onResponse']> {
  const requests = new Counter({
    name: 'gantry_kube_requests_total',
    help: 'Kubernetes API requests by verb, resource and HTTP status (0: no answer).',
    labelNames: ['verb', 'resource', 'code'],
    registers: [registry],
  });
  return ({ verb, resource, code }) => requests.inc({ verb, resource, code: String(code) });
}
