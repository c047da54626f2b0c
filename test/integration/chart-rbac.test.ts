import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { applyAll, type ChartObject, manifests, objectsOfKind, render } from '../support/chart.ts';
import { appKeys, FakeGithub } from '../support/fake-github/index.ts';
import {
  createTestNamespace,
  deleteNamespace,
  messageOf,
  statusOf,
  testKubeConfig,
  until,
} from '../support/kube.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';

// The chart's RBAC is enough, and no more: Gantry's runner side runs with a token of the chart's
// ServiceAccount (bound by the chart's Roles), launches and cleans up runners for real jobs from the
// fake GitHub, and is refused what it must not do.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const APP_ID = 4242;
const WEBHOOK_SECRET = 'chart-rbac-webhook-secret';
const toDelete: string[] = [];

afterAll(async () => {
  await Promise.all(toDelete.map((ns) => deleteNamespace(kc, ns)));
});

/** A kubeconfig for the same cluster that authenticates with `token` alone. */
function kubeConfigWithToken(token: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the test kubeconfig has no cluster');
  const asGantry = new KubeConfig();
  asGantry.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'gantry', token }],
    contexts: [{ name: 'gantry', cluster: cluster.name, user: 'gantry' }],
    currentContext: 'gantry',
  });
  return asGantry;
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    return { status: statusOf(err), message: messageOf(err) };
  }
  throw new Error('the request was expected to be refused but was accepted');
}

