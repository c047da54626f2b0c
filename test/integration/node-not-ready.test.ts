import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type GantryEnv, leftovers, runnerClass, startGantryEnv } from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { addNode, deleteNode, nodePool, silenceNode } from '../support/nodes.ts';

// A node that stops answering, on the real control plane: its kubelet (KWOK) goes silent, the node
// lifecycle controller marks it NotReady and taints it, and once the runner pods' toleration ends
// (5 s here, 300 s by default) its taint eviction marks them DisruptionTarget DeletionByTaintManager
// and deletes them gracefully. No kubelet will ever confirm that deletion, and the pod garbage
// collector leaves pods of an existing node alone: without Gantry they would stay Terminating, and
// counted against maxRunners, for as long as the node object lives. Gantry removes them itself.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const cleanup: string[] = [];
const nodes: string[] = [];
afterAll(async () => {
  await Promise.all([
    ...cleanup.map((ns) => deleteNamespace(kc, ns)),
    ...nodes.map((n) => deleteNode(kc, n)),
  ]);
});

describe('a node that stops answering mid-job', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('removes the runner pods the taint eviction leaves hanging, counts them lost, and leaks nothing', async () => {
    const pool = `silent-${Date.now().toString(36)}`;
    const silent = `gantry-${pool}`;
    nodes.push(silent);
    await addNode(kc, silent, pool);
    const placement = nodePool(pool);
    const shortToleration = (key: string) => ({
      key,
      operator: 'Exists',
      effect: 'NoExecute',
      tolerationSeconds: 5,
    });
    env = await startGantryEnv(kc, {
      namespaces: ['main'],
      classes: ({ main }) => ({
        pool: runnerClass(main as string, ['self-hosted', 'pool'], {
          maxRunners: 2,
          nodeSelector: placement.nodeSelector,
          tolerations: [
            ...placement.tolerations,
            shortToleration('node.kubernetes.io/unreachable'),
            shortToleration('node.kubernetes.io/not-ready'),
          ],
        }),
      }),
      cleanup,
    });
    const { fake, app } = env;
    const running = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'pool'],
      count: 2,
      durationMs: 600_000,
    }).jobIds;
    await until('both jobs running on the node', async () =>
      running.every((id) => fake.job(id)?.status === 'in_progress'),
    );

    const silencedAt = Date.now();
    await silenceNode(kc, silent);
    const lost = async () =>
      (await app.metrics.getSingleMetric('gantry_runners_lost_total')?.get())?.values.find(
        (v) => v.labels.class === 'pool' && v.labels.reason === 'node-lost',
      )?.value;
    await until('both runners counted lost with their node', async () => (await lost()) === 2, 120_000, 500);
    const detectedAfterMs = Date.now() - silencedAt;
    // The node lifecycle's grace period (50 s) plus the toleration (5 s) come first.
    expect(detectedAfterMs).toBeGreaterThanOrEqual(50_000);
    await until(
      'the hanging pods removed',
      async () => (await leftovers(kc, env as GantryEnv)).pods === 0,
      30_000,
    );
    // Removed by Gantry: the node still exists, so the pod garbage collector had no hand in it.
    const node = await core.readNode({ name: silent });
    expect(node.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toContain(
      'node.kubernetes.io/unreachable:NoExecute',
    );
    await until('the lost jobs failed on GitHub', async () =>
      running.every((id) => fake.job(id)?.conclusion === 'failure'),
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
