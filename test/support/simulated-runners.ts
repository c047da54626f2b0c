import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { listManaged } from './managed.ts';

/**
 * What a runner does with the fake CI service, which decides what job it takes and when that job
 * ends: each kind of service has its own. Made afresh for every look at the pods.
 */
export interface RunnerService {
  /** Its pod is Running and its JIT secret exists: the runner connects. False: not yet, try again. */
  connect(uid: string, name: string, deleting: boolean): boolean;
  /** Whether the runner's job is over (the runner then exits). */
  done(uid: string, name: string): boolean;
  /** Its pod went while the runner was at work: true if that took a job down with it. */
  lose(uid: string, name: string): boolean;
}

/**
 * Plays the runner process inside each simulated pod: KWOK runs no containers, so when a runner pod
 * is Running and its JIT secret exists (the real runner reads its config from it), the runner
 * connects to the fake service. When its job is over the runner exits: the pod is annotated
 * `kwok.gantry.dev/succeed-after: 0s` and KWOK ends it Succeeded. `service` is called at the start
 * of every look, so that it can read the fake's state once for all the pods.
 */
export function simulateRunners(kc: KubeConfig, namespaces: readonly string[], service: () => RunnerService) {
  const core = kc.makeApiClient(CoreV1Api);
  /** Pod uids whose runner connected, and pod uids whose runner exited: names can come back. */
  const connected = new Set<string>();
  const exited = new Set<string>();
  /** Pods removed while their runner was still at work (connected, not exited): killed mid-job. */
  const killedMidJob = new Set<string>();
  const lastListed = new Map<string, Set<string>>();
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  /** Every runner pod seen (by uid), with its class: what the tests count. */
  const podsSeen = new Map<string, string>();
  const podNames = new Map<string, string>();
  /** Most runner pods alive (Pending or Running) at once, per namespace. */
  const maxAlive = new Map<string, number>();
  let stopped = false;

  const loop = (async () => {
    while (!stopped) {
      const runners = service();
      for (const namespace of namespaces) {
        let live = 0;
        const answer = await listManaged(core, namespace).catch(() => undefined);
        // The apiserver did not answer (an outage): that says nothing about the pods, whose runners
        // go on; a failed list taken for an empty one would lose every runner at work.
        if (!answer) continue;
        const { pods, secrets } = answer;
        const secretNames = new Set(secrets.map((s) => s.metadata?.name));
        const listed = new Set(pods.map((p) => p.metadata?.uid ?? ''));
        for (const uid of lastListed.get(namespace) ?? []) {
          if (!listed.has(uid) && connected.has(uid) && !exited.has(uid) && !killedMidJob.has(uid)) {
            if (runners.lose(uid, podNames.get(uid) ?? '')) killedMidJob.add(uid);
          }
        }
        lastListed.set(namespace, listed);
        for (const pod of pods) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          podsSeen.set(uid, pod.metadata?.labels?.['gantry.dev/class'] ?? '');
          podNames.set(uid, name);
          const phase = pod.status?.phase;
          // What a ResourceQuota counts: pods neither finished nor being deleted.
          const deleting = pod.metadata?.deletionTimestamp !== undefined;
          if ((phase === 'Pending' || phase === 'Running') && !deleting) live++;
          if (phase !== 'Running' || connected.has(uid) || !secretNames.has(`${name}-jit`)) continue;
          if (runners.connect(uid, name, deleting)) connected.add(uid);
        }
        maxAlive.set(namespace, Math.max(maxAlive.get(namespace) ?? 0, live));
        for (const pod of pods) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          if (!connected.has(uid) || exited.has(uid) || !runners.done(uid, name)) continue;
          exited.add(uid);
          await core
            .patchNamespacedPod(
              {
                name,
                namespace,
                body: { metadata: { annotations: { 'kwok.gantry.dev/succeed-after': '0s' } } },
              },
              mergePatch,
            )
            .catch(() => exited.delete(uid));
        }
      }
      await sleep(150);
    }
  })();

  return {
    podsSeen,
    /** Every runner pod seen, by uid: its name. */
    podNames: podNames as ReadonlyMap<string, string>,
    killedMidJob,
    maxAlive: (namespace: string) => maxAlive.get(namespace) ?? 0,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
