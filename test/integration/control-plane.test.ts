import { CoreV1Api, RbacAuthorizationV1Api, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestNamespace,
  deleteNamespace,
  kubeConfigWithToken,
  refusal,
  statusOf,
  testKubeConfig,
  until,
} from '../support/kube.ts';

// These tests prove the test cluster is real: its own admission, authorization, scheduler,
// simulated kubelets and garbage collector each judge what is sent to it.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const namespaces: string[] = [];

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = await createTestNamespace(kc, prefix, labels);
  namespaces.push(name);
  return name;
}

afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

/** A pod that meets Pod Security "restricted", placed on the simulated nodes. */
function hardenedPod(
  name: string,
  extra: Partial<V1PodSpec> = {},
  annotations: Record<string, string> = {},
): V1Pod {
  return {
    metadata: { name, annotations },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      nodeSelector: { type: 'kwok' },
      securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'main',
          image: 'registry.example/runner:1',
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
        },
      ],
      ...extra,
    },
  };
}

async function podPhase(namespace: string, name: string): Promise<V1Pod> {
  return core.readNamespacedPod({ name, namespace });
}

describe('Pod Security admission', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await namespace('pss', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  it('rejects a privileged pod in a namespace enforcing "restricted"', async () => {
    const privileged = hardenedPod('privileged');
    const container = privileged.spec?.containers[0];
    if (!container) throw new Error('pod has no container');
    container.securityContext = { privileged: true, allowPrivilegeEscalation: true };
    const { status, message } = await refusal(core.createNamespacedPod({ namespace: ns, body: privileged }));
    expect(status).toBe(403);
    expect(message).toContain('violates PodSecurity "restricted:latest"');
    expect(message).toContain('privileged');
    await expect(podPhase(ns, 'privileged')).rejects.toMatchObject({ code: 404 });
  });

  it('admits a hardened pod in the same namespace', async () => {
    const created = await core.createNamespacedPod({ namespace: ns, body: hardenedPod('hardened') });
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.metadata?.namespace).toBe(ns);
  });
});

describe('ResourceQuota admission', () => {
  it('rejects a pod over the quota and admits one within it', async () => {
    const ns = await namespace('quota');
    await core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'runners' }, spec: { hard: { 'requests.cpu': '1', pods: '5' } } },
    });
    // The quota admission refuses everything until the controller manager has computed usage.
    await until('quota status', async () => {
      const quota = await core.readNamespacedResourceQuota({ name: 'runners', namespace: ns });
      return quota.status?.hard?.['requests.cpu'] !== undefined;
    });

    const big = hardenedPod('big');
    const container = big.spec?.containers[0];
    if (!container) throw new Error('pod has no container');
    container.resources = { requests: { cpu: '2', memory: '256Mi' }, limits: { cpu: '2', memory: '256Mi' } };
    const { status, message } = await refusal(core.createNamespacedPod({ namespace: ns, body: big }));
    expect(status).toBe(403);
    expect(message).toContain('exceeded quota: runners');
    expect(message).toContain('requests.cpu=2');

    const small = await core.createNamespacedPod({ namespace: ns, body: hardenedPod('small') });
    expect(small.metadata?.name).toBe('small');
  });
});

describe('RBAC authorization', () => {
  it('lets a service account bound to a namespaced Role act only inside that namespace', async () => {
    const home = await namespace('rbac-home');
    const elsewhere = await namespace('rbac-elsewhere');
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: home, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace: home,
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: home,
      body: {
        metadata: { name: 'reader-reads-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: home }],
      },
    });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace: home,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toBeTruthy();

    if (!token) throw new Error('no token');
    const asReader = kubeConfigWithToken(kc, token);
    const readerCore = asReader.makeApiClient(CoreV1Api);

    const pods = await readerCore.listNamespacedPod({ namespace: home });
    expect(pods.items).toEqual([]);

    const outside = await refusal(readerCore.listNamespacedPod({ namespace: elsewhere }));
    expect(outside.status).toBe(403);
    expect(outside.message).toContain(`system:serviceaccount:${home}:reader`);
    expect(outside.message).toContain(`in the namespace "${elsewhere}"`);

    const unbound = await refusal(
      readerCore.createNamespacedPod({ namespace: home, body: hardenedPod('nope') }),
    );
    expect(unbound.status).toBe(403);
    expect(unbound.message).toContain('cannot create resource "pods"');
  });
});

describe('scheduling and simulated kubelets', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await namespace('lifecycle', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  it('schedules a pod onto a KWOK node, runs it and ends it Succeeded', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: hardenedPod('succeeds', {}, { 'kwok.gantry.dev/succeed-after': '2s' }),
    });
    const running = await until('pod Running', async () => {
      const pod = await podPhase(ns, 'succeeds');
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(running.spec?.nodeName).toMatch(/^kwok-node-\d+$/);
    expect(running.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');

    const done = await until('pod Succeeded', async () => {
      const pod = await podPhase(ns, 'succeeds');
      return pod.status?.phase === 'Succeeded' ? pod : undefined;
    });
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
  });

  it('ends a pod Failed with the exit code it was given', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: hardenedPod(
        'fails',
        {},
        { 'kwok.gantry.dev/fail-after': '1s', 'kwok.gantry.dev/exit-code': '3' },
      ),
    });
    const failed = await until('pod Failed', async () => {
      const pod = await podPhase(ns, 'fails');
      return pod.status?.phase === 'Failed' ? pod : undefined;
    });
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
  });

  it('leaves a pod that fits no node Pending and Unschedulable', async () => {
    const huge = hardenedPod('too-big');
    const container = huge.spec?.containers[0];
    if (!container) throw new Error('pod has no container');
    container.resources = { requests: { cpu: '500', memory: '1Gi' }, limits: { cpu: '500', memory: '1Gi' } };
    await core.createNamespacedPod({ namespace: ns, body: huge });
    const condition = await until('PodScheduled=False', async () => {
      const pod = await podPhase(ns, 'too-big');
      return pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(condition.reason).toBe('Unschedulable');
    expect(condition.message).toContain('Insufficient cpu');
  });
});

describe('garbage collection', () => {
  it('deletes a Secret owned by a Pod once the Pod is gone', async () => {
    const ns = await namespace('gc');
    const pod = await core.createNamespacedPod({ namespace: ns, body: hardenedPod('owner') });
    const uid = pod.metadata?.uid;
    if (!uid) throw new Error('pod has no uid');
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'owner', uid }] },
        stringData: { config: 'x' },
      },
    });
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'unowned' }, stringData: { a: 'b' } },
    });

    await core.deleteNamespacedPod({ name: 'owner', namespace: ns });
    await until('owned secret collected', async () => {
      try {
        await core.readNamespacedSecret({ name: 'owned', namespace: ns });
        return false;
      } catch (err) {
        return statusOf(err) === 404;
      }
    });
    const survivor = await core.readNamespacedSecret({ name: 'unowned', namespace: ns });
    expect(survivor.metadata?.name).toBe('unowned');
  });
});
