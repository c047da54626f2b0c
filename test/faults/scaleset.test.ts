import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { scaleSetOf } from '../support/scaleset-fakes.ts';
import { until } from '../support/until.ts';
import { openStraySession, runScaleSetScenario } from './scaleset-harness.ts';

// The fault suite's scenarios that apply to scale-set mode: Gantry killed mid-burst, the leader
// killed, the Actions service failing (5xx) and slow, a session held by someone else, and messages
// read again (new sessions mid-burst, acknowledgements lost).

describe('scale-set mode under faults', () => {
  it('kill -9 mid-burst, then restart: the kept messages and the cluster rebuild the state', async () => {
    await runScaleSetScenario(
      { name: 'ss-gantry-kill', fault: 'scale sets: kill -9 Gantry mid-burst of 24 jobs, restart' },
      async (s) => {
        const first = await s.startReplica();
        await s.waitForSessions('gantry-a');
        s.queue(24);
        await s.waitForRunnerPods(4);
        await s.kill(first);
        // Jobs assigned while no Gantry listens wait in the service's queue.
        s.queue(5);
        await sleep(1_000);
        await s.startReplica();
        // The killed process's sessions stay until the service ends them (10 s unpolled here).
        const waitedMs = await s.waitForSessions('gantry-b');
        s.notes.push(
          `sessions held again ${(waitedMs / 1000).toFixed(1)} s after the restart (stale ones end after 10 s)`,
        );
        s.queue(5);
      },
    );
  });

  it('leader killed with two replicas running: the follower takes the sessions over', async () => {
    await runScaleSetScenario(
      { name: 'ss-leader-kill', fault: 'scale sets: kill -9 the leader of 2 replicas mid-burst of 24 jobs' },
      async (s) => {
        await s.startReplica();
        await s.startReplica();
        const { leader, followers } = await s.leaderOf();
        const follower = followers[0];
        if (!follower) throw new Error('no follower');
        await s.waitForSessions(leader.name);
        // Only the leader holds sessions: the follower never asked for one.
        expect(await follower.metric('gantry_scaleset_session_conflicts_total')).toBe(0);
        s.queue(24);
        await s.waitForRunnerPods(4);
        const killedAt = Date.now();
        await s.kill(leader);
        await until('the follower leads', () => follower.isLeader(), 20_000, 50);
        await s.waitForSessions(follower.name);
        s.notes.push(
          `follower held every session ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (lease 5 s, stale sessions end after 10 s unpolled)`,
        );
        await s.startReplica();
        s.queue(10);
      },
    );
  });

  it('the Actions service answers 5xx for 8 s, then is slower than the timeout for 6 s', async () => {
    await runScaleSetScenario(
      {
        name: 'ss-broker-faults',
        fault: 'scale sets: Actions service 5xx for 8 s, then 4 s latency for 6 s',
      },
      async (s) => {
        await s.startReplica();
        await s.waitForSessions();
        s.queue(12);
        await s.waitForRunnerPods(2);
        const until5xx = Date.now() + 8_000;
        while (Date.now() < until5xx) {
          s.fakes.actions.faults.serverErrors = 1_000;
          s.queue(1);
          await sleep(1_000);
        }
        s.fakes.actions.faults.serverErrors = 0;
        s.fakes.actions.faults.latencyMs = 4_000;
        s.queue(6);
        await sleep(6_000);
        s.fakes.actions.faults.latencyMs = 0;
        s.queue(6);
      },
    );
  });

  it('a session someone else holds: Gantry waits out the 409s, then takes the scale set', async () => {
    await runScaleSetScenario(
      {
        name: 'ss-session-conflict',
        fault: 'scale sets: another listener holds the lint session (409s) until it ends',
      },
      async (s) => {
        const replica = await s.startReplica();
        await s.waitForSessions();
        // Gantry lets go (a rolling restart), a stray listener gets in first, Gantry comes back.
        await s.terminate(replica);
        const closeStray = await openStraySession(s.fakes, scaleSetOf(s.fakes, 'lint').id);
        s.queue(10);
        const second = await s.startReplica();
        await until(
          '409s counted',
          async () => (await second.metric('gantry_scaleset_session_conflicts_total')) > 0,
          30_000,
        );
        await sleep(3_000);
        const lint = scaleSetOf(s.fakes, 'lint').id;
        expect(s.fakes.actions.sessions(lint).map((x) => x.ownerName)).toEqual(['stray-listener']);
        await closeStray();
        await s.waitForSessions(second.name);
        s.queue(10);
      },
    );
  });

  it('messages read again: sessions dropped mid-burst and acknowledgements lost, nothing launched twice', async () => {
    await runScaleSetScenario(
      {
        name: 'ss-redelivery',
        fault: 'scale sets: every session dropped 3 times mid-burst (kept messages read again)',
      },
      async (s) => {
        await s.startReplica();
        await s.waitForSessions();
        s.queue(24);
        await s.waitForRunnerPods(3);
        for (let i = 0; i < 3; i++) {
          for (const set of s.fakes.actions.scaleSets()) s.fakes.actions.dropSession(set.id);
          await sleep(2_000);
        }
        s.queue(6);
        await until('the burst done', async () => s.unfinished().length === 0, 120_000, 250);
        // One runner pod per job at most: a message read again launched nothing twice.
        s.notes.push(`${s.podsSeen()} runner pods for ${s.jobs.length} jobs`);
        expect(s.podsSeen()).toBeLessThanOrEqual(s.jobs.length);
        const redelivered = await s.metric('gantry_scaleset_messages_total', ['result="redelivered"']);
        s.notes.push(`${redelivered} messages read again`);
      },
    );
  });
});
