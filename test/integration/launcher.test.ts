import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classesSchema, type RunnerClass } from '../../src/classes/schema.ts';
import { createKubeApis } from '../../src/kube/client.ts';
import { jitConfigSecretName } from '../../src/launcher/jit-config-secret.ts';
import { createKubeLauncher, type KubeLauncherOptions } from '../../src/launcher/kube-launcher.ts';
import { buildRunnerPod } from '../../src/launcher/runner-pod.ts';
import type { CreateRunnerAction } from '../../src/model/action.ts';
import { runnerNameFor } from '../../src/model/runner-name.ts';
import { RegistrationDeferredError, type RunnerRegistrar } from '../../src/ports.ts';
import { createTestNamespace, deleteNamespace, statusOf, testKubeConfig, until } from '../support/kube.ts';
import { memoryRegistrar } from '../support/memory-registrar.ts';

// The launcher against the real apiserver: its pods must pass Pod Security "restricted", its
// writes must be idempotent, and a quota refusal must come back as a capacity signal.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const namespaces: string[] = [];
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

/** A "restricted" namespace whose ResourceQuota admits no pod, once the quota controller counted it. */
async function fullNamespace(prefix: string): Promise<string> {
  const namespace = await createTestNamespace(kc, prefix, {
    'pod-security.kubernetes.io/enforce': 'restricted',
  });
  namespaces.push(namespace);
  await core.createNamespacedResourceQuota({
    namespace,
    body: { metadata: { name: 'runners' }, spec: { hard: { pods: '0' } } },
  });
  await until('quota status', async () => {
    const quota = await core.readNamespacedResourceQuota({ name: 'runners', namespace });
    return quota.status?.hard?.pods !== undefined;
  });
  return namespace;
}

