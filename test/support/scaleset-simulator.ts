import type { KubeConfig } from '@kubernetes/client-node';
import type { FakeActionsService } from './fake-actions-service/index.ts';
import { simulateRunners } from './simulated-runners.ts';

/**
 * Plays the runner process inside each simulated pod (see simulated-runners.ts), for scale sets: its
 * runner connects to the fake Actions service under the pod's name, which hands it the oldest job
 * assigned to its scale set (now, or when one is assigned). The job runs for the duration the test
 * gave it (`durations`, by runnerRequestId), then completes, and the runner exits. A pod removed
 * while its runner holds a job loses the job (it fails).
 */
export function startScaleSetRunnerSimulator(
  kc: KubeConfig,
  actions: FakeActionsService,
  namespaces: readonly string[],
  durations: ReadonlyMap<number, number>,
  defaultDurationMs = 1_000,
) {
  /** The job each connected pod's runner took, by pod uid, and when it took it. */
  const jobOf = new Map<string, { id: number; since: number }>();
  /** The pod name each job ran on. */
  const ranOn = new Map<number, string>();
  const runners = simulateRunners(kc, namespaces, () => {
    const agents = new Map(actions.runners().map((a) => [a.name, a]));
    return {
      connect(_uid, name, deleting) {
        if (deleting || !agents.has(name)) return false;
        actions.connectRunner(name);
        return true;
      },
      done(uid, name) {
        let job = jobOf.get(uid);
        if (!job) {
          const taken = actions.runners().find((a) => a.name === name)?.runnerRequestId ?? null;
          if (taken === null) return false;
          job = { id: taken, since: Date.now() };
          jobOf.set(uid, job);
          ranOn.set(taken, name);
        }
        const state = actions.job(job.id)?.state;
        if (state === 'running' && Date.now() - job.since >= (durations.get(job.id) ?? defaultDurationMs)) {
          actions.completeJob(job.id);
        }
        const now = actions.job(job.id)?.state;
        return now === 'completed' || now === 'canceled';
      },
      lose(uid, name) {
        // The job it took, even one taken since the last look.
        const id = jobOf.get(uid)?.id ?? agents.get(name)?.runnerRequestId ?? null;
        if (id === null || actions.job(id)?.state !== 'running') return false;
        ranOn.set(id, name);
        // The runner went with its pod: GitHub fails its job.
        actions.completeJob(id, 'failed');
        return true;
      },
    };
  });

  return {
    ...runners,
    /** The class of the pod a job ran on. */
    classOfJob(runnerRequestId: number): string | undefined {
      const name = ranOn.get(runnerRequestId);
      for (const [uid, podName] of runners.podNames) if (podName === name) return runners.podsSeen.get(uid);
      return undefined;
    },
  };
}
