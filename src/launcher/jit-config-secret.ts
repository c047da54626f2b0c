import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import type { CreateRunnerAction } from '../model/action.ts';
import { COMPONENT_JIT_CONFIG, LABEL_RUNNER } from '../model/keys.ts';
import { runnerNameOf, runnerObjectLabels } from './runner-labels.ts';

/**
 * The Secret holding a runner's JIT config (GitHub's `encoded_jit_config`), which its pod receives as
 * ACTIONS_RUNNER_INPUT_JITCONFIG. It is written after the pod (the quota judges the pod before a
 * registration is spent), owned by it through `runnerPodOwnerReference`, so Kubernetes deletes it
 * with the pod.
 */

/** The Secret key holding the encoded JIT config. */
export const JIT_CONFIG_KEY = 'jitConfig';

export function jitConfigSecretName(runnerName: string): string {
  return `${runnerName}-jit`;
}

export function buildJitConfigSecret(create: CreateRunnerAction, encodedJitConfig: string): V1Secret {
  if (encodedJitConfig.trim() === '') {
    throw new Error('encodedJitConfig: expected the non-empty encoded_jit_config GitHub returned');
  }
  const runnerName = runnerNameOf(create);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: jitConfigSecretName(runnerName),
      namespace: create.namespace,
      labels: { ...runnerObjectLabels(create, COMPONENT_JIT_CONFIG), [LABEL_RUNNER]: runnerName },
    },
    type: 'Opaque',
    // The config is single-use; a new runner gets a new secret, never an edited one.
    immutable: true,
    data: { [JIT_CONFIG_KEY]: Buffer.from(encodedJitConfig, 'utf8').toString('base64') },
  };
}

/** The owner reference that ties a JIT config secret to its runner pod, given the created pod. */
export function runnerPodOwnerReference(pod: { name: string; uid: string }): V1OwnerReference {
  if (!pod.name || !pod.uid) {
    throw new Error('runnerPodOwnerReference: expected the created pod’s name and uid');
  }
  // blockOwnerDeletion would need update rights on pods/finalizers, and nothing waits on the secret.
  return { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid, blockOwnerDeletion: false };
}
