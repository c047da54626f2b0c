import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { classesSchema, type RunnerClass } from '../../../src/classes/schema.ts';
import {
  buildJitConfigSecret,
  JIT_CONFIG_KEY,
  jitConfigSecretName,
  runnerPodOwnerReference,
} from '../../../src/launcher/jit-config-secret.ts';
import { buildRunnerPod } from '../../../src/launcher/runner-pod.ts';
import type { CreateRunnerAction } from '../../../src/model/action.ts';
import { RUNNER_POD_SELECTOR } from '../../../src/model/keys.ts';
import { isDnsLabel, isLabelValue, isQualifiedName, toLabelValue } from '../../../src/model/kube-names.ts';
import { runnerNameFor } from '../../../src/model/runner-name.ts';

function runnerClass(input: Record<string, unknown> = {}): RunnerClass {
  const parsed = classesSchema.parse({
    build: { match: { github: { labels: ['self-hosted', 'build'] } }, ...input },
  });
  if (!parsed.build) throw new Error('class did not parse');
  return parsed.build;
}

function createAction(options: Partial<CreateRunnerAction> = {}): CreateRunnerAction {
  const className = options.className ?? 'build';
  const nameSeed = options.nameSeed ?? 'acme/app#0';
  return {
    kind: 'create-runner',
    className,
    namespace: 'ci-runners',
    nameSeed,
    runnerName: runnerNameFor(className, nameSeed),
    repo: 'acme/app',
    jobKey: 'github:12877621891',
    reason: 'queued-jobs',
    ...options,
  };
}

function runnerContainer(pod: V1Pod): V1Container {
  const container = pod.spec?.containers[0];
  if (!container) throw new Error('pod has no container');
  return container;
}

const envOf = (pod: V1Pod) =>
  Object.fromEntries((runnerContainer(pod).env ?? []).map((e) => [e.name, e.value]));

/**
 * The Pod Security Standard "restricted" profile (baseline checks included), as the apiserver's
 * PodSecurity admission applies it, for the fields a runner pod could get wrong.
 */
function restrictedViolations(pod: V1Pod): string[] {
  const spec = pod.spec;
  if (!spec) return ['no spec'];
  const violations: string[] = [];
  const containers = [...spec.containers, ...(spec.initContainers ?? [])];
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) violations.push('host namespaces');
  const allowedVolumes = [
    'configMap',
    'csi',
    'downwardAPI',
    'emptyDir',
    'ephemeral',
    'persistentVolumeClaim',
    'projected',
    'secret',
  ];
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    if (!types.every((type) => allowedVolumes.includes(type)))
      violations.push(`volume ${volume.name}: ${types}`);
  }
  const podContext = spec.securityContext ?? {};
  if (podContext.runAsUser === 0) violations.push('pod runAsUser 0');
  const podSeccomp = podContext.seccompProfile?.type;
  if (podSeccomp !== undefined && !['RuntimeDefault', 'Localhost'].includes(podSeccomp))
    violations.push('pod seccomp');
  for (const container of containers) {
    const context = container.securityContext ?? {};
    const where = `container ${container.name}`;
    if (context.privileged) violations.push(`${where}: privileged`);
    if (context.allowPrivilegeEscalation !== false)
      violations.push(`${where}: allowPrivilegeEscalation not false`);
    if (!(context.capabilities?.drop ?? []).includes('ALL'))
      violations.push(`${where}: capabilities not dropping ALL`);
    const added = context.capabilities?.add ?? [];
    if (added.some((capability) => capability !== 'NET_BIND_SERVICE'))
      violations.push(`${where}: capabilities added`);
    if ((context.runAsNonRoot ?? podContext.runAsNonRoot) !== true)
      violations.push(`${where}: runAsNonRoot not true`);
    if (context.runAsUser === 0) violations.push(`${where}: runAsUser 0`);
    const seccomp = context.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') violations.push(`${where}: seccomp`);
    if ((container.ports ?? []).some((port) => port.hostPort)) violations.push(`${where}: hostPort`);
    if (context.procMount !== undefined && context.procMount !== 'Default')
      violations.push(`${where}: procMount`);
  }
  return violations;
}

