import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type GantryEnv, leftovers, runnerClass, startGantryEnv } from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { addNode, deleteNode, nodePool } from '../support/nodes.ts';

// A node lost under busy runners, on the real control plane: KWOK plays the node, and this test
// deletes it as a cloud provider's node controller does once the machine is gone. Nothing marks the
// pods until the kube-controller-manager's pod garbage collector finds them bound to a node that
// no longer exists (it checks every 20 s and waits 40 s for the node to come back): it then sets
// them Failed with DisruptionTarget DeletionByPodGC and deletes them. Gantry reads that from the pods
// alone (its Role covers pods in its namespaces, no nodes), counts the runners lost mid-job, removes
// their registrations, and plans a runner for the job still queued, which waits for capacity until
// a node joins the pool, as one from an autoscaler would.

const kc = testKubeConfig();
const cleanup: string[] = [];
const nodes: string[] = [];
afterAll(async () => {
  await Promise.all([
    ...cleanup.map((ns) => deleteNamespace(kc, ns)),
    ...nodes.map((n) => deleteNode(kc, n)),
  ]);
});

describe('a node lost mid-job', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('cleans up the lost runners, counts them, and runs the queued job on the next node', async () => {
    const pool = `loss-${Date.now().toString(36)}`;
    const doomed = `gantry-${pool}-a`;
    nodes.push(doomed);
    await addNode(kc, doomed, pool);
    env = await startGantryEnv(kc, {
      namespaces: ['main'],
      classes: ({ main }) => ({
        pool: runnerClass(main as string, ['self-hosted', 'pool'], { maxRunners: 2, ...nodePool(pool) }),
      }),
      cleanup,
    });
    const { fake, app } = env;
    const metric = async (name: string, labels: Record<string, string>) =>
      (await app.metrics.getSingleMetric(name)?.get())?.values.find((v) =>
        Object.entries(labels).every(([k, l]) => v.labels[k] === l),
      )?.value;

    const running = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'pool'],
      count: 2,
      durationMs: 600_000,
    }).jobIds;
    await until('both jobs running on the doomed node', async () =>
      running.every((id) => fake.job(id)?.status === 'in_progress'),
    );
    // A third job waits: the class is at its maxRunners.
    const [waiting] = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'pool'],
      count: 1,
      durationMs: 300,
    }).jobIds;

    const deletedAt = Date.now();
    await deleteNode(kc, doomed);
    await until(
      'both runners counted lost mid-job with their node',
      async () => (await metric('gantry_runners_lost_total', { class: 'pool', reason: 'node-lost' })) === 2,
      100_000,
      500,
    );
    const detectedAfterMs = Date.now() - deletedAt;
    // The pod garbage collector's quarantine (40 s) and period (20 s) bound when anyone can know.
    expect(detectedAfterMs).toBeGreaterThanOrEqual(40_000);
    expect(detectedAfterMs).toBeLessThan(90_000);
    const messages = app.observers.status().events.map((e) => e.message);
    expect(messages.filter((m) => m.startsWith('runner lost mid-job (node-lost)'))).toHaveLength(2);
    // GitHub fails a job whose runner vanished (the fake: once the runner simulator saw its pod go).
    await until('the lost jobs failed on GitHub', async () =>
      running.every((id) => fake.job(id)?.conclusion === 'failure'),
    );

    // The job still queued gets a runner, which no node fits yet: it waits for capacity.
    await until('a runner waiting for capacity', async () =>
      (await metric('gantry_runners_waiting_for_capacity', { class: 'pool' })) === 1 ? true : undefined,
    );
    expect(fake.job(waiting ?? 0)?.status).toBe('queued');
    const joined = `gantry-${pool}-b`;
    nodes.push(joined);
    await addNode(kc, joined, pool);
    await until(
      'the queued job ran on the new node',
      async () => fake.job(waiting ?? 0)?.conclusion === 'success',
      30_000,
    );

    await until(
      'no pod, Secret or registration left',
      async () => {
        const left = await leftovers(kc, env as GantryEnv);
        return left.pods + left.secrets + left.githubRunners === 0 ? left : undefined;
      },
      60_000,
    );
  }, 200_000);
});
