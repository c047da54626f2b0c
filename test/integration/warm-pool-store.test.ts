import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKubeApis } from '../../src/kube/client.ts';
import { ArrivalHistory } from '../../src/warm-pool/history.ts';
import { createWarmPoolStore, WARM_POOL_DATA_KEY } from '../../src/warm-pool/store.ts';
import { applyAll, type ChartObject, manifests, objectsOfKind, render } from '../support/chart.ts';
import { runnerClass, startGantryEnv } from '../support/gantry-env.ts';
import {
  createTestNamespace,
  deleteNamespace,
  kubeConfigWithToken,
  refusal,
  testKubeConfig,
  until,
} from '../support/kube.ts';

// What warm pools learned is kept in one ConfigMap across restarts. Against the real apiserver, with a
// token of the chart's ServiceAccount: the chart's Role lets Gantry create that ConfigMap, read it and
// rewrite it, and nothing else on ConfigMaps.

const kc = testKubeConfig();
const admin = kc.makeApiClient(CoreV1Api);
const toDelete: string[] = [];
const HOUR = 3_600_000;
const MONDAY = Date.UTC(2026, 0, 5);

afterAll(async () => {
  await Promise.all(toDelete.map((ns) => deleteNamespace(kc, ns)));
});

function learned(jobs: number) {
  const history = new ArrivalHistory();
  history.observeFrom(MONDAY + 9 * HOUR);
  for (let i = 0; i < jobs; i++) history.noteJob('lint', MONDAY + 9 * HOUR + i * 1_000, `run-${i}`);
  history.roll(MONDAY + 10 * HOUR);
  return history.toJSON();
}

