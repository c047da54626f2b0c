import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { until } from '../support/until.ts';
import { runScenario, SOAK } from './harness.ts';

// Gantry itself dies: a lone replica killed with SIGKILL in the middle of a burst and started again,
// and the leader of two replicas killed while the other stands by.

describe('Gantry process faults', () => {
  it('kill -9 mid-burst, then restart: the new process rebuilds from the cluster and GitHub', async () => {
    const burst = SOAK ? 120 : 24;
    await runScenario(
      { name: 'gantry-kill', fault: `kill -9 Gantry mid-burst of ${burst} jobs, restart` },
      async (s) => {
        const first = await s.startReplica();
        s.queue(burst);
        // Mid-burst: runners are being made, most jobs still wait.
        await s.waitForRunnerPods(4);
        await s.kill(first);
        // Jobs queued while no Gantry runs: their webhooks fail; the restarted poller finds them.
        s.queue(SOAK ? 20 : 5);
        await sleep(1_000);
        const second = await s.startReplica();
        s.pointWebhooksAt(second);
        s.queue(SOAK ? 20 : 5);
      },
    );
  });

  it('leader killed with two replicas running: the follower takes over within the lease duration', async () => {
    const burst = SOAK ? 120 : 24;
    await runScenario(
      { name: 'leader-kill', fault: `kill -9 the leader of 2 replicas mid-burst of ${burst} jobs` },
      async (s) => {
        await s.startReplica();
        await s.startReplica();
        const { leader, followers } = await s.leaderOf();
        const follower = followers[0];
        if (!follower) throw new Error('no follower');
        // Deliveries reach the follower, which forwards them to the leader.
        s.pointWebhooksAt(follower);
        s.queue(burst);
        await s.waitForRunnerPods(4);
        const killedAt = Date.now();
        await s.kill(leader);
        await until('the follower leads', () => follower.isLeader(), 20_000, 50);
        const takeoverMs = Date.now() - killedAt;
        s.notes.push(`takeover ${(takeoverMs / 1000).toFixed(1)} s after the kill (lease 5 s)`);
        // Lease duration plus two retry periods and some scheduling slack.
        expect(takeoverMs).toBeLessThan(5_000 + 2 * 1_000 + 2_000);
        // A new second replica, as the Deployment would start.
        await s.startReplica();
        s.queue(SOAK ? 20 : 10);
      },
    );
  });
});