describe('buildRunnerPod', () => {
  it('builds a one-shot runner pod named by the action’s seed', () => {
    const pod = buildRunnerPod(createAction(), runnerClass());
    expect(pod.metadata?.name).toBe(runnerNameFor('build', 'acme/app#0'));
    expect(pod.metadata?.namespace).toBe('ci-runners');
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.enableServiceLinks).toBe(false);
    expect(pod.spec?.activeDeadlineSeconds).toBe(21600);
    const container = runnerContainer(pod);
    expect(container).toMatchObject({
      name: 'runner',
      image: 'ghcr.io/actions/actions-runner:latest',
      command: ['/home/runner/run.sh'],
      volumeMounts: [{ name: 'work', mountPath: '/home/runner/_work' }],
    });
    // Local disk: a limit covering the work folder (20Gi) and 10Gi more, a modest request.
    expect(container.resources).toEqual({
      requests: { cpu: '1', memory: '2Gi', 'ephemeral-storage': '1Gi' },
      limits: { memory: '2Gi', 'ephemeral-storage': '30Gi' },
    });
    expect(pod.spec?.volumes).toEqual([{ name: 'work', emptyDir: { sizeLimit: '20Gi' } }]);
  });

  it('hands the runner its JIT config from the runner’s secret, never inline', () => {
    const pod = buildRunnerPod(createAction(), runnerClass());
    const jit = runnerContainer(pod).env?.find((e) => e.name === 'ACTIONS_RUNNER_INPUT_JITCONFIG');
    expect(jit).toEqual({
      name: 'ACTIONS_RUNNER_INPUT_JITCONFIG',
      valueFrom: {
        secretKeyRef: { name: jitConfigSecretName(pod.metadata?.name ?? ''), key: JIT_CONFIG_KEY },
      },
    });
  });

  it('passes Pod Security "restricted", field by field', () => {
    const pod = buildRunnerPod(
      createAction(),
      runnerClass({ caches: [{ type: 'ephemeral', name: 'deps', size: '5Gi' }] }),
    );
    expect(pod.spec?.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(runnerContainer(pod).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1001,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(restrictedViolations(pod)).toEqual([]);
  });

  it('has a restricted check that does find violations', () => {
    const pod = buildRunnerPod(createAction(), runnerClass());
    const container = runnerContainer(pod);
    const loosened: V1Pod = {
      ...pod,
      spec: {
        containers: [
          {
            ...container,
            securityContext: {
              ...container.securityContext,
              allowPrivilegeEscalation: true,
              runAsNonRoot: false,
              seccompProfile: { type: 'Unconfined' },
              capabilities: { add: ['SYS_ADMIN'] },
            },
          },
        ],
        volumes: [{ name: 'host', hostPath: { path: '/' } }],
      },
    };
    expect(restrictedViolations(loosened)).toEqual([
      'volume host: hostPath',
      'container runner: allowPrivilegeEscalation not false',
      'container runner: capabilities not dropping ALL',
      'container runner: capabilities added',
      'container runner: runAsNonRoot not true',
      'container runner: seccomp',
    ]);
  });

  it('applies the class’s scheduling, sandbox, resources and pod metadata', () => {
    const pod = buildRunnerPod(
      createAction(),
      runnerClass({
        runtimeClassName: 'gvisor',
        priorityClassName: 'ci-high',
        nodeSelector: { pool: 'ci' },
        tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
        },
        activeDeadlineSeconds: 900,
        image: 'registry.example.com/runner:2',
        command: ['/bin/run', '--once'],
        resources: {
          requests: { cpu: '2', 'ephemeral-storage': '10Gi' },
          limits: { cpu: '4', memory: '8Gi' },
        },
        workspace: { sizeLimit: '50Gi' },
        podAnnotations: { 'kwok.gantry.dev/succeed-after': '30s' },
        podLabels: { team: 'web' },
      }),
    );
    expect(pod.spec).toMatchObject({
      runtimeClassName: 'gvisor',
      priorityClassName: 'ci-high',
      nodeSelector: { pool: 'ci' },
      tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
      },
      activeDeadlineSeconds: 900,
      volumes: [{ name: 'work', emptyDir: { sizeLimit: '50Gi' } }],
    });
    expect(runnerContainer(pod)).toMatchObject({
      image: 'registry.example.com/runner:2',
      command: ['/bin/run', '--once'],
      resources: { requests: { cpu: '2', 'ephemeral-storage': '10Gi' }, limits: { cpu: '4', memory: '8Gi' } },
    });
    expect(pod.metadata?.annotations).toMatchObject({ 'kwok.gantry.dev/succeed-after': '30s' });
    expect(pod.metadata?.labels).toMatchObject({ team: 'web' });
  });

  it('leaves unset scheduling fields out rather than empty', () => {
    const spec = buildRunnerPod(createAction(), runnerClass()).spec ?? { containers: [] };
    for (const key of ['runtimeClassName', 'priorityClassName', 'nodeSelector', 'tolerations', 'affinity']) {
      expect(Object.hasOwn(spec, key), key).toBe(false);
    }
  });

  it('labels the pod so the ledger can find it again, with valid label values', () => {
    const pod = buildRunnerPod(createAction({ repo: 'Acme/my.app', jobKey: 'github:42' }), runnerClass());
    expect(pod.metadata?.labels).toEqual({
      'app.kubernetes.io/managed-by': 'gantry',
      'app.kubernetes.io/component': 'runner',
      'gantry.dev/class': 'build',
      'gantry.dev/source': 'github',
      'gantry.dev/repo': 'Acme_my.app',
      'gantry.dev/job': 'github_42',
    });
    expect(RUNNER_POD_SELECTOR).toBe(
      'app.kubernetes.io/managed-by=gantry,app.kubernetes.io/component=runner',
    );
    // The exact values, which labels cannot hold, are kept as annotations.
    expect(pod.metadata?.annotations).toEqual({
      'gantry.dev/name-seed': 'acme/app#0',
      'gantry.dev/repo': 'Acme/my.app',
      'gantry.dev/job': 'github:42',
      // Node autoscalers leave the node of a running one-shot runner alone (doNotDisrupt, default).
      'karpenter.sh/do-not-disrupt': 'true',
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
    });
    for (const [key, value] of Object.entries(pod.metadata?.labels ?? {})) {
      expect(isQualifiedName(key), key).toBe(true);
      expect(isLabelValue(value), value).toBe(true);
    }
  });

  it('turns any text into a valid label value', () => {
    expect(toLabelValue('octo-org/my_repo.js')).toBe('octo-org_my_repo.js');
    expect(toLabelValue('-/weird/-')).toBe('weird');
    expect(toLabelValue('x'.repeat(100))).toHaveLength(63);
    expect(toLabelValue(`${'a'.repeat(62)}/b`)).toBe('a'.repeat(62));
    for (const text of ['é', '///', `${'a'.repeat(62)}-b`])
      expect(isLabelValue(toLabelValue(text)), text).toBe(true);
  });

  it('omits repo and job labels for an org-wide warm runner', () => {
    const { repo: _repo, jobKey: _job, ...warm } = createAction({ nameSeed: '*#3', reason: 'warm-pool' });
    const pod = buildRunnerPod({ ...warm, runnerName: runnerNameFor('build', '*#3') }, runnerClass());
    expect(Object.keys(pod.metadata?.labels ?? {})).not.toContain('gantry.dev/repo');
    expect(Object.keys(pod.metadata?.labels ?? {})).not.toContain('gantry.dev/job');
  });

  it('names pods as DNS labels of at most 63 characters, even for the longest class names', () => {
    const className = 'c'.repeat(63);
    const name = runnerNameFor(className, 'acme/app#0');
    expect(name.length).toBeLessThanOrEqual(63);
    expect(isDnsLabel(name)).toBe(true);
    expect(name).not.toBe(runnerNameFor(className, 'acme/app#1'));
    expect(runnerNameFor('a-', 'x')).toMatch(/^gantry-a-[0-9a-f]{10}$/);
  });

  it('is deterministic, and refuses an action whose name does not follow from its seed', () => {
    expect(buildRunnerPod(createAction(), runnerClass())).toEqual(
      buildRunnerPod(createAction(), runnerClass()),
    );
    expect(() =>
      buildRunnerPod(createAction({ runnerName: 'gantry-build-0000000000' }), runnerClass()),
    ).toThrow(/runnerName gantry-build-0000000000 is not the name its nameSeed gives/);
  });
});