function runnerClass(namespace: string, extra: Record<string, unknown> = {}): RunnerClass {
  const parsed = classesSchema.parse({
    lint: {
      namespace,
      match: { github: { labels: ['self-hosted', 'lint'] } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
      caches: [{ name: 'deps', type: 'ephemeral', size: '1Gi', tools: ['npm', 'go'] }],
      ...extra,
    },
  });
  const lint = parsed.lint;
  if (!lint) throw new Error('class missing');
  return lint;
}

function createAction(namespace: string, seed: string): CreateRunnerAction {
  return {
    kind: 'create-runner',
    className: 'lint',
    namespace,
    nameSeed: seed,
    runnerName: runnerNameFor('lint', seed),
    repo: 'acme/app',
    jobKey: 'github:42',
    reason: 'queued-jobs',
  };
}

describe('kube launcher', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createTestNamespace(kc, 'launcher', { 'pod-security.kubernetes.io/enforce': 'restricted' });
    namespaces.push(ns);
  });

  const launcherWith = (
    registrar: RunnerRegistrar,
    onResponse?: (r: { verb: string; resource: string; code: number }) => void,
    onRegistrationDiscarded?: KubeLauncherOptions['onRegistrationDiscarded'],
  ) =>
    createKubeLauncher({
      core: createKubeApis(kc, { timeoutMs: 10_000, ...(onResponse ? { onResponse } : {}) }).core,
      registrar,
      logger: pino({ level: 'silent' }),
      ...(onRegistrationDiscarded ? { onRegistrationDiscarded } : {}),
    });

  it('starts a runner with two writes: a restricted pod and its JIT secret, owned by the pod', async () => {
    const registrar = memoryRegistrar();
    const writes: string[] = [];
    const launcher = launcherWith(registrar, (r) => {
      if (r.verb !== 'get' && r.verb !== 'list' && r.verb !== 'watch')
        writes.push(`${r.verb} ${r.resource} ${r.code}`);
    });
    const action = createAction(ns, 'acme/app#0');
    expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'created' });
    expect(writes).toEqual(['post pods 201', 'post secrets 201']);

    const pod = await core.readNamespacedPod({ name: action.runnerName, namespace: ns });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.metadata?.labels?.['gantry.dev/class']).toBe('lint');
    const secret = await core.readNamespacedSecret({
      name: jitConfigSecretName(action.runnerName),
      namespace: ns,
    });
    expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Pod',
      name: action.runnerName,
      uid: pod.metadata?.uid,
    });
    expect(Buffer.from(secret.data?.jitConfig ?? '', 'base64').toString()).toBe(
      `jit-for-${action.runnerName}`,
    );
    expect(registrar.registered.has(action.runnerName)).toBe(true);

    const running = await until('runner pod running on a simulated node', async () => {
      const current = await core.readNamespacedPod({ name: action.runnerName, namespace: ns });
      return current.status?.phase === 'Running' ? current : undefined;
    });
    expect(running.spec?.nodeName).toMatch(/^kwok-node-/);
  });

  it('treats a repeated create as done and registers nothing twice', async () => {
    const registrar = memoryRegistrar();
    const launcher = launcherWith(registrar);
    const action = createAction(ns, 'acme/app#1');
    expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'created' });
    registrar.registered.clear();
    expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'exists' });
    expect(registrar.registered.size).toBe(0);
  });

  it('keeps an idle runner that just took a job, and removes it once it is free', async () => {
    const registrar = memoryRegistrar();
    const launcher = launcherWith(registrar);
    const action = createAction(ns, 'acme/app#2');
    await launcher.create(action, runnerClass(ns));
    const remove = {
      kind: 'delete-runner',
      className: 'lint',
      namespace: ns,
      runnerName: action.runnerName,
      reason: 'idle-timeout',
    } as const;
    registrar.busy.add(action.runnerName);
    expect(await launcher.remove(remove)).toEqual({ kind: 'kept-busy' });
    await core.readNamespacedPod({ name: action.runnerName, namespace: ns });

    registrar.busy.delete(action.runnerName);
    expect(await launcher.remove(remove)).toEqual({ kind: 'deleted' });
    expect(registrar.registered.has(action.runnerName)).toBe(false);
    await until('pod and secret gone', async () => {
      const gone = async (read: () => Promise<unknown>) =>
        read().then(
          () => false,
          (err: unknown) => statusOf(err) === 404,
        );
      return (
        (await gone(() => core.readNamespacedPod({ name: action.runnerName, namespace: ns }))) &&
        (await gone(() =>
          core.readNamespacedSecret({ name: jitConfigSecretName(action.runnerName), namespace: ns }),
        ))
      );
    });
    expect(await launcher.remove(remove)).toEqual({ kind: 'deleted' });
  });

  it('does not take an earlier pod’s JIT Secret of the same name for its own; finishes once it is collected', async () => {
    const registrar = memoryRegistrar();
    const launcher = launcherWith(registrar);
    const action = createAction(ns, 'acme/app#stale-secret');
    // A Secret left behind by an earlier pod of that name; here owned by a ConfigMap, so that the
    // garbage collector removes it only when the test says so.
    const holder = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: `holder-${action.runnerName}` } },
    });
    const secretName = jitConfigSecretName(action.runnerName);
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: {
          name: secretName,
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              name: holder.metadata?.name ?? '',
              uid: holder.metadata?.uid ?? '',
            },
          ],
        },
        data: { jitConfig: Buffer.from('old').toString('base64') },
      },
    });
    expect(await launcher.create(action, runnerClass(ns))).toMatchObject({
      kind: 'failed',
      podMayExist: true,
      error: { message: expect.stringContaining('not collected yet') },
    });
    // Sent again while the old Secret is still there: still not done.
    expect(await launcher.create(action, runnerClass(ns))).toMatchObject({
      kind: 'failed',
      podMayExist: true,
    });
    await core.deleteNamespacedConfigMap({ name: holder.metadata?.name ?? '', namespace: ns });
    await until('old secret collected', async () =>
      core.readNamespacedSecret({ name: secretName, namespace: ns }).then(
        () => false,
        (err: unknown) => statusOf(err) === 404,
      ),
    );
    expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'created' });
    const pod = await core.readNamespacedPod({ name: action.runnerName, namespace: ns });
    const secret = await core.readNamespacedSecret({ name: secretName, namespace: ns });
    expect(secret.metadata?.ownerReferences?.[0]?.uid).toBe(pod.metadata?.uid);
    expect(Buffer.from(secret.data?.jitConfig ?? '', 'base64').toString()).toBe(
      `jit-for-${action.runnerName}`,
    );
  });

  it('tells a pod with its own JIT Secret from a half-made one, and removes the half-made with its registration', async () => {
    const registrar = memoryRegistrar();
    const launcher = launcherWith(registrar);
    const whole = createAction(ns, 'acme/app#whole');
    expect(await launcher.create(whole, runnerClass(ns))).toEqual({ kind: 'created' });
    const wholeUid =
      (await core.readNamespacedPod({ name: whole.runnerName, namespace: ns })).metadata?.uid ?? '';
    const check = (action: CreateRunnerAction, podUid: string) =>
      launcher.check({
        kind: 'check-runner',
        className: 'lint',
        namespace: ns,
        runnerName: action.runnerName,
        podUid,
      });
    expect(await check(whole, wholeUid)).toEqual({ kind: 'written' });
    // The Secret of an earlier pod of the same name is not this pod's.
    expect(await check(whole, 'another-pod-uid')).toEqual({ kind: 'missing' });

    // A create that stopped after the pod (Gantry killed): the pod alone, its registration made.
    const half = createAction(ns, 'acme/app#half');
    const pod = await core.createNamespacedPod({
      namespace: ns,
      body: buildRunnerPod(half, runnerClass(ns)),
    });
    registrar.registered.add(half.runnerName);
    expect(await check(half, pod.metadata?.uid ?? '')).toEqual({ kind: 'missing' });
    expect(
      await launcher.remove({
        kind: 'delete-runner',
        className: 'lint',
        namespace: ns,
        runnerName: half.runnerName,
        reason: 'half-made',
      }),
    ).toEqual({ kind: 'deleted' });
    expect(registrar.registered.has(half.runnerName)).toBe(false);
    await until('half-made pod gone', async () =>
      core.readNamespacedPod({ name: half.runnerName, namespace: ns }).then(
        () => false,
        (err: unknown) => statusOf(err) === 404,
      ),
    );
  });

  it('names runners under a configured prefix, end to end on the apiserver', async () => {
    const registrar = memoryRegistrar();
    const launcher = launcherWith(registrar);
    const seed = 'acme/app#prefixed';
    const action = {
      ...createAction(ns, seed),
      namePrefix: 'ci-acme',
      runnerName: runnerNameFor('lint', seed, 'ci-acme'),
    };
    expect(action.runnerName).toMatch(/^ci-acme-lint-/);
    expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'created' });
    expect(registrar.registered.has(action.runnerName)).toBe(true);
    await core.readNamespacedSecret({ name: jitConfigSecretName(action.runnerName), namespace: ns });
    // A name that is not what the seed and prefix give is refused before anything is written.
    await expect(launcher.create({ ...action, namePrefix: 'gantry' }, runnerClass(ns))).rejects.toThrow(
      /is not the name its nameSeed gives/,
    );
  });

  it('reports a refused registration with when to retry, and leaves no pod behind', async () => {
    const retryAt = Date.now() + 60_000;
    const refusing: RunnerRegistrar = {
      register: async () => {
        throw new RegistrationDeferredError('GitHub primary rate limit', retryAt);
      },
      unregister: async () => 'absent',
      forget: () => {},
    };
    const action = createAction(ns, 'acme/app#refused');
    expect(await launcherWith(refusing).create(action, runnerClass(ns))).toMatchObject({
      kind: 'registration-failed',
      error: { message: expect.stringContaining('GitHub primary rate limit') },
      retryAt,
    });
    const status = await core.readNamespacedPod({ name: action.runnerName, namespace: ns }).then(
      (pod) => (pod.metadata?.deletionTimestamp ? 404 : 200),
      (err: unknown) => statusOf(err),
    );
    expect(status).toBe(404);
  });

  it('has a registration that got no answer removed with its pod, in case it was made', async () => {
    const memory = memoryRegistrar();
    const slow: RunnerRegistrar = {
      ...memory,
      // The CI system makes the registration, but its answer comes too late.
      register: async (action, runnerClass) => {
        await memory.register(action, runnerClass);
        throw new Error('Actions service generate_jit_config failed: no answer within 3000 ms');
      },
    };
    const action = createAction(ns, 'acme/app#unanswered');
    expect(await launcherWith(slow).create(action, runnerClass(ns))).toMatchObject({
      kind: 'registration-failed',
    });
    expect(memory.made).toEqual([action.runnerName]);
    expect(memory.registered.has(action.runnerName)).toBe(false);
  });

  it('reports a quota refusal as such and registers nothing', async () => {
    const quotaNs = await fullNamespace('launcher-quota');
    const registrar = memoryRegistrar();
    const outcome = await launcherWith(registrar).create(
      createAction(quotaNs, 'acme/app#0'),
      runnerClass(quotaNs),
    );
    expect(outcome).toMatchObject({
      kind: 'quota-exceeded',
      message: expect.stringContaining('exceeded quota: runners'),
    });
    expect(registrar.registered.size).toBe(0);
  });

  describe('with the registration overlapping the pod create', () => {
    const overlap = { overlapRegistration: true };

    it('makes the same runner with one registration: the pod and its JIT secret', async () => {
      const registrar = memoryRegistrar();
      const writes: string[] = [];
      const launcher = launcherWith(registrar, (r) => {
        if (r.verb !== 'get' && r.verb !== 'list') writes.push(`${r.verb} ${r.resource} ${r.code}`);
      });
      const action = createAction(ns, 'acme/app#overlap');
      expect(await launcher.create(action, runnerClass(ns), overlap)).toEqual({ kind: 'created' });
      expect(writes).toEqual(['post pods 201', 'post secrets 201']);
      expect(registrar.made).toEqual([action.runnerName]);
      const secret = await core.readNamespacedSecret({
        name: jitConfigSecretName(action.runnerName),
        namespace: ns,
      });
      expect(Buffer.from(secret.data?.jitConfig ?? '', 'base64').toString()).toBe(
        `jit-for-${action.runnerName}`,
      );
    });

    it('removes the registration at once when the quota refuses the pod, and reports it', async () => {
      const quotaNs = await fullNamespace('launcher-quota-overlap');
      const registrar = memoryRegistrar();
      const discarded: unknown[] = [];
      const action = createAction(quotaNs, 'acme/app#0');
      const outcome = await launcherWith(registrar, undefined, (d) => discarded.push(d)).create(
        action,
        runnerClass(quotaNs),
        overlap,
      );
      expect(outcome).toMatchObject({ kind: 'quota-exceeded' });
      // It was registered while the pod was judged, and is gone again.
      expect(registrar.made).toEqual([action.runnerName]);
      expect(registrar.registered.size).toBe(0);
      expect(discarded).toEqual([{ className: 'lint', reason: 'quota-exceeded', removed: true }]);
    });

    it('never replaces a registration of a pod that exists: a repeated create leaves the runner as it is', async () => {
      const registrar = memoryRegistrar();
      const discarded: unknown[] = [];
      const launcher = launcherWith(registrar, undefined, (d) => discarded.push(d));
      const action = createAction(ns, 'acme/app#overlap-again');
      expect(await launcher.create(action, runnerClass(ns))).toEqual({ kind: 'created' });
      expect(await launcher.create(action, runnerClass(ns), overlap)).toEqual({ kind: 'exists' });
      // The first registration stands; none was made, replaced or removed.
      expect(registrar.made).toEqual([action.runnerName]);
      expect(registrar.registered.has(action.runnerName)).toBe(true);
      expect(discarded).toEqual([]);
    });

    it('replaces an earlier runner’s registration of the same name once its own pod is made', async () => {
      const registrar = memoryRegistrar();
      const action = createAction(ns, 'acme/app#overlap-stale');
      // Left by an earlier runner of that name whose pod is gone.
      registrar.registered.add(action.runnerName);
      expect(await launcherWith(registrar).create(action, runnerClass(ns), overlap)).toEqual({
        kind: 'created',
      });
      expect(registrar.made).toEqual([action.runnerName]);
      expect(registrar.registered.has(action.runnerName)).toBe(true);
    });
  });
});
