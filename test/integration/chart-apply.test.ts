import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubernetesObjectApi, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  applyAll,
  type ChartObject,
  manifests,
  objectsOfKind,
  readValues,
  render,
  VALUES_FILES,
  withNamespaceSuffix,
} from '../support/chart.ts';
import {
  createTestNamespace,
  deleteNamespace,
  messageOf,
  statusOf,
  testKubeConfig,
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

afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

/** Renders a values file into a fresh release namespace, with runner namespaces unique to this run. */
async function renderInstall(name: (typeof VALUES_FILES)[number]) {
  const release = await createTestNamespace(kc, `chart-${name}`, restricted);
  namespaces.push(release);
  const suffix = randomBytes(3).toString('hex');
  const values = withNamespaceSuffix(readValues(name), suffix);
  const objects = manifests(render({ namespace: release, values }));
  for (const namespace of objectsOfKind(objects, 'Namespace')) namespaces.push(namespace.metadata.name);
  return { release, values, objects };
}

/**
 * What this test's field manager owns of each live object, and since when: unchanged by an apply
 * that changes nothing (status updates by controllers do not touch it).
 */
async function appliedState(objects: ChartObject[]): Promise<string[]> {
  return Promise.all(
    objects.map(async (object) => {
      const live = await objectApi.read({
        apiVersion: object.apiVersion ?? '',
        kind: object.kind,
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace ?? '' },
      });
      const owned = live.metadata?.managedFields?.find((entry) => entry.manager === FIELD_MANAGER);
      const where = `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
      return `${where} generation ${live.metadata?.generation} ${JSON.stringify(owned)}`;
    }),
  );
}

describe('the rendered chart in a real cluster', () => {
  it.each(VALUES_FILES)(
    'creates every object of the %s values, and re-applying changes nothing',
    async (name) => {
      const { objects } = await renderInstall(name);
      expect(objects.length).toBeGreaterThanOrEqual(5);
      applyAll(kubeconfig, objects, FIELD_MANAGER);
      const first = await appliedState(objects);
      // What a GitOps controller does on every sync: the same render, applied again.
      applyAll(kubeconfig, objects, FIELD_MANAGER);
      expect(await appliedState(objects)).toEqual(first);
    },
  );

  it('runs the controller pod template under Pod Security "restricted"', async () => {
    const { release, objects } = await renderInstall('full');
    applyAll(kubeconfig, objects, FIELD_MANAGER);
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
  });

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