describe('buildRunnerPod caches', () => {
  const shared = { type: 'persistentVolumeClaim', name: 'deps', claimName: 'ci-deps' };

  const sandboxed = {
    untrusted: true,
    namespace: 'sandbox',
    runnerGroup: 'sandbox',
    runtimeClassName: 'gvisor',
  };

  it('mounts a shared cache read-write for a trusted class, with only verified or inert caches', () => {
    const pod = buildRunnerPod(createAction(), runnerClass({ caches: [shared] }));
    expect(pod.spec?.volumes).toContainEqual({
      name: 'cache-deps',
      persistentVolumeClaim: { claimName: 'ci-deps', readOnly: false },
    });
    expect(runnerContainer(pod).volumeMounts).toContainEqual({
      name: 'cache-deps',
      mountPath: '/caches/deps',
      readOnly: false,
    });
    const env = envOf(pod);
    expect(env).toMatchObject({
      npm_config_cache: '/caches/deps/npm',
      PIP_CACHE_DIR: '/caches/deps/pip',
      GOMODCACHE: '/caches/deps/go/mod',
      GRADLE_RO_DEP_CACHE: '/caches/deps/gradle/caches',
    });
    // What later builds would execute stays out of a shared claim unless the class asks for it.
    expect(env).not.toHaveProperty('GOCACHE');
    expect(env).not.toHaveProperty('GRADLE_USER_HOME');
  });

  it('points build caches into a shared claim only when the class asks for them', () => {
    const pod = buildRunnerPod(createAction(), runnerClass({ caches: [{ ...shared, buildCaches: true }] }));
    expect(envOf(pod)).toMatchObject({
      GOMODCACHE: '/caches/deps/go/mod',
      GOCACHE: '/caches/deps/go/build',
      GRADLE_USER_HOME: '/caches/deps/gradle',
    });
    expect(envOf(pod)).not.toHaveProperty('GRADLE_RO_DEP_CACHE');
  });

  it('mounts an untrusted class’s own claim read-only by default, with only read-only-capable tools', () => {
    const pod = buildRunnerPod(createAction(), runnerClass({ ...sandboxed, caches: [shared] }));
    expect(pod.spec?.volumes).toContainEqual({
      name: 'cache-deps',
      persistentVolumeClaim: { claimName: 'ci-deps', readOnly: true },
    });
    expect(runnerContainer(pod).volumeMounts).toContainEqual({
      name: 'cache-deps',
      mountPath: '/caches/deps',
      readOnly: true,
    });
    const env = envOf(pod);
    expect(env).toMatchObject({
      GOPROXY: 'file:///caches/deps/go/mod/cache/download,https://proxy.golang.org,direct',
      GRADLE_RO_DEP_CACHE: '/caches/deps/gradle/caches',
    });
    for (const writable of [
      'npm_config_cache',
      'PIP_CACHE_DIR',
      'GOMODCACHE',
      'GOCACHE',
      'GRADLE_USER_HOME',
    ]) {
      expect(env).not.toHaveProperty(writable);
    }
    const writable = buildRunnerPod(
      createAction(),
      runnerClass({ ...sandboxed, caches: [{ ...shared, readOnly: false }] }),
    );
    expect(writable.spec?.volumes).toContainEqual({
      name: 'cache-deps',
      persistentVolumeClaim: { claimName: 'ci-deps', readOnly: false },
    });
  });

  it('mounts a sub-path per repository for a repo-scoped class that asks for it', () => {
    const pod = buildRunnerPod(
      createAction({ repo: 'Acme/App' }),
      runnerClass({ scope: 'repo', caches: [{ ...shared, perRepository: true }] }),
    );
    expect(runnerContainer(pod).volumeMounts).toContainEqual({
      name: 'cache-deps',
      mountPath: '/caches/deps',
      readOnly: false,
      subPath: 'acme/app',
    });
  });

  it('gives each runner its own writable ephemeral volume of the configured size', () => {
    const pod = buildRunnerPod(
      createAction(),
      runnerClass({
        ...sandboxed,
        caches: [
          {
            type: 'ephemeral',
            name: 'npm',
            size: '10Gi',
            storageClassName: 'fast',
            tools: ['npm'],
            mountPath: '/cache',
          },
        ],
      }),
    );
    expect(pod.spec?.volumes).toContainEqual({
      name: 'cache-npm',
      ephemeral: {
        volumeClaimTemplate: {
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: '10Gi' } },
            storageClassName: 'fast',
          },
        },
      },
    });
    expect(runnerContainer(pod).volumeMounts).toContainEqual({
      name: 'cache-npm',
      mountPath: '/cache',
      readOnly: false,
    });
    expect(envOf(pod)).toMatchObject({ npm_config_cache: '/cache/npm' });
    expect(envOf(pod)).not.toHaveProperty('PIP_CACHE_DIR');
  });

  it('lets the class’s own environment win over the cache defaults', () => {
    const pod = buildRunnerPod(
      createAction(),
      runnerClass({ caches: [shared], env: { GOCACHE: '/tmp/go', TZ: 'UTC' } }),
    );
    const env = runnerContainer(pod).env ?? [];
    expect(env.filter((e) => e.name === 'GOCACHE')).toEqual([{ name: 'GOCACHE', value: '/tmp/go' }]);
    expect(env.at(-1)).toEqual({ name: 'TZ', value: 'UTC' });
  });
});

