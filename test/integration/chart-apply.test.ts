import { randomBytes } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  applyAll,
  type ChartObject,
  clusterScoped,
  deleteAll,
  ensureCertManagerCrds,
  manifests,
  objectsOfKind,
  readValues,
  render,
  tektonNamespaces,
  VALUES_FILES,
  withNamespaceSuffix,
} from '../support/chart.ts';
import {
  createTestNamespace,
  deleteNamespace,
  messageOf,
  statusOf,
  testKubeConfig,
  until,
} from '../support/kube.ts';

// Every object the chart renders, created for real in the control plane with server-side apply
// (strict: an unknown field fails), so the apiserver's validation and admission judge the chart.

const kc = testKubeConfig();
const kubeconfig = inject('kubeconfig');
const FIELD_MANAGER = 'gantry-chart-test';
const core = kc.makeApiClient(CoreV1Api);
const objectApi = KubernetesObjectApi.makeApiClient(kc);
const restricted = { 'pod-security.kubernetes.io/enforce': 'restricted' };
const namespaces: string[] = [];
/** Cluster-scoped objects of the test under way (webhook configuration, ClusterRoles), deleted after it. */
const clusterObjects: ChartObject[] = [];

afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});
afterEach(() => {
  deleteAll(kubeconfig, clusterObjects.splice(0));
});

/**
 * Renders a values file into a fresh release namespace, under a release name and with runner and
 * Tekton namespaces unique to this run (cluster-scoped objects are named after the release). The
 * Tekton namespaces, which the chart expects to exist, are created.
 */
async function renderInstall(name: (typeof VALUES_FILES)[number]) {
  const release = await createTestNamespace(kc, `chart-${name}`, restricted);
  namespaces.push(release);
  const suffix = randomBytes(3).toString('hex');
  const values = withNamespaceSuffix(readValues(name), suffix);
  for (const namespace of tektonNamespaces(values)) {
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { 'gantry.dev/test': 'true' } } },
    });
    namespaces.push(namespace);
  }
  const objects = manifests(render({ release: `gantry-${suffix}`, namespace: release, values }));
  for (const namespace of objectsOfKind(objects, 'Namespace')) namespaces.push(namespace.metadata.name);
  clusterObjects.push(...clusterScoped(objects));
  return { release, values, objects: confineAdmission(objects, release) };
}

interface NamespaceSelector {
  matchExpressions: { operator: string }[];
}

/**
 * The cluster is shared by every test file. A webhook the apiserver calls would have it dial the
 * Service's cluster IP, which leads nowhere here, and the queue's admission policy would refuse other
 * files' Gantry (not this release's account) its patches. So a webhook configuration or policy binding
 * that selects every namespace is narrowed to the release namespace, where no PipelineRun is ever
 * created (with configured namespaces it selects only this run's own). chart-render checks the
 * selectors as rendered.
 */
function confineAdmission(objects: ChartObject[], release: string): ChartObject[] {
  const confined = (selector: NamespaceSelector) =>
    selector.matchExpressions.every((expression) => expression.operator === 'In')
      ? selector
      : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [release] }] };
  return objects.map((object) => {
    if (object.kind === 'ValidatingAdmissionPolicyBinding') {
      const spec = object.spec as { matchResources?: { namespaceSelector: NamespaceSelector } };
      if (!spec.matchResources) return object;
      return {
        ...object,
        spec: {
          ...spec,
          matchResources: { namespaceSelector: confined(spec.matchResources.namespaceSelector) },
        },
      };
    }
    if (object.kind !== 'MutatingWebhookConfiguration') return object;
    const webhooks = (object.webhooks as { namespaceSelector: NamespaceSelector }[]).map((webhook) => ({
      ...webhook,
      namespaceSelector: confined(webhook.namespaceSelector),
    }));
    return { ...object, webhooks };
  });
}

const isCertManager = (object: ChartObject) => object.apiVersion?.startsWith('cert-manager.io/') ?? false;

/**
 * What this test's field manager owns of each live object, and since when: unchanged by an apply
 * that changes nothing (status updates by controllers do not touch it). A ValidatingAdmissionPolicy
 * is the exception for "since when": the apiserver's policy controller records each type check
 * (again whenever the cluster's APIs change, cert-manager's CRDs for instance) with an Apply to the
 * status, and the next apply of ours re-sorts the field managers, a write that moves only our time.
 */
