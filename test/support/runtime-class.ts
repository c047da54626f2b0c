import { type KubeConfig, NodeV1Api } from '@kubernetes/client-node';

/** The RuntimeClass untrusted classes name in tests and the demo. */
export const SANDBOX_RUNTIME_CLASS = 'gvisor';

/**
 * Creates the sandbox RuntimeClass unless it exists. The apiserver's RuntimeClass admission refuses
 * pods naming one that does not exist; KWOK runs no containers, so its handler is never used.
 * Resolves whether this call created it.
 */
export async function ensureSandboxRuntimeClass(kc: KubeConfig): Promise<boolean> {
  try {
    await kc
      .makeApiClient(NodeV1Api)
      .createRuntimeClass({ body: { metadata: { name: SANDBOX_RUNTIME_CLASS }, handler: 'runsc' } });
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 409) return false;
    throw err;
  }
}
