import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { FakeGithub } from './fake-github/index.ts';

/**
 * Plays the runner process inside each simulated pod: KWOK runs no containers, so when a runner pod
 * is Running and its JIT secret exists (the real runner reads its config from it), the runner
 * "connects" to the fake GitHub, which hands it a job. The pod's exit is KWOK's, from the class's
 * `kwok.gantry.dev/succeed-after` annotation.
 */
export function startRunnerSimulator(kc: KubeConfig, fake: FakeGithub, namespaces: readonly string[]) {
  const core = kc.makeApiClient(CoreV1Api);
  const connected = new Set<string>();
  /** Every runner pod seen, with its class: what the tests count. */
  const podsSeen = new Map<string, string>();
  /** Most runner pods alive (Pending or Running) at once, per namespace. */
  const maxAlive = new Map<string, number>();
  let stopped = false;

  const loop = (async () => {
    while (!stopped) {
      for (const namespace of namespaces) {
        let live = 0;
        const [pods, secrets] = await Promise.all([
          core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
          core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
        ]).catch(() => [{ items: [] }, { items: [] }] as const);
        const secretNames = new Set(secrets.items.map((s) => s.metadata?.name));
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          podsSeen.set(name, pod.metadata?.labels?.['gantry.dev/class'] ?? '');
          const phase = pod.status?.phase;
          if (phase === 'Pending' || phase === 'Running') live++;
          if (phase !== 'Running' || connected.has(name) || !secretNames.has(`${name}-jit`)) continue;
          try {
            fake.startRunner(name);
            connected.add(name);
          } catch {
            // Not registered on GitHub yet: try again on the next round.
          }
        }
        maxAlive.set(namespace, Math.max(maxAlive.get(namespace) ?? 0, live));
      }
      await sleep(150);
    }
  })();

  return {
    podsSeen,
    connected,
    maxAlive: (namespace: string) => maxAlive.get(namespace) ?? 0,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