async function appliedState(objects: ChartObject[]): Promise<string[]> {
  return Promise.all(
    objects.map(async (object) => {
      const live = await objectApi.read({
        apiVersion: object.apiVersion ?? '',
        kind: object.kind,
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace ?? '' },
      });
      const entry = live.metadata?.managedFields?.find((e) => e.manager === FIELD_MANAGER);
      const owned = object.kind === 'ValidatingAdmissionPolicy' ? { ...entry, time: undefined } : entry;
      const where = `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
      return `${where} generation ${live.metadata?.generation} ${JSON.stringify(owned)}`;
    }),
  );
}

/** Waits until the apiserver has type-checked every ValidatingAdmissionPolicy of `objects`; false when there are none. */
async function policiesTypeChecked(objects: ChartObject[]): Promise<boolean> {
  const names = objectsOfKind(objects, 'ValidatingAdmissionPolicy').map((policy) => policy.metadata.name);
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  for (const name of names) {
    await until(`${name} type-checked`, async () => {
      const live = await api.readValidatingAdmissionPolicy({ name });
      return live.status?.observedGeneration === live.metadata?.generation && live.status?.typeChecking;
    });
  }
  return names.length > 0;
}

describe('the rendered chart in a real cluster', () => {
  it.each(VALUES_FILES)(
    'creates every object of the %s values, and re-applying changes nothing',
    async (name) => {
      const { objects: rendered } = await renderInstall(name);
      expect(rendered.length).toBeGreaterThanOrEqual(5);
      // cert-manager's objects need its CRDs, which a GANTRY_BIN_DIR may lack: the test below
      // creates them, or says why it skips.
      const withoutCrds = rendered.some(isCertManager) && ensureCertManagerCrds(kubeconfig) !== undefined;
      const objects = withoutCrds ? rendered.filter((object) => !isCertManager(object)) : rendered;
      applyAll(kubeconfig, objects, FIELD_MANAGER);
      const first = await appliedState(objects);
      // What a GitOps controller does on every sync: the same render, applied again.
      applyAll(kubeconfig, objects, FIELD_MANAGER);
      expect(await appliedState(objects)).toEqual(first);
    },
  );

  it('creates the webhook configuration as rendered, with no caBundle, for Gantry to fill in', async () => {
    const { objects } = await renderInstall('tekton-only');
    applyAll(kubeconfig, objects, FIELD_MANAGER);
    const [rendered] = objectsOfKind(objects, 'MutatingWebhookConfiguration');
    if (!rendered) throw new Error('no MutatingWebhookConfiguration rendered');
    const live = await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: rendered.metadata.name });
    const [webhook] = live.webhooks ?? [];
    expect(webhook?.clientConfig.caBundle).toBeUndefined();
    expect(webhook).toMatchObject({
      name: 'pipelineruns.gantry.dev',
      failurePolicy: 'Ignore',
      matchPolicy: 'Equivalent',
      sideEffects: 'None',
      reinvocationPolicy: 'Never',
      timeoutSeconds: 5,
      clientConfig: { service: { path: '/admit/pipelineruns', port: 8443 } },
    });
  });

  it('creates the admission policies, which the apiserver type-checks against the APIs without a warning', async () => {
    const { objects } = await renderInstall('tekton-only');
    applyAll(kubeconfig, objects, FIELD_MANAGER);
    const policies = objectsOfKind(objects, 'ValidatingAdmissionPolicy').map((p) => p.metadata.name);
    expect(policies).toHaveLength(2);
    expect(await policiesTypeChecked(objects)).toBe(true);
    const api = kc.makeApiClient(AdmissionregistrationV1Api);
    for (const name of policies) {
      const live = await api.readValidatingAdmissionPolicy({ name });
      expect(live.status?.typeChecking?.expressionWarnings ?? [], name).toEqual([]);
    }
  });

  it('creates the cert-manager Issuer and Certificate under cert-manager’s own CRDs', async (ctx) => {
    const why = ensureCertManagerCrds(kubeconfig);
    if (why) return ctx.skip(why);
    const { release, objects } = await renderInstall('tekton-cert-manager');
    const certManager = objects.filter(isCertManager);
    expect(certManager.map((o) => o.kind).sort()).toEqual(['Certificate', 'Issuer']);
    // Server-side apply decodes strictly: a field the CRD's schema lacks fails here.
    applyAll(kubeconfig, objects, FIELD_MANAGER);
    const [certificate] = objectsOfKind(objects, 'Certificate');
    const live = (await objectApi.read({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: certificate?.metadata.name ?? '', namespace: release },
    })) as ChartObject;
    expect(live.spec).toEqual(certificate?.spec);
  });

  it.each(['full', 'tekton-cert-manager'] as const)(
    'runs the controller pod template (%s values) under Pod Security "restricted"',
    async (name) => {
      const { release, objects } = await renderInstall(name);
      applyAll(
        kubeconfig,
        objects.filter((object) => !isCertManager(object)),
        FIELD_MANAGER,
      );
      const [deployment] = objectsOfKind(objects, 'Deployment') as V1Deployment[];
      const template = deployment?.spec?.template;
      if (!template?.spec) throw new Error('no pod template rendered');
      // A Deployment only warns; a Pod is where the namespace's enforce label is applied.
      const pod: V1Pod = {
        metadata: { name: 'pod-template', labels: template.metadata?.labels },
        spec: template.spec,
      };
      const admitted = await core.createNamespacedPod({ namespace: release, body: pod, dryRun: 'All' });
      expect(admitted.metadata?.name).toBe('pod-template');
    },
  );

  it('makes runner namespaces that enforce Pod Security "restricted"', async () => {
    const { objects } = await renderInstall('github');
    applyAll(kubeconfig, objects, FIELD_MANAGER);
    const [namespace] = objectsOfKind(objects, 'Namespace');
    if (!namespace) throw new Error('no runner namespace rendered');
    const privileged: V1Pod = {
      metadata: { name: 'privileged' },
      spec: {
        containers: [{ name: 'main', image: 'registry.example/x:1', securityContext: { privileged: true } }],
      },
    };
    const refusal = await core
      .createNamespacedPod({ namespace: namespace.metadata.name, body: privileged, dryRun: 'All' })
      .then(
        () => undefined,
        (err: unknown) => ({ status: statusOf(err), message: messageOf(err) }),
      );
    expect(refusal?.status).toBe(403);
    expect(refusal?.message).toContain('violates PodSecurity "restricted:latest"');
  });

  it('applies strictly: a field the API does not know is refused', async () => {
    const { objects } = await renderInstall('minimal');
    const [service] = objectsOfKind(objects, 'Service');
    if (!service) throw new Error('no Service rendered');
    const misspelt = { ...service, spec: { ...(service.spec as object), selectr: { app: 'x' } } };
    expect(() => applyAll(kubeconfig, [misspelt], FIELD_MANAGER)).toThrow(
      /\.spec\.selectr: field not declared in schema/,
    );
  });
});
