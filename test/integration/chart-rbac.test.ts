import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1MutatingWebhook,
  Watch,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import {
  applyAll,
  type ChartObject,
  clusterScoped,
  deleteAll,
  manifests,
  objectsOfKind,
  readValues,
  render,
  tektonNamespaces,
  withNamespaceSuffix,
} from '../support/chart.ts';
import { appKeys, FakeGithub } from '../support/fake-github/index.ts';
import {
  createTestNamespace,
  deleteNamespace,
  kubeConfigWithToken,
  refusal,
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
  let gantryCoordination: CoordinationV1Api;
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
      runnerGroups: [
        {
          name: 'release',
          restrictedToWorkflows: true,
          selectedWorkflows: ['acme/web/.github/workflows/ci.yml@refs/heads/main'],
        },
      ],
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
    const asGantry = kubeConfigWithToken(kc, token);
    gantryCore = asGantry.makeApiClient(CoreV1Api);
    gantryCoordination = asGantry.makeApiClient(CoordinationV1Api);

    // The rendered config, with the mounted files the pod would have written here instead.
    const [configMap] = objectsOfKind(objects, 'ConfigMap');
    const raw = parseYaml((configMap?.data as Record<string, string> | undefined)?.['config.yaml'] ?? '') as {
      github: {
        auth: { privateKeyPath: string };
        webhook: { secretPath: string; address?: string; port?: number };
      };
      http?: unknown;
    };
    expect(raw.github.auth.privateKeyPath).toBe('/etc/gantry/secrets/github-auth/private-key.pem');
    raw.github.auth.privateKeyPath = writeFile(appKeys().privateKeyPem);
    raw.github.webhook.secretPath = writeFile(WEBHOOK_SECRET);
    raw.github.webhook.address = '127.0.0.1';
    raw.github.webhook.port = 0;
    raw.http = { address: '127.0.0.1', port: 0 };
    const config = parseConfig(raw, 'rendered ConfigMap');

    app = createApp(config, {
      kubeConfig: asGantry,
      logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
    });
    const { webhookUrl } = await app.start();
    fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, WEBHOOK_SECRET);
    simulator = startRunnerSimulator(kc, fake, [lintNamespace, releaseClassNamespace]);
  });

  afterAll(async () => {
    await simulator?.stop();
    await app?.stop();
    await fake?.stop();
  });

  it('elects its leader with the one Lease its Role names', async () => {
    // Two replicas by default, so election is on: Gantry created the Lease and renews it as leader.
    const admin = kc.makeApiClient(CoordinationV1Api);
    const renewals = new Set<string>();
    await until(
      'the leader Lease renewed',
      async () => {
        const lease = await admin
          .readNamespacedLease({ name: 'gantry-leader', namespace: release })
          .catch(() => undefined);
        const renewed = lease?.spec?.renewTime;
        if (renewed) renewals.add(String(renewed));
        return renewals.size >= 2;
      },
      30_000,
      250,
    );
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
      [
        'read a Lease other than its own',
        () => gantryCoordination.readNamespacedLease({ name: 'other-leader', namespace: release }),
        `cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "${release}"`,
      ],
      [
        'renew a Lease other than its own',
        () =>
          gantryCoordination.replaceNamespacedLease({
            name: 'other-leader',
            namespace: release,
            body: { metadata: { name: 'other-leader' }, spec: { holderIdentity: 'gantry' } },
          }),
        'cannot update resource "leases"',
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

/**
 * The first event of a watch on `path` (a list's ADDED events come first), or the HTTP status that
 * refused it.
 */
async function firstWatchEvent(config: KubeConfig, path: string): Promise<string | number> {
  return new Promise((resolve, reject) => {
    let controller: AbortController | undefined;
    let seen: string | undefined;
    new Watch(config)
      .watch(
        path,
        {},
        (phase, object: { metadata?: { name?: string } }) => {
          seen ??= `${phase} ${object.metadata?.name}`;
          resolve(seen);
          controller?.abort();
        },
        (err: { statusCode?: number } | null) => {
          if (err?.statusCode) resolve(err.statusCode);
          else if (!seen) reject(err ?? new Error(`the watch of ${path} ended without an event`));
        },
      )
      .then((c) => {
        controller = c;
        if (seen) c.abort();
      }, reject);
  });
}

describe('the chart’s Tekton RBAC, used with Gantry’s token', () => {
  const group = 'tekton.dev';
  const version = 'v1';
  const plural = 'pipelineruns';
  const namespaces: string[] = [];
  let cluster: ChartObject[] = [];
  let release: string;
  let tektonNs: string[];
  let webhookConfiguration: string;
  let otherConfiguration: string;
  let tlsSecret: string;
  let who: string;
  let hasTekton: boolean;
  let asGantry: KubeConfig;
  let gantryObjects: CustomObjectsApi;
  let gantryCore: CoreV1Api;
  let gantryAdmission: AdmissionregistrationV1Api;
  let authorObjects: CustomObjectsApi;
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const customObjects = kc.makeApiClient(CustomObjectsApi);

  const pipelineRun = (name: string) => ({
    apiVersion: `${group}/${version}`,
    kind: 'PipelineRun',
    metadata: {
      name,
      labels: { 'gantry.dev/class': 'pipelines' },
      annotations: { 'example.com/owner': 'ci' } as Record<string, string>,
    },
    spec: {
      status: 'PipelineRunPending',
      pipelineSpec: {
        tasks: [{ name: 'build', taskSpec: { steps: [{ name: 'make', image: 'alpine', script: 'make' }] } }],
      },
    },
  });

  beforeAll(async () => {
    const suffix = randomBytes(3).toString('hex');
    release = await createTestNamespace(kc, 'chart-rbac-tekton', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    namespaces.push(release);
    const values = withNamespaceSuffix(readValues('tekton-only'), suffix);
    tektonNs = tektonNamespaces(values);
    for (const namespace of tektonNs) {
      await core.createNamespace({
        body: { metadata: { name: namespace, labels: { 'gantry.dev/test': 'true' } } },
      });
      namespaces.push(namespace);
    }
    hasTekton = await kc
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: `${plural}.${group}` })
      .then(
        () => true,
        () => false,
      );
    // Runs exist before the webhook configuration does, and none is created while it does: a call
    // to the webhook would have the apiserver dial the Service's cluster IP, which leads nowhere here.
    if (hasTekton) {
      for (const namespace of [...tektonNs, release]) {
        await customObjects.createNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          body: pipelineRun('held'),
        });
      }
      // What Gantry's webhook makes of new runs: two held in its queue, one its author holds.
      const [namespace = ''] = tektonNs;
      for (const name of ['queued', 'queued-2']) {
        const run = pipelineRun(name);
        run.metadata.annotations = {
          'gantry.dev/class': 'pipelines',
          'gantry.dev/queued-at': '2026-01-01T00:00:00.000Z',
        };
        await customObjects.createNamespacedCustomObject({ group, version, namespace, plural, body: run });
      }
      const own = pipelineRun('authors-own');
      own.metadata.annotations = { 'gantry.dev/class': 'pipelines', 'gantry.dev/held': 'user' };
      await customObjects.createNamespacedCustomObject({ group, version, namespace, plural, body: own });
    }

    // Cluster-scoped objects are named after the release: unique to this run.
    const objects = manifests(render({ release: `gantry-${suffix}`, namespace: release, values }));
    cluster = clusterScoped(objects);
    for (const namespace of objectsOfKind(objects, 'Namespace')) namespaces.push(namespace.metadata.name);
    applyAll(
      inject('kubeconfig'),
      objects.filter((object) => object.kind !== 'Deployment'),
      'gantry-chart-test',
    );
    const [configMap] = objectsOfKind(objects, 'ConfigMap');
    const config = parseConfig(
      parseYaml((configMap?.data as Record<string, string> | undefined)?.['config.yaml'] ?? ''),
      'rendered ConfigMap',
    );
    webhookConfiguration = config.tekton.webhook.tls.webhookConfigurationName;
    tlsSecret = config.tekton.webhook.tls.secretName;
    expect(objectsOfKind(objects, 'MutatingWebhookConfiguration').map((o) => o.metadata.name)).toEqual([
      webhookConfiguration,
    ]);

    // What Gantry must not touch: another Secret beside its own, another webhook configuration.
    await core.createNamespacedSecret({
      namespace: release,
      body: { metadata: { name: 'other-credentials' }, stringData: { token: 'not for Gantry' } },
    });
    otherConfiguration = `${webhookConfiguration}-other`;
    await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: otherConfiguration } } });

    const [account] = objectsOfKind(objects, 'ServiceAccount');
    const serviceAccount = account?.metadata.name ?? '';
    who = `system:serviceaccount:${release}:${serviceAccount}`;
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: release,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    if (!token) throw new Error('the TokenRequest returned no token');
    asGantry = kubeConfigWithToken(kc, token);
    gantryObjects = asGantry.makeApiClient(CustomObjectsApi);
    gantryCore = asGantry.makeApiClient(CoreV1Api);
    gantryAdmission = asGantry.makeApiClient(AdmissionregistrationV1Api);

    // An author: another account of a Tekton namespace, which RBAC lets change PipelineRuns there.
    const [authorNamespace = ''] = tektonNs;
    await core.createNamespacedServiceAccount({
      namespace: authorNamespace,
      body: { metadata: { name: 'author' } },
    });
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: authorNamespace,
      body: {
        metadata: { name: 'author' },
        rules: [{ apiGroups: [group], resources: [plural], verbs: ['get', 'patch', 'update'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: authorNamespace,
      body: {
        metadata: { name: 'author' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'author' },
        subjects: [{ kind: 'ServiceAccount', name: 'author', namespace: authorNamespace }],
      },
    });
    const authorToken = await core.createNamespacedServiceAccountToken({
      name: 'author',
      namespace: authorNamespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    authorObjects = kubeConfigWithToken(kc, authorToken.status?.token ?? '').makeApiClient(CustomObjectsApi);
  });

  afterAll(async () => {
    await admission.deleteMutatingWebhookConfiguration({ name: otherConfiguration }).catch(() => {});
    deleteAll(inject('kubeconfig'), cluster);
    await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
  });

  /** Expects each request refused for Gantry's account with the apiserver's words. */
  async function expectRefused(cases: [string, () => Promise<unknown>, string][]) {
    for (const [what, request, message] of cases) {
      const { status, message: said } = await refusal(request());
      expect(status, what).toBe(403);
      expect(said, what).toContain(who);
      expect(said, what).toContain(message);
    }
  }

  it('lists, watches, reads and patches PipelineRuns in the Tekton namespaces', async (ctx) => {
    if (!hasTekton) return ctx.skip('the cluster serves no tekton.dev PipelineRuns');
    for (const namespace of tektonNs) {
      const list = (await gantryObjects.listNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
      })) as {
        items: { metadata: { name: string } }[];
      };
      // Other runs of the first namespace are the next test's.
      expect(list.items.map((run) => run.metadata.name)).toContain('held');
      await gantryObjects.getNamespacedCustomObject({ group, version, namespace, plural, name: 'held' });
      expect(
        await firstWatchEvent(asGantry, `/apis/${group}/${version}/namespaces/${namespace}/${plural}`),
      ).toMatch(/^ADDED (held|authors-own|queued|queued-2)$/);
      // What Gantry does to start a held run: a JSON patch of spec.status and its annotations.
      await gantryObjects.patchNamespacedCustomObject(
        {
          group,
          version,
          namespace,
          plural,
          name: 'held',
          body: [
            { op: 'test', path: '/spec/status', value: 'PipelineRunPending' },
            { op: 'remove', path: '/spec/status' },
            {
              op: 'add',
              path: '/metadata/annotations/gantry.dev~1admitted-at',
              value: '2026-01-01T00:00:00.000Z',
            },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      const patched = (await customObjects.getNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        name: 'held',
      })) as { metadata: { annotations: Record<string, string> }; spec: { status?: string } };
      expect(patched.spec.status).toBeUndefined();
      expect(patched.metadata.annotations['gantry.dev/admitted-at']).toBe('2026-01-01T00:00:00.000Z');
    }
  });

  it('lets only Gantry move a run in its queue: others may cancel it, not start it or touch its gantry.dev/ annotations', async (ctx) => {
    if (!hasTekton) return ctx.skip('the cluster serves no tekton.dev PipelineRuns');
    const [namespace = ''] = tektonNs;
    const patch = (api: CustomObjectsApi, name: string, body: object[]) =>
      api.patchNamespacedCustomObject(
        { group, version, namespace, plural, name, body },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    const denied = `ValidatingAdmissionPolicy '${webhookConfiguration}-tekton-queue' with binding '${webhookConfiguration}-tekton-queue' denied request: `;
    const annotations = `${denied}only Gantry may change the gantry.dev/ annotations of a PipelineRun`;
    const start = `${denied}Gantry starts the runs it queued`;
    const key = (name: string) => `/metadata/annotations/gantry.dev~1${name}`;

    // The apiserver loads a new policy a moment after it is created.
    // A new value each time: an unchanged annotation is no change, which the policy lets through.
    let attempt = 0;
    const jump = () =>
      patch(authorObjects, 'queued', [
        { op: 'replace', path: key('queued-at'), value: new Date(++attempt).toISOString() },
      ]);

    const first = await until('the queue policy in force', async () => {
      const { status, message } = await refusal(jump()).catch(() => ({ status: 0, message: '' }));
      return status === 403 && message;
    });
    expect(first).toContain(annotations);
    const cases: [string, CustomObjectsApi, object[], string][] = [
      [
        'move it to another class',
        authorObjects,
        [{ op: 'replace', path: key('class'), value: 'fast' }],
        annotations,
      ],
      [
        'mark it admitted',
        authorObjects,
        [{ op: 'add', path: key('admitted-at'), value: 'now' }],
        annotations,
      ],
      ['drop its queue time', authorObjects, [{ op: 'remove', path: key('queued-at') }], annotations],
      ['start it', authorObjects, [{ op: 'remove', path: '/spec/status' }], start],
      [
        'start it with an empty status',
        authorObjects,
        [{ op: 'replace', path: '/spec/status', value: '' }],
        start,
      ],
      // A cluster admin is not Gantry either.
      ['start it as the cluster admin', customObjects, [{ op: 'remove', path: '/spec/status' }], start],
    ];
    for (const [what, api, body, message] of cases) {
      const refused = await refusal(patch(api, 'queued', body));
      expect(refused.status, what).toBe(403);
      expect(refused.message, what).toContain(message);
    }

    // What an author may still do: its own annotations, its own held run, and cancelling.
    await patch(authorObjects, 'queued', [
      { op: 'add', path: '/metadata/annotations/example.com~1note', value: 'x' },
    ]);
    await patch(authorObjects, 'authors-own', [{ op: 'remove', path: '/spec/status' }]);
    await patch(authorObjects, 'queued-2', [{ op: 'replace', path: '/spec/status', value: 'Cancelled' }]);
    // And what Gantry does to start a run it queued.
    await patch(gantryObjects, 'queued', [
      { op: 'test', path: '/spec/status', value: 'PipelineRunPending' },
      { op: 'remove', path: '/spec/status' },
      { op: 'add', path: key('admitted-at'), value: '2026-01-01T00:00:01.000Z' },
    ]);
    const get = async (name: string) =>
      (await customObjects.getNamespacedCustomObject({ group, version, namespace, plural, name })) as {
        metadata: { annotations: Record<string, string> };
        spec: { status?: string };
      };
    const started = await get('queued');
    expect(started.spec.status).toBeUndefined();
    expect(started.metadata.annotations).toMatchObject({
      'gantry.dev/admitted-at': '2026-01-01T00:00:01.000Z',
      'example.com/note': 'x',
    });
    expect((await get('queued-2')).spec.status).toBe('Cancelled');
    expect((await get('authors-own')).spec.status).toBeUndefined();
  });

  it('is refused PipelineRuns outside its namespaces, and every other verb on them', async (ctx) => {
    if (!hasTekton) return ctx.skip('the cluster serves no tekton.dev PipelineRuns');
    const [namespace = ''] = tektonNs;
    await expectRefused([
      [
        'list runs of a namespace not configured',
        () => gantryObjects.listNamespacedCustomObject({ group, version, namespace: release, plural }),
        `cannot list resource "pipelineruns" in API group "tekton.dev" in the namespace "${release}"`,
      ],
      [
        'list runs of every namespace',
        () => gantryObjects.listClusterCustomObject({ group, version, plural }),
        'cannot list resource "pipelineruns" in API group "tekton.dev" at the cluster scope',
      ],
      [
        'patch a run of a namespace not configured',
        () =>
          gantryObjects.patchNamespacedCustomObject(
            {
              group,
              version,
              namespace: release,
              plural,
              name: 'held',
              body: [{ op: 'remove', path: '/spec/status' }],
            },
            setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
          ),
        `cannot patch resource "pipelineruns" in API group "tekton.dev" in the namespace "${release}"`,
      ],
      [
        'create a run',
        () =>
          gantryObjects.createNamespacedCustomObject({
            group,
            version,
            namespace,
            plural,
            body: pipelineRun('new'),
          }),
        'cannot create resource "pipelineruns"',
      ],
      [
        'delete a run',
        () => gantryObjects.deleteNamespacedCustomObject({ group, version, namespace, plural, name: 'held' }),
        'cannot delete resource "pipelineruns"',
      ],
      [
        'replace a run',
        () =>
          gantryObjects.replaceNamespacedCustomObject({
            group,
            version,
            namespace,
            plural,
            name: 'held',
            body: pipelineRun('held'),
          }),
        'cannot update resource "pipelineruns"',
      ],
      [
        'read TaskRuns',
        () => gantryObjects.listNamespacedCustomObject({ group, version, namespace, plural: 'taskruns' }),
        'cannot list resource "taskruns"',
      ],
    ]);
    expect(await firstWatchEvent(asGantry, `/apis/${group}/${version}/namespaces/${release}/${plural}`)).toBe(
      403,
    );
  });

  it('creates, reads and renews its own TLS Secret, and no other', async () => {
    // Gantry's first start: the Secret does not exist yet.
    await gantryCore.createNamespacedSecret({
      namespace: release,
      body: { metadata: { name: tlsSecret }, type: 'Opaque', stringData: { 'ca.crt': 'first' } },
    });
    const secret = await gantryCore.readNamespacedSecret({ name: tlsSecret, namespace: release });
    secret.data = { 'ca.crt': Buffer.from('renewed').toString('base64') };
    await gantryCore.replaceNamespacedSecret({ name: tlsSecret, namespace: release, body: secret });
    const live = await core.readNamespacedSecret({ name: tlsSecret, namespace: release });
    expect(Buffer.from(live.data?.['ca.crt'] ?? '', 'base64').toString()).toBe('renewed');

    await expectRefused([
      [
        'read another Secret of its namespace',
        () => gantryCore.readNamespacedSecret({ name: 'other-credentials', namespace: release }),
        `cannot get resource "secrets" in API group "" in the namespace "${release}"`,
      ],
      [
        'replace another Secret',
        () =>
          gantryCore.replaceNamespacedSecret({
            name: 'other-credentials',
            namespace: release,
            body: { metadata: { name: 'other-credentials' }, stringData: { token: 'mine now' } },
          }),
        'cannot update resource "secrets"',
      ],
      [
        'list Secrets',
        () => gantryCore.listNamespacedSecret({ namespace: release }),
        'cannot list resource "secrets"',
      ],
      [
        'delete its own Secret',
        () => gantryCore.deleteNamespacedSecret({ name: tlsSecret, namespace: release }),
        'cannot delete resource "secrets"',
      ],
      [
        'patch its own Secret (it replaces it)',
        () => gantryCore.patchNamespacedSecret({ name: tlsSecret, namespace: release, body: [] }),
        'cannot patch resource "secrets"',
      ],
    ]);
  });

  it('writes a CA into its own MutatingWebhookConfiguration, and nothing else into it or any other', async () => {
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nnot checked by the apiserver\n').toString(
      'base64',
    );
    // What Gantry does: read the configuration and replace it with the caBundle changed.
    const own = await gantryAdmission.readMutatingWebhookConfiguration({ name: webhookConfiguration });
    const [webhook] = own.webhooks ?? [];
    if (!webhook) throw new Error('the webhook configuration has no webhook');
    webhook.clientConfig.caBundle = caBundle;
    await gantryAdmission.replaceMutatingWebhookConfiguration({ name: webhookConfiguration, body: own });
    const live = await admission.readMutatingWebhookConfiguration({ name: webhookConfiguration });
    expect(live.webhooks?.[0]?.clientConfig.caBundle).toBe(caBundle);

    // Anything else in it, with or without the caBundle, the chart's admission policy refuses. The
    // apiserver loads a new policy a moment after it is created, hence the first wait.
    const policy = `ValidatingAdmissionPolicy '${webhookConfiguration}-webhook-cabundle-only' with binding '${webhookConfiguration}-webhook-cabundle-only' denied request: Gantry may change only the caBundle of its MutatingWebhookConfiguration`;
    const changed = (change: (webhook: V1MutatingWebhook) => void) => async () => {
      const current = await gantryAdmission.readMutatingWebhookConfiguration({ name: webhookConfiguration });
      const [first] = current.webhooks ?? [];
      if (!first) throw new Error('the webhook configuration has no webhook');
      first.clientConfig.caBundle = Buffer.from('another CA').toString('base64');
      change(first);
      return gantryAdmission.replaceMutatingWebhookConfiguration({
        name: webhookConfiguration,
        body: current,
      });
    };
    const intercepting = changed((w) => {
      w.rules = [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }];
    });
    const firstRefusal = await until('the caBundle-only policy in force', async () => {
      const { status, message } = await refusal(intercepting()).catch(() => ({ status: 0, message: '' }));
      return status === 403 && message;
    });
    expect(firstRefusal).toContain(policy);
    for (const [what, change] of [
      [
        'point it elsewhere',
        (w: V1MutatingWebhook) =>
          (w.clientConfig.service = { ...w.clientConfig.service, name: 'evil', namespace: release }),
      ],
      ['select every namespace', (w: V1MutatingWebhook) => (w.namespaceSelector = {})],
      ['fail closed', (w: V1MutatingWebhook) => (w.failurePolicy = 'Fail')],
    ] as const) {
      const { status, message } = await refusal(changed(change)());
      expect(status, what).toBe(403);
      expect(message, what).toContain(policy);
    }
    const labelled = await refusal(
      gantryAdmission.readMutatingWebhookConfiguration({ name: webhookConfiguration }).then((current) =>
        gantryAdmission.replaceMutatingWebhookConfiguration({
          name: webhookConfiguration,
          body: { ...current, metadata: { ...current.metadata, labels: { mine: 'now' } } },
        }),
      ),
    );
    expect(labelled.message).toContain(policy);
    expect(
      (await admission.readMutatingWebhookConfiguration({ name: webhookConfiguration })).webhooks?.[0]?.rules,
    ).toEqual(live.webhooks?.[0]?.rules);

    await expectRefused([
      [
        'read another webhook configuration',
        () => gantryAdmission.readMutatingWebhookConfiguration({ name: otherConfiguration }),
        `cannot get resource "mutatingwebhookconfigurations" in API group "admissionregistration.k8s.io" at the cluster scope`,
      ],
      [
        'change another webhook configuration',
        () =>
          gantryAdmission.replaceMutatingWebhookConfiguration({
            name: otherConfiguration,
            body: { metadata: { name: otherConfiguration } },
          }),
        'cannot update resource "mutatingwebhookconfigurations"',
      ],
      [
        'list webhook configurations',
        () => gantryAdmission.listMutatingWebhookConfiguration(),
        'cannot list resource "mutatingwebhookconfigurations"',
      ],
      [
        'patch its own webhook configuration (it replaces it)',
        () =>
          gantryAdmission.patchMutatingWebhookConfiguration(
            { name: webhookConfiguration, body: [] },
            setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
          ),
        'cannot patch resource "mutatingwebhookconfigurations"',
      ],
      [
        'delete its own webhook configuration',
        () => gantryAdmission.deleteMutatingWebhookConfiguration({ name: webhookConfiguration }),
        'cannot delete resource "mutatingwebhookconfigurations"',
      ],
      [
        'create a webhook configuration',
        () =>
          gantryAdmission.createMutatingWebhookConfiguration({
            body: { metadata: { name: `${webhookConfiguration}-mine` } },
          }),
        'cannot create resource "mutatingwebhookconfigurations"',
      ],
      [
        'touch validating webhooks',
        () => asGantry.makeApiClient(AdmissionregistrationV1Api).listValidatingWebhookConfiguration(),
        'cannot list resource "validatingwebhookconfigurations"',
      ],
    ]);
  });
});
