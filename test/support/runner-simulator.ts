import type { KubeConfig } from '@kubernetes/client-node';
import type { FakeGithub } from './fake-github/index.ts';
import { simulateRunners } from './simulated-runners.ts';

/**
 * Plays the runner process inside each simulated pod (see simulated-runners.ts) against the fake
 * GitHub: a runner that connects is handed a job, now or later; when that job completes the runner
 * exits. A pod removed while its runner is at work loses the runner, and GitHub fails its job.
 */
export function startRunnerSimulator(kc: KubeConfig, fake: FakeGithub, namespaces: readonly string[]) {
  /** The job each connected pod's runner took, by pod uid, and when it connected. */
  const jobOf = new Map<string, number>();
  const connectedAt = new Map<string, number>();
  const runners = simulateRunners(kc, namespaces, () => {
    // A runner that connected idle is handed a job later: find it by name while its pod lives.
    const byRunner = new Map(
      fake.jobs().flatMap((job) => (job.runner ? [[job.runner.name, job] as const] : [])),
    );
    return {
      connect(uid, name) {
        try {
          const job = fake.startRunner(name);
          if (job !== null) jobOf.set(uid, job);
          connectedAt.set(uid, fake.clock.now());
          return true;
        } catch {
          // Not registered on GitHub yet: try again on the next round.
          return false;
        }
      },
      done(uid, name) {
        const later = byRunner.get(name);
        const id =
          jobOf.get(uid) ?? (later && later.startedAt >= (connectedAt.get(uid) ?? 0) ? later.id : undefined);
        if (id === undefined) return false;
        jobOf.set(uid, id);
        return fake.job(id)?.status === 'completed';
      },
      lose(_uid, name) {
        if (name) fake.loseRunner(name);
        return true;
      },
    };
  });

  return {
    ...runners,
    /** The class of the pod that ran a job, found by the runner's name the job reports. */
    classOfRunner(name: string | undefined): string | undefined {
      for (const [uid, podName] of runners.podNames) {
        if (podName === name && jobOf.has(uid)) return runners.podsSeen.get(uid);
      }
      return undefined;
    },
  };
}
