import { CoreV1Api, KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { inject } from 'vitest';
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

/** The HTTP status of a rejected client-node call (its ApiException), or undefined. */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number'
    ? err.code
    : undefined;
}

/** The message body of a rejected client-node call, for asserting what the apiserver said. */
export function messageOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'body' in err) {
    const body = (err as { body: unknown }).body;
    if (typeof body === 'string') {
      try {
        return (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {
        return body;
      }
    }
  }
  return String(err);
}