describe('buildJitConfigSecret', () => {
  it('holds the encoded JIT config under the key the pod reads, labelled for its runner', () => {
    const create = createAction();
    const secret = buildJitConfigSecret(create, 'eyJqaXQiOiJjb25maWcifQ==');
    expect(secret).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      immutable: true,
      metadata: {
        name: `${create.runnerName}-jit`,
        namespace: 'ci-runners',
        labels: {
          'app.kubernetes.io/managed-by': 'gantry',
          'app.kubernetes.io/component': 'runner-jit-config',
          'gantry.dev/class': 'build',
          'gantry.dev/runner': create.runnerName,
        },
      },
    });
    const stored = secret.data?.[JIT_CONFIG_KEY] ?? '';
    expect(Buffer.from(stored, 'base64').toString('utf8')).toBe('eyJqaXQiOiJjb25maWcifQ==');
  });

  it('refuses an empty JIT config', () => {
    expect(() => buildJitConfigSecret(createAction(), '  ')).toThrow(
      /encodedJitConfig: expected the non-empty/,
    );
  });

  it('makes the pod the secret’s owner once the pod exists', () => {
    expect(runnerPodOwnerReference({ name: 'gantry-build-abc', uid: '5f0c-11' })).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'gantry-build-abc',
      uid: '5f0c-11',
      blockOwnerDeletion: false,
    });
    expect(() => runnerPodOwnerReference({ name: 'gantry-build-abc', uid: '' })).toThrow(/name and uid/);
  });
});

