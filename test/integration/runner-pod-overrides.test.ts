import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classesSchema, type RunnerClass } from '../../src/classes/schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createKubeApis } from '../../src/kube/client.ts';
import { createKubeLauncher } from '../../src/launcher/kube-launcher.ts';
import type { CreateRunnerAction } from '../../src/model/action.ts';
import { runnerNameFor } from '../../src/model/runner-name.ts';
import {
  ensureSandboxRuntimeClass,
  type GantryEnv,
  runnerClass,
  startGantryEnv,
} from '../support/gantry-env.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { memoryRegistrar } from '../support/memory-registrar.ts';

// A class's pod overrides on the real apiserver: what it stores is what the class asked for, the
// ServiceAccount admission mounts a token only when the class asks, and the namespace's Pod Security
// level, not Gantry, decides whether a privileged sidecar may run; Gantry reports the apiserver's
// own refusal at start and while it runs.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const namespaces: string[] = [];
const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted' };
const PRIVILEGED = { 'pod-security.kubernetes.io/enforce': 'privileged' };

beforeAll(() => ensureSandboxRuntimeClass(kc));
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

function buildClass(namespace: string, extra: Record<string, unknown>): RunnerClass {
  const parsed = classesSchema.parse({
    build: {
      namespace,
      match: { github: { labels: ['self-hosted', 'build'] } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
      ...extra,
    },
  });
  if (!parsed.build) throw new Error('class missing');
  return parsed.build;
}

const launcher = createKubeLauncher({
  core: createKubeApis(kc, { timeoutMs: 10_000 }).core,
  registrar: memoryRegistrar(),
  logger: pino({ level: 'silent' }),
});

/** Launches one runner of `runnerClass` and reads its pod back from the apiserver. */
async function launch(namespace: string, seed: string, runnerClass: RunnerClass): Promise<V1Pod> {
  const action: CreateRunnerAction = {
    kind: 'create-runner',
    className: 'build',
    namespace,
    nameSeed: seed,
    runnerName: runnerNameFor('build', seed),
    repo: 'acme/app',
    jobKey: 'github:7',
    reason: 'queued-jobs',
  };
  expect(await launcher.create(action, runnerClass)).toEqual({ kind: 'created' });
  return core.readNamespacedPod({ name: action.runnerName, namespace });
}

describe('a class’s pod overrides, stored by the apiserver', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createTestNamespace(kc, 'overrides', RESTRICTED);
    namespaces.push(ns);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'ci-builder' } } });
  });

  const overrides = {
    imagePullPolicy: 'IfNotPresent',
    imagePullSecrets: ['registry-creds'],
    serviceAccountName: 'ci-builder',
    volumes: [
      { name: 'tools', configMap: { name: 'ci-tools', optional: true } },
      { name: 'scratch', emptyDir: { sizeLimit: '1Gi' } },
      { name: 'certs', projected: { sources: [{ secret: { name: 'ci-certs', optional: true } }] } },
    ],
    volumeMounts: [{ name: 'tools', mountPath: '/opt/tools', readOnly: true }],
    initContainers: [{ name: 'warm', image: 'busybox:1', command: ['true'] }],
    sidecars: [
      {
        name: 'proxy',
        image: 'registry.example.com/proxy:1',
        env: { PORT: 3128 },
        resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '32Mi' } },
        volumeMounts: [{ name: 'scratch', mountPath: '/cache' }],
      },
    ],
    topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' },
    ],
    hostAliases: [{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }],
    dnsPolicy: 'None',
    dnsConfig: {
      nameservers: ['10.0.0.53'],
      searches: ['ci.internal'],
      options: [{ name: 'ndots', value: '2' }],
    },
  };

  it('stores every override as the class asked, under Pod Security restricted, and runs the pod', async () => {
    const pod = await launch(ns, 'overrides#0', buildClass(ns, overrides));
    const spec = pod.spec;
    expect(spec?.imagePullSecrets).toEqual([{ name: 'registry-creds' }]);
    expect(spec?.serviceAccountName).toBe('ci-builder');
    expect(spec?.hostAliases).toEqual([{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }]);
    expect(spec?.dnsPolicy).toBe('None');
    expect(spec?.dnsConfig).toEqual({
      nameservers: ['10.0.0.53'],
      searches: ['ci.internal'],
      options: [{ name: 'ndots', value: '2' }],
    });
    expect(spec?.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'gantry.dev/class': 'build' } },
      },
    ]);
    expect(spec?.volumes?.map((v) => v.name)).toEqual(['work', 'tools', 'scratch', 'certs']);
    expect(spec?.volumes?.find((v) => v.name === 'scratch')?.emptyDir).toEqual({ sizeLimit: '1Gi' });
    const runner = spec?.containers[0];
    expect(runner?.imagePullPolicy).toBe('IfNotPresent');
    expect(runner?.volumeMounts).toContainEqual({ name: 'tools', mountPath: '/opt/tools', readOnly: true });
    expect(runner?.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '1Gi' },
      limits: { memory: '128Mi', 'ephemeral-storage': '30Gi' },
    });
    expect(spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['warm', undefined],
      ['proxy', 'Always'],
    ]);
    expect(spec?.initContainers?.[1]).toMatchObject({
      env: [{ name: 'PORT', value: '3128' }],
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      volumeMounts: [{ name: 'scratch', mountPath: '/cache' }],
    });
    // Node autoscalers are asked to leave the runner's node alone.
    expect(pod.metadata?.annotations).toMatchObject({
      'karpenter.sh/do-not-disrupt': 'true',
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
    });
    // No token: the ServiceAccount admission added no API access volume for the named account.
    expect(spec?.automountServiceAccountToken).toBe(false);
    expect(spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(false);
    await until('the pod running, its sidecar beside it', async () => {
      const current = await core.readNamespacedPod({ name: pod.metadata?.name ?? '', namespace: ns });
      return current.status?.phase === 'Running' && current.status.initContainerStatuses?.length === 2;
    });
  });

  it('mounts the service account’s token only for a class that asks, keeps its disk settings, and leaves the node to autoscalers when told', async () => {
    const pod = await launch(
      ns,
      'overrides#1',
      buildClass(ns, {
        serviceAccountName: 'ci-builder',
        mountServiceAccountToken: true,
        doNotDisrupt: false,
        resources: {
          requests: { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '2Gi' },
          limits: { memory: '128Mi', 'ephemeral-storage': '25Gi' },
        },
      }),
    );
    // The class's own local-disk request and limit, as set.
    expect(pod.spec?.containers[0]?.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '2Gi' },
      limits: { memory: '128Mi', 'ephemeral-storage': '25Gi' },
    });
    expect(pod.spec?.automountServiceAccountToken).toBe(true);
    // The apiserver's ServiceAccount admission projects the token into every container.
    const tokenVolume = pod.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'));
    expect(tokenVolume?.projected?.sources?.some((s) => s.serviceAccountToken !== undefined)).toBe(true);
    expect(pod.spec?.containers[0]?.volumeMounts?.map((m) => m.mountPath)).toContain(
      '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    expect(Object.keys(pod.metadata?.annotations ?? {}).filter((k) => !k.startsWith('gantry.dev/'))).toEqual(
      [],
    );
  });

  it('refuses a token, a host path or a privileged sidecar for an untrusted class before anything runs', () => {
    const refused = () =>
      parseConfig({
        classes: {
          forks: {
            untrusted: true,
            namespace: 'sandbox',
            runnerGroup: 'sandbox',
            runtimeClassName: 'gvisor',
            match: { github: { labels: ['self-hosted', 'sandbox'] } },
            volumes: [{ name: 'docker', hostPath: { path: '/var/run/docker.sock' } }],
            sidecars: [{ name: 'dind', image: 'docker:dind', securityContext: { privileged: true } }],
          },
        },
      });
    expect(refused).toThrow(
      'classes.forks.volumes.0.hostPath: not for an untrusted or sandboxed class: a hostPath volume opens the node’s filesystem; ' +
        'classes.forks.sidecars.0.securityContext.privileged: not for an untrusted or sandboxed class: a privileged container reaches the node',
    );
  });
});