describe('warm-pool state in its ConfigMap, with the chart’s RBAC', () => {
  let release: string;
  let gantryCore: CoreV1Api;
  let asGantry: KubeConfig;
  const configMap = 'gantry-warm-pools';

  beforeAll(async () => {
    release = await createTestNamespace(kc, 'warm-pools', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    toDelete.push(release);
    const runners = `warm-pools-runners-${randomBytes(3).toString('hex')}`;
    toDelete.push(runners);
    const objects = manifests(
      render({
        namespace: release,
        values: {
          replicaCount: 1,
          config: {
            classes: {
              lint: {
                namespace: runners,
                match: { github: { labels: ['self-hosted', 'lint'] } },
                warmPool: { queueTimeObjective: { p95: '30s' } },
              },
            },
          },
        },
      }),
    );
    const roles = objectsOfKind(objects, 'Role').filter(
      (r) => r.metadata.namespace === release,
    ) as (ChartObject & {
      rules: { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    })[];
    // The only rights on ConfigMaps the chart grants: this one's.
    expect(roles.flatMap((r) => r.rules.filter((rule) => rule.resources.includes('configmaps')))).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: [configMap], verbs: ['get', 'update'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
    ]);
    applyAll(
      inject('kubeconfig'),
      objects.filter((object) => object.kind !== 'Deployment'),
      'gantry-chart-test',
    );
    const [account] = objectsOfKind(objects, 'ServiceAccount');
    const token = (
      await admin.createNamespacedServiceAccountToken({
        name: account?.metadata.name ?? '',
        namespace: release,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      })
    ).status?.token;
    if (!token) throw new Error('the TokenRequest returned no token');
    asGantry = kubeConfigWithToken(kc, token);
    gantryCore = asGantry.makeApiClient(CoreV1Api);
  });

  it('creates it, reads it back, and rewrites it, as the leader does', async () => {
    const store = createWarmPoolStore({
      core: createKubeApis(asGantry, { timeoutMs: 5_000 }).core,
      namespace: release,
      name: configMap,
      logger: pino({ level: 'silent' }),
    });
    expect(await store.load()).toBeUndefined();
    await store.save(learned(30));
    const first = await admin.readNamespacedConfigMap({ name: configMap, namespace: release });
    expect(first.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('gantry');
    expect(JSON.parse(first.data?.[WARM_POOL_DATA_KEY] ?? '{}').classes.lint.jobsPerHour[9]).toBe(30);

    // A restart: a new store (a new replica) reads what the last one wrote.
    const restarted = createWarmPoolStore({
      core: createKubeApis(asGantry, { timeoutMs: 5_000 }).core,
      namespace: release,
      name: configMap,
      logger: pino({ level: 'silent' }),
    });
    const loaded = await restarted.load();
    expect(loaded?.classes.lint?.jobsPerHour[9]).toBe(30);
    expect(new ArrivalHistory(loaded).jobsPerHour('lint', 9)).toBe(30);
    await restarted.save(learned(45));

    // The first writer's version is stale now: its next write reads the current one and wins.
    await store.save(learned(60));
    const last = await admin.readNamespacedConfigMap({ name: configMap, namespace: release });
    expect(JSON.parse(last.data?.[WARM_POOL_DATA_KEY] ?? '{}').classes.lint.jobsPerHour[9]).toBe(60);
    expect(Number(last.metadata?.resourceVersion)).toBeGreaterThan(Number(first.metadata?.resourceVersion));

    // Removed by someone: written afresh.
    await admin.deleteNamespacedConfigMap({ name: configMap, namespace: release });
    await store.save(learned(12));
    expect((await restarted.load())?.classes.lint?.jobsPerHour[9]).toBe(12);
  });

  it('learns afresh from a state it cannot read, rather than failing', async () => {
    const name = 'gantry-warm-pools';
    // A state of another version (written by a later Gantry, say).
    const body = { metadata: { name }, data: { [WARM_POOL_DATA_KEY]: '{"version":9}' } };
    await admin
      .replaceNamespacedConfigMap({ name, namespace: release, body })
      .catch(() => admin.createNamespacedConfigMap({ namespace: release, body }));
    const store = createWarmPoolStore({
      core: createKubeApis(asGantry, { timeoutMs: 5_000 }).core,
      namespace: release,
      name,
      logger: pino({ level: 'silent' }),
    });
    expect(await store.load()).toBeUndefined();
    await store.save(learned(7));
    expect((await store.load())?.classes.lint?.jobsPerHour[9]).toBe(7);
  });

  it('is refused every other ConfigMap right', async () => {
    await admin.createNamespacedConfigMap({
      namespace: release,
      body: { metadata: { name: 'someone-elses' }, data: { a: 'b' } },
    });
    const cases: [string, () => Promise<unknown>, string][] = [
      [
        'read another ConfigMap',
        () => gantryCore.readNamespacedConfigMap({ name: 'someone-elses', namespace: release }),
        'cannot get resource "configmaps"',
      ],
      [
        'rewrite another ConfigMap',
        () =>
          gantryCore.replaceNamespacedConfigMap({
            name: 'someone-elses',
            namespace: release,
            body: { metadata: { name: 'someone-elses' }, data: {} },
          }),
        'cannot update resource "configmaps"',
      ],
      [
        'list ConfigMaps',
        () => gantryCore.listNamespacedConfigMap({ namespace: release }),
        'cannot list resource "configmaps"',
      ],
      [
        'watch ConfigMaps',
        () => gantryCore.listNamespacedConfigMap({ namespace: release, watch: true }),
        'cannot watch resource "configmaps"',
      ],
      [
        'delete its own ConfigMap',
        () => gantryCore.deleteNamespacedConfigMap({ name: configMap, namespace: release }),
        'cannot delete resource "configmaps"',
      ],
      [
        'patch its own ConfigMap',
        () => gantryCore.patchNamespacedConfigMap({ name: configMap, namespace: release, body: [] }),
        'cannot patch resource "configmaps"',
      ],
      [
        'create one in another namespace',
        () =>
          gantryCore.createNamespacedConfigMap({
            namespace: 'default',
            body: { metadata: { name: `x-${randomBytes(3).toString('hex')}` } },
          }),
        'cannot create resource "configmaps"',
      ],
    ];
    for (const [what, call, message] of cases) {
      const refused = await refusal(call());
      expect(refused.status, what).toBe(403);
      expect(refused.message, what).toContain(message);
    }
  });

  it('is where a running Gantry keeps what it learned: its target is a metric and on its status page', async () => {
    const name = 'gantry-it-warm-pools';
    const env = await startGantryEnv(kc, {
      namespaces: ['main'],
      cleanup: toDelete,
      classes: ({ main }) => ({
        lint: runnerClass(main as string, ['self-hosted', 'lint'], {
          maxRunners: 6,
          warmPool: { queueTimeObjective: { p95: '30s' } },
        }),
      }),
      config: { warmPools: { configMap: { namespace: release, name } } },
    });
    let stopped = false;
    try {
      const { jobIds } = env.fake.queueJobs({
        repo: 'acme/app',
        labels: ['self-hosted', 'lint'],
        count: 3,
        durationMs: 500,
      });
      await until(
        'jobs completed',
        async () => jobIds.every((id) => env.fake.job(id)?.status === 'completed'),
        60_000,
      );
      const metrics = await env.app.metrics.metrics();
      // Nothing learned for this hour yet (it is still going): no pool.
      expect(metrics).toContain('gantry_class_warm_pool_target{class="lint"} 0');
      const lint = env.app.observers.status().classes.find((c) => c.name === 'lint');
      expect(lint).toBeDefined();
      const served = await env.app.http.inject('/api/status');
      const status = served.json() as {
        classes: { name: string; warmPool?: { target: number; objective: { seconds: number } } }[];
      };
      expect(status.classes.find((c) => c.name === 'lint')?.warmPool).toMatchObject({
        target: 0,
        objective: { percentile: 'p95', seconds: 30 },
      });
      await env.stop();
      stopped = true;
      // The leader wrote what it learned as it stopped: this hour's three jobs, and its runners' start-ups.
      const saved = await admin.readNamespacedConfigMap({ name, namespace: release });
      const state = JSON.parse(saved.data?.[WARM_POOL_DATA_KEY] ?? '{}');
      expect(state.current.jobs.lint).toBe(3);
      expect(state.classes.lint.startupSeconds.length).toBeGreaterThanOrEqual(3);
      expect(state.classes.lint.coldSeconds.length).toBe(3);
    } finally {
      if (!stopped) await env.stop();
    }
  });
});
