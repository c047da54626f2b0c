import type { CoreV1Api } from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, MANAGED_BY_GANTRY } from '../../src/model/keys.ts';

/** Selects what Gantry makes in a namespace: its runner pods and their JIT Secrets. */
export const MANAGED = `${LABEL_MANAGED_BY}=${MANAGED_BY_GANTRY}`;

/** The runner pods and JIT Secrets in `namespace`, listed at once. */
export async function listManaged(core: CoreV1Api, namespace: string) {
  const selector = { namespace, labelSelector: MANAGED };
  const [pods, secrets] = await Promise.all([
    core.listNamespacedPod(selector),
    core.listNamespacedSecret(selector),
  ]);
  return { pods: pods.items, secrets: secrets.items };
}
