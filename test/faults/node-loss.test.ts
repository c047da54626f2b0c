import { describe, expect, it } from 'vitest';
import { addKwokNode, cordon, deleteNode } from '../support/nodes.ts';
import { until } from '../support/until.ts';
import { runScenario } from './harness.ts';

// A node lost under busy runners, mid-burst: a fourth KWOK node takes four long jobs' runners and is
// then deleted, as a cloud's node controller deletes the Node of a machine that is gone. The
// kube-controller-manager's pod garbage collector marks those pods Failed (DisruptionTarget
// DeletionByPodGC) once its quarantine has passed and deletes them; the fake GitHub fails their jobs
// when the runner simulator sees the pods go. Gantry must count the four runners lost mid-job,
// remove their registrations, serve every other job, and leave nothing behind.

const STANDARD_NODES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2'];
const DOOMED = 'kwok-node-lost';
const LOST = 4;

describe('node faults', () => {
  it('a node deleted under busy runners mid-burst: runners counted lost, jobs served, nothing leaks', async () => {
    let detectedAfterMs = 0;
    await runScenario(
      {
        name: 'node-loss',
        fault: `a node deleted under ${LOST} busy runners mid-burst (the pod GC removes their pods)`,
        // The pod GC finds the pods 40 to 80 s after the node went; the drain waits for the last.
        completeTimeoutMs: 150_000,
      },
      async (s) => {
        await addKwokNode(s.kc, DOOMED);
        try {
          await s.startReplica();
          // The long jobs' runners land on the doomed node only: the others are cordoned meanwhile.
          await cordon(s.kc, STANDARD_NODES);
          const long = s.fake.queueJobs({
            repo: 'acme/app',
            labels: ['self-hosted', 'lint'],
            count: LOST,
            jobsPerRun: LOST,
            durationMs: 600_000,
          }).jobIds;
          s.jobs.push(...long);
          s.expectLost(long);
          await until(
            `${LOST} long jobs running on ${DOOMED}`,
            async () => long.every((id) => s.fake.job(id)?.status === 'in_progress'),
            60_000,
          );
          const onDoomed = await s.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${DOOMED}` });
          expect(onDoomed.items).toHaveLength(LOST);
          await cordon(s.kc, [DOOMED]);
          await cordon(s.kc, STANDARD_NODES, false);

          // The burst goes on on the other nodes while the doomed one goes away.
          s.queue(20);
          await s.waitForRunnerPods(LOST + 4);
          const deletedAt = Date.now();
          await deleteNode(s.kc, DOOMED);
          s.queue(6);
          await until(
            `${LOST} runners counted lost mid-job with their node`,
            async () => (await s.metric('gantry_runners_lost_total', ['reason="node-lost"'])) >= LOST,
            120_000,
            500,
          );
          detectedAfterMs = Date.now() - deletedAt;
          expect(await s.metric('gantry_runners_lost_total', ['reason="node-lost"'])).toBe(LOST);
          expect(await s.metric('gantry_runners_lost_total', ['reason="evicted"'])).toBe(0);
          await until('the lost jobs failed on GitHub', async () =>
            long.every((id) => s.fake.job(id)?.conclusion === 'failure'),
          );
          // Jobs after the loss are served as before.
          s.queue(6);
          s.notes.push(
            `${LOST} runners lost mid-job ${(detectedAfterMs / 1000).toFixed(0)} s after their node was deleted ` +
              '(the pod GC’s 40 s quarantine and 20 s period), counted node-lost; their jobs failed on GitHub',
          );
        } finally {
          await cordon(s.kc, STANDARD_NODES, false).catch(() => {});
          await deleteNode(s.kc, DOOMED);
        }
      },
    );
  });
});
