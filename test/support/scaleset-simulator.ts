import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { FakeActionsService } from './fake-actions-service/index.ts';

/**
 * Plays the runner process inside each simulated pod, for scale sets: KWOK runs no containers, so
 * when a runner pod is Running and its JIT secret exists, its runner "connects" to the fake Actions
 * service under the pod's name, which hands it the oldest job assigned to its scale set (now, or when
 * one is assigned). The job runs for the duration the test gave it (`durations`, by runnerRequestId),
 * then completes, and the runner exits: the pod is annotated `kwok.gantry.dev/succeed-after: 0s` and
 * KWOK ends it Succeeded. A pod removed while its runner holds a job loses the job (it fails).
 */
export function startScaleSetRunnerSimulator(
  kc: KubeConfig,
  actions: FakeActionsService,
  namespaces: readonly string[],
  durations: ReadonlyMap<number, number>,
  defaultDurationMs = 1_000,
) {
  const core = kc.makeApiClient(CoreV1Api);
  const connected = new Set<string>();
  const exited = new Set<string>();
  /** The job each connected pod's runner took, by pod uid, and when it took it. */
  const jobOf = new Map<string, { id: number; since: number }>();
  const killedMidJob = new Set<string>();
  const lastListed = new Map<string, Set<string>>();
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  /** Every runner pod seen (by uid), with its class. */
  const podsSeen = new Map<string, string>();
  const podNames = new Map<string, string>();
  const maxAlive = new Map<string, number>();
  /** The pod name each job ran on. */
  const ranOn = new Map<number, string>();
  let stopped = false;

  const loop = (async () => {
    while (!stopped) {
      const agents = new Map(actions.runners().map((a) => [a.name, a]));
      for (const namespace of namespaces) {
        let live = 0;
        const [pods, secrets] = await Promise.all([
          core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
          core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
        ]).catch(() => [{ items: [] }, { items: [] }] as const);
        const secretNames = new Set(secrets.items.map((s) => s.metadata?.name));
        const listed = new Set(pods.items.map((p) => p.metadata?.uid ?? ''));
        for (const uid of lastListed.get(namespace) ?? []) {
          if (!listed.has(uid) && connected.has(uid) && !exited.has(uid) && !killedMidJob.has(uid)) {
            // The job it took, even one taken since the last look.
            const id = jobOf.get(uid)?.id ?? agents.get(podNames.get(uid) ?? '')?.runnerRequestId ?? null;
            if (id !== null && actions.job(id)?.state === 'running') {
              killedMidJob.add(uid);
              ranOn.set(id, podNames.get(uid) ?? '');
              // The runner went with its pod: GitHub fails its job.
              actions.completeJob(id, 'failed');
            }
          }
        }
        lastListed.set(namespace, listed);
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          podsSeen.set(uid, pod.metadata?.labels?.['gantry.dev/class'] ?? '');
          podNames.set(uid, name);
          const phase = pod.status?.phase;
          const deleting = pod.metadata?.deletionTimestamp !== undefined;
          if ((phase === 'Pending' || phase === 'Running') && !deleting) live++;
          if (phase !== 'Running' || deleting || connected.has(uid) || !secretNames.has(`${name}-jit`))
            continue;
          if (!agents.has(name)) continue;
          actions.connectRunner(name);
          connected.add(uid);
        }
        maxAlive.set(namespace, Math.max(maxAlive.get(namespace) ?? 0, live));
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          if (!connected.has(uid) || exited.has(uid)) continue;
          let job = jobOf.get(uid);
          if (!job) {
            const taken = actions.runners().find((a) => a.name === name)?.runnerRequestId ?? null;
            if (taken === null) continue;
            job = { id: taken, since: Date.now() };
            jobOf.set(uid, job);
            ranOn.set(taken, name);
          }
          const state = actions.job(job.id)?.state;
          if (state === 'running' && Date.now() - job.since >= (durations.get(job.id) ?? defaultDurationMs)) {
            actions.completeJob(job.id);
          }
          const now = actions.job(job.id)?.state;
          if (now !== 'completed' && now !== 'canceled') continue;
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
    podNames: podNames as ReadonlyMap<string, string>,
    killedMidJob,
    /** The class of the pod a job ran on. */
    classOfJob(runnerRequestId: number): string | undefined {
      const name = ranOn.get(runnerRequestId);
      for (const [uid, podName] of podNames) if (podName === name) return podsSeen.get(uid);
      return undefined;
    },
    maxAlive: (namespace: string) => maxAlive.get(namespace) ?? 0,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
