import { describe, expect, it } from 'vitest';
import { runScenario, type Scenario, SOAK } from './harness.ts';
import { pauseEtcd, restartApiserver } from './inject.ts';

// The cluster fails under Gantry: the apiserver is killed and started again with the same flags
// and ports, and etcd is frozen (SIGSTOP) and thawed. Gantry's watches must resume on their own,
// and while the apiserver is away it must wait, not hammer it.

/**
 * What Gantry sent to the apiserver in [from, to]: its API requests (by verb and resource, from
 * gantry_kube_requests_total) and the watch restarts it logged, per second.
 */
async function outageLoad(s: Scenario, before: Map<string, number>, from: number, to: number) {
  const seconds = (to - from) / 1000;
  const byKind = new Map<string, number>();
  let requests = 0;
  for (const [labels, value] of await s.samples('gantry_kube_requests_total')) {
    const delta = value - (before.get(labels) ?? 0);
    if (delta <= 0) continue;
    requests += delta;
    const verb = /verb="([^"]*)"/.exec(labels)?.[1];
    const resource = /resource="([^"]*)"/.exec(labels)?.[1];
    byKind.set(`${verb} ${resource}`, (byKind.get(`${verb} ${resource}`) ?? 0) + delta);
  }
  const watchRestarts = s.logCount('watch failed; restarting', from, to);
  const kinds = [...byKind]
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
  return {
    requestsPerSecond: requests / seconds,
    watchRestartsPerSecond: watchRestarts / seconds,
    note:
      `${seconds.toFixed(1)} s outage: ${requests} API requests, ${(requests / seconds).toFixed(1)}/s (${kinds}); ` +
      `${watchRestarts} watch restarts, ${(watchRestarts / seconds).toFixed(1)}/s for 2 watches`,
  };
}

/**
 * One replica, a burst of jobs, then `inject` (an outage while deliveries keep arriving) once runners
 * are up; returns what Gantry sent meanwhile, noted in the table, and queues jobs after it.
 */
async function burstThroughOutage(
  s: Scenario,
  inject: (whileDown: () => void) => Promise<void>,
): Promise<Awaited<ReturnType<typeof outageLoad>>> {
  await s.startReplica();
  s.queue(SOAK ? 100 : 20);
  await s.waitForRunnerPods(4);
  const requestsBefore = await s.samples('gantry_kube_requests_total');
  const from = Date.now();
  await inject(() => s.queue(SOAK ? 20 : 6));
  const load = await outageLoad(s, requestsBefore, from, Date.now());
  s.notes.push(load.note);
  // Jobs after the outage are served only if the pod watches resumed (pods must be seen to end).
  s.queue(SOAK ? 20 : 6);
  return load;
}

describe('control plane faults', () => {
  it('kube-apiserver restarted mid-burst: watches resume, no tight retry loop, every job runs', async () => {
    const downMs = SOAK ? 30_000 : 4_000;
    await runScenario(
      {
        name: 'apiserver-restart',
        fault: `kube-apiserver killed mid-burst, down ${downMs / 1000} s + its start-up, restarted`,
      },
      async (s) => {
        const load = await burstThroughOutage(s, (whileDown) => restartApiserver(s, downMs, whileDown));
        // Waiting, not hammering. A tight loop sends hundreds of requests a second; what is allowed
        // here is the lease rounds (1/s), the watches' restarts and, for each of the at most 10
        // runners wanted (two classes, 6 + 4), the launcher's four spaced attempts of each call.
        expect(load.requestsPerSecond).toBeLessThan(30);
        expect(load.watchRestartsPerSecond).toBeLessThanOrEqual(2 * 1.5);
      },
    );
  });

  it('etcd paused (SIGSTOP) mid-burst and resumed: every job runs, nothing leaks', async () => {
    const pauseMs = SOAK ? 30_000 : 6_000;
    await runScenario(
      {
        name: 'etcd-pause',
        fault: `etcd frozen (SIGSTOP) ${pauseMs / 1000} s mid-burst, then SIGCONT`,
      },
      async (s) => {
        const load = await burstThroughOutage(s, (whileDown) => pauseEtcd(pauseMs, whileDown));
        expect(load.requestsPerSecond).toBeLessThan(30);
      },
    );
  });
});
