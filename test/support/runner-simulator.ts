import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { FakeGithub } from './fake-github/index.ts';

/**
 * Plays the runner process inside each simulated pod: KWOK runs no containers, so when a runner pod
 * is Running and its JIT secret exists (the real runner reads its config from it), the runner
 * "connects" to the fake GitHub, which hands it a job. When that job completes the runner exits:
 * the pod is annotated `kwok.gantry.dev/succeed-after: 0s` and KWOK ends it Succeeded.
 */
export function startRunnerSimulator(kc: KubeConfig, fake: FakeGithub, namespaces: readonly string[]) {
  const core = kc.makeApiClient(CoreV1Api);
  /** Pod uids whose runner connected, and pod uids whose runner exited: names can come back. */
  const connected = new Set<string>();
  const exited = new Set<string>();
  /** The job each connected pod's runner took, by pod uid. */
  const jobOf = new Map<string, number>();
  const connectedAt = new Map<string, number>();
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
      // A runner that connected idle is handed a job later: find it by name while its pod lives.
      const byRunner = new Map(
        fake.jobs().flatMap((job) => (job.runner ? [[job.runner.name, job] as const] : [])),
      );
      const jobDone = (uid: string, name: string) => {
        const later = byRunner.get(name);
        const id =
          jobOf.get(uid) ?? (later && later.startedAt >= (connectedAt.get(uid) ?? 0) ? later.id : undefined);
        if (id === undefined) return false;
        jobOf.set(uid, id);
        return fake.job(id)?.status === 'completed';
      };
      for (const namespace of namespaces) {
        let live = 0;
        const answer = await Promise.all([
          core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
          core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }),
        ]).catch(() => undefined);
        // The apiserver did not answer (an outage): that says nothing about the pods, whose runners
        // go on; a failed list taken for an empty one would lose every runner at work.
        if (!answer) continue;
        const [pods, secrets] = answer;
        const secretNames = new Set(secrets.items.map((s) => s.metadata?.name));
        const listed = new Set(pods.items.map((p) => p.metadata?.uid ?? ''));
        for (const uid of lastListed.get(namespace) ?? []) {
          if (!listed.has(uid) && connected.has(uid) && !exited.has(uid) && !killedMidJob.has(uid)) {
            killedMidJob.add(uid);
            // The runner process went with its pod: GitHub loses it and fails its job.
            const name = podNames.get(uid);
            if (name) fake.loseRunner(name);
          }
        }
        lastListed.set(namespace, listed);
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          podsSeen.set(uid, pod.metadata?.labels?.['gantry.dev/class'] ?? '');
          podNames.set(uid, name);
          const phase = pod.status?.phase;
          // What a ResourceQuota counts: pods neither finished nor being deleted.
          const deleting = pod.metadata?.deletionTimestamp !== undefined;
          if ((phase === 'Pending' || phase === 'Running') && !deleting) live++;
          if (phase !== 'Running' || connected.has(uid) || !secretNames.has(`${name}-jit`)) continue;
          try {
            const job = fake.startRunner(name);
            if (job !== null) jobOf.set(uid, job);
            connected.add(uid);
            connectedAt.set(uid, fake.clock.now());
          } catch {
            // Not registered on GitHub yet: try again on the next round.
          }
        }
        maxAlive.set(namespace, Math.max(maxAlive.get(namespace) ?? 0, live));
        for (const pod of pods.items) {
          const name = pod.metadata?.name ?? '';
          const uid = pod.metadata?.uid ?? '';
          if (!connected.has(uid) || exited.has(uid) || !jobDone(uid, name)) continue;
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
    /** The class of the pod that ran a job, found by the runner's name the job reports. */
    classOfRunner(name: string | undefined): string | undefined {
      for (const [uid, podName] of podNames) if (podName === name && jobOf.has(uid)) return podsSeen.get(uid);
      return undefined;
    },
    maxAlive: (namespace: string) => maxAlive.get(namespace) ?? 0,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