describe('buildRunnerPod: the class’s pod overrides', () => {
  const overrides = {
    imagePullPolicy: 'Always',
    imagePullSecrets: ['registry-creds'],
    serviceAccountName: 'ci-builder',
    volumes: [
      { name: 'tools', configMap: { name: 'ci-tools' } },
      { name: 'scratch', emptyDir: { sizeLimit: '2Gi' } },
    ],
    volumeMounts: [{ name: 'tools', mountPath: '/opt/tools', readOnly: true, subPath: 'bin' }],
    initContainers: [{ name: 'warm', image: 'busybox:1', command: ['sh', '-c', 'true'] }],
    sidecars: [
      {
        name: 'proxy',
        image: 'registry.example.com/proxy:1',
        imagePullPolicy: 'IfNotPresent',
        args: ['--listen', ':3128'],
        env: { ZONE: 'b', PORT: 3128 },
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '64Mi' } },
        securityContext: { readOnlyRootFilesystem: true },
        volumeMounts: [{ name: 'scratch', mountPath: '/cache' }],
        startupProbe: { tcpSocket: { port: 3128 }, periodSeconds: 1 },
      },
    ],
    topologySpreadConstraints: [
      { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: { matchLabels: { team: 'web' } },
      },
    ],
    hostAliases: [{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }],
    dnsPolicy: 'None',
    dnsConfig: { nameservers: ['10.0.0.53'], options: [{ name: 'ndots', value: '2' }] },
  };

  it('adds every override around the runner container, and nothing when none is set', () => {
    const pod = buildRunnerPod(createAction(), runnerClass(overrides));
    expect(pod.spec).toMatchObject({
      imagePullSecrets: [{ name: 'registry-creds' }],
      serviceAccountName: 'ci-builder',
      // A named service account still mounts no token unless the class asks.
      automountServiceAccountToken: false,
      hostAliases: [{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }],
      dnsPolicy: 'None',
      dnsConfig: { nameservers: ['10.0.0.53'], options: [{ name: 'ndots', value: '2' }] },
      topologySpreadConstraints: [
        {
          maxSkew: 2,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'ScheduleAnyway',
          // Without a selector a constraint counts no pods: it counts the class's runners.
          labelSelector: { matchLabels: { 'gantry.dev/class': 'build' } },
        },
        { maxSkew: 1, labelSelector: { matchLabels: { team: 'web' } } },
      ],
    });
    expect(pod.spec?.volumes?.map((v) => v.name)).toEqual(['work', 'tools', 'scratch']);
    expect(pod.spec?.volumes?.[1]).toEqual({ name: 'tools', configMap: { name: 'ci-tools' } });
    const runner = runnerContainer(pod);
    expect(runner.imagePullPolicy).toBe('Always');
    expect(runner.volumeMounts).toEqual([
      { name: 'work', mountPath: '/home/runner/_work' },
      { name: 'tools', mountPath: '/opt/tools', readOnly: true, subPath: 'bin' },
    ]);

    const bare = buildRunnerPod(createAction(), runnerClass()).spec ?? { containers: [] };
    for (const key of [
      'initContainers',
      'imagePullSecrets',
      'serviceAccountName',
      'topologySpreadConstraints',
      'hostAliases',
      'dnsPolicy',
      'dnsConfig',
    ]) {
      expect(Object.hasOwn(bare, key), key).toBe(false);
    }
    expect(
      Object.hasOwn(runnerContainer(buildRunnerPod(createAction(), runnerClass())), 'imagePullPolicy'),
    ).toBe(false);
  });

  it('runs init containers first, then sidecars as native sidecars, restricted where the class left it open', () => {
    const pod = buildRunnerPod(createAction(), runnerClass(overrides));
    expect(pod.spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['warm', undefined],
      ['proxy', 'Always'],
    ]);
    const [warm, proxy] = pod.spec?.initContainers ?? [];
    expect(warm).toEqual({
      name: 'warm',
      image: 'busybox:1',
      command: ['sh', '-c', 'true'],
      resources: {},
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    });
    expect(proxy).toEqual({
      name: 'proxy',
      image: 'registry.example.com/proxy:1',
      imagePullPolicy: 'IfNotPresent',
      args: ['--listen', ':3128'],
      env: [
        { name: 'PORT', value: '3128' },
        { name: 'ZONE', value: 'b' },
      ],
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '64Mi' } },
      securityContext: {
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      },
      volumeMounts: [{ name: 'scratch', mountPath: '/cache', readOnly: false }],
      startupProbe: { tcpSocket: { port: 3128 }, periodSeconds: 1 },
      restartPolicy: 'Always',
    });
    // The runner's JIT config is its own: no other container gets it.
    for (const container of pod.spec?.initContainers ?? []) {
      expect(JSON.stringify(container)).not.toContain('ACTIONS_RUNNER_INPUT_JITCONFIG');
    }
    expect(restrictedViolations(pod)).toEqual([]);
  });

  it('keeps a trusted class’s own security settings, and leaves privilege to Pod Security to judge', () => {
    const pod = buildRunnerPod(
      createAction(),
      runnerClass({
        mountServiceAccountToken: true,
        sidecars: [
          {
            name: 'dind',
            image: 'docker:dind',
            securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
          },
        ],
      }),
    );
    expect(pod.spec?.automountServiceAccountToken).toBe(true);
    // No allowPrivilegeEscalation: false beside privileged: true, which Kubernetes refuses.
    expect(pod.spec?.initContainers?.[0]?.securityContext).toEqual({
      privileged: true,
      runAsUser: 0,
      runAsNonRoot: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(restrictedViolations(pod)).toEqual([
      'container dind: privileged',
      'container dind: allowPrivilegeEscalation not false',
      'container dind: runAsNonRoot not true',
      'container dind: runAsUser 0',
    ]);
  });

  it('asks node autoscalers to leave a runner’s node alone unless the class says otherwise', () => {
    const protectedPod = buildRunnerPod(createAction(), runnerClass());
    expect(protectedPod.metadata?.annotations).toMatchObject({
      'karpenter.sh/do-not-disrupt': 'true',
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
    });
    const movable = buildRunnerPod(createAction(), runnerClass({ doNotDisrupt: false }));
    expect(
      Object.keys(movable.metadata?.annotations ?? {}).filter((k) => !k.startsWith('gantry.dev/')),
    ).toEqual([]);
  });

  it('limits the runner’s local disk by default, to the work folder and some room beside it', () => {
    const storage = (input: Record<string, unknown>) => {
      const { requests, limits } =
        runnerContainer(buildRunnerPod(createAction(), runnerClass(input))).resources ?? {};
      return [requests?.['ephemeral-storage'], limits?.['ephemeral-storage']];
    };
    expect(storage({})).toEqual(['1Gi', '30Gi']);
    expect(storage({ workspace: { sizeLimit: '50Gi' } })).toEqual(['1Gi', '60Gi']);
    expect(storage({ workspace: { sizeLimit: '1536Mi' } })).toEqual(['1Gi', '11776Mi']);
    // A request above the default limit raises the limit to it.
    expect(storage({ resources: { requests: { 'ephemeral-storage': '80Gi' } } })).toEqual(['80Gi', '80Gi']);
    // A limit the class sets is kept, and Kubernetes takes it as the request.
    expect(storage({ resources: { limits: { 'ephemeral-storage': '25Gi' } } })).toEqual([undefined, '25Gi']);
  });

  it('is deterministic and leaves the class untouched', () => {
    const config = runnerClass(overrides);
    const before = structuredClone(config);
    const first = buildRunnerPod(createAction(), config);
    first.spec?.initContainers?.[1]?.env?.push({ name: 'MUTATED', value: '1' });
    (first.spec?.volumes?.[1]?.configMap ?? {}).name = 'changed';
    expect(buildRunnerPod(createAction(), config)).toEqual(buildRunnerPod(createAction(), config));
    expect(config).toEqual(before);
  });
});