function writeFile(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gantry-chart-rbac-')), 'file');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('the chart’s RBAC, used by Gantry', () => {
  let release: string;
  let lintNamespace: string;
  let releaseClassNamespace: string;
  let serviceAccount: string;
  let gantryCore: CoreV1Api;
  let fake: FakeGithub;
  let app: App;
  let simulator: ReturnType<typeof startRunnerSimulator>;

  beforeAll(async () => {
    release = await createTestNamespace(kc, 'chart-rbac', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    toDelete.push(release);
    const suffix = randomBytes(3).toString('hex');
    lintNamespace = `chart-rbac-lint-${suffix}`;
    releaseClassNamespace = `chart-rbac-release-${suffix}`;
    toDelete.push(lintNamespace, releaseClassNamespace);

    fake = new FakeGithub({
      repos: ['acme/app', 'acme/web'],
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
      runnerGroups: ['release'],
    });
    const apiUrl = await fake.start();
    fake.runInRealTime(100);

    const runnerClass = (namespace: string, labels: string[], extra: Record<string, unknown> = {}) => ({
      namespace,
      match: { github: { labels } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
      idleTimeout: '5s',
      ...extra,
    });
    const objects = manifests(
      render({
        namespace: release,
        values: {
          secrets: {
            githubAuth: { existingSecret: 'gantry-github-app' },
            webhook: { existingSecret: 'gantry-webhook' },
          },
          config: {
            log: { level: process.env.GANTRY_TEST_LOG ?? 'silent' },
            github: {
              enabled: true,
              apiUrl,
              auth: { kind: 'app', appId: APP_ID, installationId: fake.installationId },
              runners: { org: 'acme' },
              poll: { intervalSeconds: 5, backstopIntervalSeconds: 30 },
            },
            controller: { reconcilePeriodSeconds: 0.5, startTimeoutSeconds: 4, deadlineGraceSeconds: 1 },
            classes: {
              lint: runnerClass(lintNamespace, ['self-hosted', 'lint']),
              release: runnerClass(releaseClassNamespace, ['self-hosted', 'release'], {
                runnerGroup: 'release',
                trustedOnly: true,
              }),
            },
          },
        },
      }),
    );
    // Everything but the Deployment: Gantry runs here, in the test process, as the chart's account.
    applyAll(
      inject('kubeconfig'),
      objects.filter((object) => object.kind !== 'Deployment'),
      'gantry-chart-test',
    );
    for (const namespace of [lintNamespace, releaseClassNamespace]) {
      await until(`default service account and quota status in ${namespace}`, async () => {
        await core.readNamespacedServiceAccount({ name: 'default', namespace });
        const quotas = await core.listNamespacedResourceQuota({ namespace });
        return quotas.items.length > 0 && quotas.items.every((q) => q.status?.hard !== undefined);
      });
    }
    // The Secret Gantry's own pod would mount, which Gantry must not be able to read through the API.
    await core.createNamespacedSecret({
      namespace: release,
      body: {
        metadata: { name: 'gantry-github-app' },
        stringData: { 'private-key.pem': appKeys().privateKeyPem },
      },
    });

    const [account] = objectsOfKind(objects, 'ServiceAccount') as ChartObject[];
    serviceAccount = account?.metadata.name ?? '';
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: release,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    if (!token) throw new Error('the TokenRequest returned no token');
    const asGantry = kubeConfigWithToken(token);
    gantryCore = asGantry.makeApiClient(CoreV1Api);

    // The rendered config, with the mounted files the pod would have written here instead.
    const [configMap] = objectsOfKind(objects, 'ConfigMap');
    const raw = parseYaml((configMap?.data as Record<string, string> | undefined)?.['config.yaml'] ?? '') as {
      github: { auth: { privateKeyPath: string }; webhook: { secretPath: string } };
      http?: unknown;
    };
    expect(raw.github.auth.privateKeyPath).toBe('/etc/gantry/secrets/github-auth/private-key.pem');
    raw.github.auth.privateKeyPath = writeFile(appKeys().privateKeyPem);
    raw.github.webhook.secretPath = writeFile(WEBHOOK_SECRET);
    raw.http = { address: '127.0.0.1', port: 0 };
    const config = parseConfig(raw, 'rendered ConfigMap');

    app = createApp(config, {
      kubeConfig: asGantry,
      logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
    });
    const { url } = await app.start();
    fake.setWebhookTarget(`${url}/webhooks/github`, WEBHOOK_SECRET);
    simulator = startRunnerSimulator(kc, fake, [lintNamespace, releaseClassNamespace]);
  });

  afterAll(async () => {
    await simulator?.stop();
    await app?.stop();
    await fake?.stop();
  });

  it('launches runners for queued jobs and cleans them up', async () => {
    const jobs = [
      ...fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'lint'], count: 6, durationMs: 500 })
        .jobIds,
      ...fake.queueJobs({ repo: 'acme/web', labels: ['self-hosted', 'release'], count: 2, durationMs: 500 })
        .jobIds,
    ];
    await until(
      'all jobs completed',
      async () => jobs.every((id) => fake.job(id)?.status === 'completed'),
      60_000,
    );
    expect(jobs.map((id) => fake.job(id)?.conclusion)).toEqual(jobs.map(() => 'success'));
    expect(new Set(simulator.podsSeen.values())).toEqual(new Set(['lint', 'release']));

    await until(
      'runner pods, JIT secrets and GitHub runners removed',
      async () => {
        let left = fake.runners().length;
        for (const namespace of [lintNamespace, releaseClassNamespace]) {
          const selector = { namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' };
          left += (await core.listNamespacedPod(selector)).items.length;
          left += (await core.listNamespacedSecret(selector)).items.length;
        }
        return left === 0;
      },
      60_000,
    );
  });

  it('is refused what it must not do', async () => {
    const who = `system:serviceaccount:${release}:${serviceAccount}`;
    // Each request is made when its turn comes, so none is refused before it is awaited.
    const cases: [string, () => Promise<unknown>, string][] = [
      [
        'read a Secret in its own namespace',
        () => gantryCore.readNamespacedSecret({ name: 'gantry-github-app', namespace: release }),
        `cannot get resource "secrets" in API group "" in the namespace "${release}"`,
      ],
      [
        'list Secrets of a runner namespace',
        () => gantryCore.listNamespacedSecret({ namespace: lintNamespace }),
        `cannot list resource "secrets" in API group "" in the namespace "${lintNamespace}"`,
      ],
      [
        'delete a Secret of a runner namespace',
        () => gantryCore.deleteNamespacedSecret({ name: 'any', namespace: lintNamespace }),
        `cannot delete resource "secrets"`,
      ],
      [
        'list pods of every namespace',
        () => gantryCore.listPodForAllNamespaces(),
        'cannot list resource "pods" in API group "" at the cluster scope',
      ],
      [
        'create a pod outside the runner namespaces',
        () =>
          gantryCore.createNamespacedPod({
            namespace: release,
            body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } },
          }),
        `cannot create resource "pods" in API group "" in the namespace "${release}"`,
      ],
      [
        'change a runner pod',
        () => gantryCore.patchNamespacedPod({ name: 'any', namespace: lintNamespace, body: [] }),
        'cannot patch resource "pods"',
      ],
      [
        'change a quota',
        () => gantryCore.deleteCollectionNamespacedResourceQuota({ namespace: lintNamespace }),
        'cannot deletecollection resource "resourcequotas"',
      ],
      [
        'read ConfigMaps',
        () => gantryCore.listNamespacedConfigMap({ namespace: release }),
        'cannot list resource "configmaps"',
      ],
      [
        'create a namespace',
        () =>
          gantryCore.createNamespace({
            body: { metadata: { name: `chart-rbac-nope-${randomBytes(3).toString('hex')}` } },
          }),
        'cannot create resource "namespaces"',
      ],
    ];
    for (const [what, request, message] of cases) {
      const { status, message: said } = await refusal(request());
      expect(status, what).toBe(403);
      expect(said, what).toContain(who);
      expect(said, what).toContain(message);
    }
  });
});