describe('a privileged sidecar, judged by the namespace’s Pod Security level', () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    await Promise.all(cleanup.map((ns) => deleteNamespace(kc, ns)));
  });
  const dind = {
    sidecars: [
      {
        name: 'dind',
        image: 'docker:dind',
        securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
      },
    ],
  };

  it('is stored in a privileged namespace, and refused by the apiserver in a restricted one', async () => {
    const open = await createTestNamespace(kc, 'pss-privileged', PRIVILEGED);
    const closed = await createTestNamespace(kc, 'pss-restricted', RESTRICTED);
    namespaces.push(open, closed);
    const stored = await launch(open, 'dind#0', buildClass(open, dind));
    expect(stored.spec?.initContainers?.[0]?.securityContext).toMatchObject({ privileged: true });
    const refused = await launcher.create(
      {
        kind: 'create-runner',
        className: 'build',
        namespace: closed,
        nameSeed: 'dind#1',
        runnerName: runnerNameFor('build', 'dind#1'),
        reason: 'warm-pool',
      },
      buildClass(closed, dind),
    );
    expect(refused).toMatchObject({ kind: 'refused', detail: 'Forbidden' });
    expect(refused.kind === 'refused' && refused.message).toMatch(
      /violates PodSecurity "restricted:latest": privileged \(container "dind" must not set securityContext\.privileged=true\)/,
    );
  });

  it('makes Gantry refuse to start with the apiserver’s own words, naming the class', async () => {
    const started = startGantryEnv(kc, {
      namespaces: ['main'],
      classes: ({ main }) => ({ build: runnerClass(main as string, ['self-hosted', 'build'], dind) }),
      cleanup,
    });
    await expect(started).rejects.toThrow(
      /^class build: the apiserver refuses its runner pods in namespace main-[a-z0-9]+: pods "gantry-build-[0-9a-f]{10}" is forbidden: violates PodSecurity "restricted:latest": privileged \(container "dind" must not set securityContext\.privileged=true\)/,
    );
  });

  it('holds the class when the namespace turns restricted while Gantry runs, and resumes once it allows the pod', async () => {
    let env: GantryEnv | undefined;
    try {
      env = await startGantryEnv(kc, {
        namespaces: ['main'],
        namespaceLabels: { main: PRIVILEGED },
        classes: ({ main }) => ({ build: runnerClass(main as string, ['self-hosted', 'build'], dind) }),
        cleanup,
      });
      const namespace = env.namespaces.main as string;
      const relabel = (labels: Record<string, string>) =>
        core.patchNamespace(
          { name: namespace, body: { metadata: { labels } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      await relabel(RESTRICTED);
      const [id] = env.fake.queueJobs({
        repo: 'acme/app',
        labels: ['self-hosted', 'build'],
        count: 1,
        durationMs: 500,
      }).jobIds;
      const events = () => env?.app.observers.status().events.map((e) => e.message) ?? [];
      const refusal = await until('the refused create reported', async () =>
        events().find((m) => m.startsWith('runner failed to start, Forbidden')),
      );
      expect(refusal).toContain('violates PodSecurity "restricted:latest": privileged');
      const failures = await env.app.metrics.getSingleMetric('gantry_runner_start_failures_total')?.get();
      expect(failures?.values.find((v) => v.labels.reason === 'refused')?.value).toBeGreaterThanOrEqual(1);
      // Held: not a refused create every pass (0.5 s) but one per hold (5 s, then 10 s).
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(events().filter((m) => m.startsWith('runner failed to start, Forbidden'))).toHaveLength(1);
      await relabel(PRIVILEGED);
      await until(
        'the job ran once the namespace allowed its pod',
        async () => env?.fake.job(id ?? 0)?.status === 'completed',
        30_000,
      );
    } finally {
      await env?.stop();
    }
  }, 60_000);
});
