import { CoreV1Api, KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { kubeMessage, kubeStatus } from '../../src/kube/errors.ts';
import { until } from './until.ts';

export { until };

/** The kubeconfig of the run's shared cluster (see test/support/control-plane/global-setup.ts). */
export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfig'));
  return kc;
}

/**
 * Creates a namespace with a unique name and waits for its default ServiceAccount (made by the
 * controller manager; the ServiceAccount admission plugin refuses pods until it exists).
 */
export async function createTestNamespace(
  kc: KubeConfig,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const body: V1Namespace = {
    metadata: { generateName: `${prefix}-`, labels: { 'gantry.dev/test': 'true', ...labels } },
  };
  const ns = await core.createNamespace({ body });
  const name = ns.metadata?.name;
  if (!name) throw new Error('the apiserver returned a namespace without a name');
  await until(`default service account in ${name}`, async () => {
    await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
    return true;
  });
  return name;
}

export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name })
    .catch(() => {});
}

/** The status and the apiserver's message of a rejected client-node call, as Gantry reads them. */
export { kubeMessage as messageOf, kubeStatus as statusOf } from '../../src/kube/errors.ts';

/** A kubeconfig for the same cluster that authenticates with `token` alone (a ServiceAccount's). */
export function kubeConfigWithToken(kc: KubeConfig, token: string, namespace?: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the test kubeconfig has no cluster');
  const asAccount = new KubeConfig();
  asAccount.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'account', token }],
    contexts: [
      { name: 'account', cluster: cluster.name, user: 'account', ...(namespace ? { namespace } : {}) },
    ],
    currentContext: 'account',
  });
  return asAccount;
}

/** The apiserver's refusal of a request that must be refused: its status and message. */
export async function refusal(
  promise: Promise<unknown>,
): Promise<{ status: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    return { status: kubeStatus(err), message: kubeMessage(err) };
  }
  throw new Error('the request was expected to be refused but was accepted');
}
