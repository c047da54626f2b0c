import type { V1Container, V1Deployment, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import {
  CHART_DIR,
  type ChartObject,
  helm,
  KUBE_VERSION,
  manifests,
  objectsOfKind,
  render,
  tryRender,
  VALUES_FILES,
  valuesFile,
} from '../support/chart.ts';

// The chart as helm sees it, with no cluster: lint, rendering, the values schema, and the config the
// rendered ConfigMap hands to Gantry. test/integration/chart-apply.test.ts creates the objects.

function renderFile(name: (typeof VALUES_FILES)[number]): ChartObject[] {
  return manifests(render({ files: [valuesFile(name)] }));
}

function configOf(objects: ChartObject[]): unknown {
  const [configMap] = objectsOfKind(objects, 'ConfigMap');
  const text = (configMap?.data as Record<string, string> | undefined)?.['config.yaml'];
  if (text === undefined) throw new Error('no ConfigMap with config.yaml was rendered');
  return parseYaml(text);
}

function deploymentOf(objects: ChartObject[]): V1Deployment {
  const [deployment] = objectsOfKind(objects, 'Deployment');
  if (!deployment) throw new Error('no Deployment was rendered');
  return deployment as V1Deployment;
}

function podSpecsOf(objects: ChartObject[]): V1PodSpec[] {
  return objects.flatMap((object) => {
    const spec = (object as { spec?: { template?: { spec?: V1PodSpec } } }).spec;
    return spec?.template?.spec ? [spec.template.spec] : [];
  });
}

describe('helm lint --strict', () => {
  it.each(VALUES_FILES)('passes with the %s values', (name) => {
    const result = helm([
      'lint',
      '--strict',
      CHART_DIR,
      '--kube-version',
      KUBE_VERSION,
      '--values',
      valuesFile(name),
    ]);
    expect(result.stdout + result.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(result.code).toBe(0);
  });
});

describe('helm template', () => {
  it.each(VALUES_FILES)('renders the %s values byte for byte the same twice', (name) => {
    const first = render({ files: [valuesFile(name)] });
    const second = render({ files: [valuesFile(name)] });
    expect(first.length).toBeGreaterThan(0);
    expect(second).toBe(first);
  });

  it('renders the objects of a full install, per runner namespace where they belong', () => {
    const objects = renderFile('full');
    const kinds = (kind: string) =>
      objectsOfKind(objects, kind)
        .map((o) => o.metadata.namespace ?? o.metadata.name)
        .sort();
    const runnerNamespaces = ['ci-release', 'ci-runners', 'ci-untrusted'];
    expect(kinds('Namespace')).toEqual(runnerNamespaces);
    expect(kinds('Role')).toEqual(runnerNamespaces);
    expect(kinds('RoleBinding')).toEqual(runnerNamespaces);
    expect(kinds('ResourceQuota')).toEqual(runnerNamespaces);
    expect(kinds('NetworkPolicy')).toEqual(runnerNamespaces);
    // ci-release turns its LimitRange off.
    expect(kinds('LimitRange')).toEqual(['ci-runners', 'ci-untrusted']);
    for (const kind of ['Deployment', 'ServiceAccount', 'Service', 'ConfigMap', 'PodDisruptionBudget']) {
      expect(kinds(kind), kind).toEqual(['gantry-system']);
    }
    expect(objectsOfKind(objects, 'ClusterRole')).toEqual([]);
    expect(objectsOfKind(objects, 'Secret')).toEqual([]);
  });

  it('merges per-namespace overrides over the defaults, lists replaced, false kept', () => {
    const objects = renderFile('full');
    const inNamespace = (kind: string, namespace: string) =>
      objectsOfKind(objects, kind).find((o) => o.metadata.namespace === namespace) as
        | (ChartObject & { spec: Record<string, unknown> })
        | undefined;
    expect(inNamespace('ResourceQuota', 'ci-release')?.spec.hard).toEqual({
      pods: '4',
      'requests.cpu': '16',
      'requests.memory': '64Gi',
      'limits.memory': '512Gi',
    });
    const egressTo = (namespace: string) =>
      JSON.stringify((inNamespace('NetworkPolicy', namespace)?.spec.egress as unknown[]) ?? []);
    expect(egressTo('ci-runners')).toContain('caches');
    expect(egressTo('ci-untrusted')).not.toContain('caches');
  });

  it('gives runner namespaces Pod Security "restricted", enforced', () => {
    for (const namespace of objectsOfKind(renderFile('full'), 'Namespace')) {
      expect(namespace.metadata.labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
        'example.com/purpose': 'ci',
      });
    }
  });

  it('grants per runner namespace exactly the verbs Gantry uses, and nothing cluster-wide', () => {
    const objects = renderFile('github');
    const [role] = objectsOfKind(objects, 'Role');
    expect(role?.metadata.namespace).toBe('gantry-runners');
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get'] },
      { apiGroups: [''], resources: ['resourcequotas'], verbs: ['list', 'watch'] },
    ]);
    const [binding] = objectsOfKind(objects, 'RoleBinding');
    expect(binding?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'gantry', namespace: 'gantry-system' },
    ]);
  });

  it('denies runner pods the cluster ranges and the metadata endpoint, and allows the internet', () => {
    const [policy] = objectsOfKind(renderFile('github'), 'NetworkPolicy');
    const spec = policy?.spec as {
      podSelector: unknown;
      policyTypes: string[];
      ingress?: unknown;
      egress: { to: { ipBlock?: { cidr: string; except?: string[] } }[] }[];
    };
    expect(spec.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/managed-by': 'gantry', 'app.kubernetes.io/component': 'runner' },
    });
    expect(spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(spec.ingress).toBeUndefined();
    const blocks = spec.egress.flatMap((rule) =>
      rule.to.flatMap((peer) => (peer.ipBlock ? [peer.ipBlock] : [])),
    );
    const v4 = blocks.find((block) => block.cidr === '0.0.0.0/0');
    expect(v4?.except).toEqual(
      expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']),
    );
    expect(blocks.find((block) => block.cidr === '::/0')?.except).toEqual(['fc00::/7', 'fe80::/10']);
  });

  it('gives every pod template requests, limits and the restricted security settings', () => {
    for (const name of VALUES_FILES) {
      for (const spec of podSpecsOf(renderFile(name))) {
        expect(spec.securityContext).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        const containers: V1Container[] = [...spec.containers, ...(spec.initContainers ?? [])];
        for (const container of containers) {
          expect(container.resources?.requests, `${name}: ${container.name}`).toMatchObject({
            cpu: expect.anything(),
            memory: expect.anything(),
          });
          expect(container.resources?.limits, `${name}: ${container.name}`).toMatchObject({
            memory: expect.anything(),
          });
          expect(container.securityContext).toMatchObject({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          });
        }
        expect(spec.hostNetwork ?? false).toBe(false);
        expect((spec.volumes ?? []).filter((volume) => volume.hostPath)).toEqual([]);
      }
    }
  });

  it('rolls the Deployment when, and only when, the config changes', () => {
    const checksum = (values: unknown) =>
      deploymentOf(manifests(render({ files: [valuesFile('github')], values }))).spec?.template.metadata
        ?.annotations?.['checksum/config'];
    const base = checksum({});
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(
      checksum({ resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '1Gi' } } }),
    ).toBe(base);
    expect(checksum({ config: { log: { level: 'debug' } } })).not.toBe(base);
  });

  it('renders replicas from values, two by default', () => {
    expect(deploymentOf(renderFile('minimal')).spec?.replicas).toBe(2);
    const paused = deploymentOf(manifests(render({ values: { replicaCount: 0 } })));
    expect(paused.spec?.replicas).toBe(0);
    expect(paused.spec?.strategy).toEqual({ type: 'Recreate' });
  });
});

describe('the rendered ConfigMap', () => {
  it.each(VALUES_FILES)('is a config Gantry’s loader accepts (%s values)', (name) => {
    expect(() => parseConfig(configOf(renderFile(name)), name)).not.toThrow();
  });

  it('points Gantry at the mounted Secrets, on the port the probes and the Service use', () => {
    const objects = renderFile('full');
    const config = parseConfig(configOf(objects));
    const pod = deploymentOf(objects).spec?.template.spec;
    const container = pod?.containers[0];
    const mountedFile = (volumeName: string) => {
      const mount = container?.volumeMounts?.find((m) => m.name === volumeName);
      const volume = pod?.volumes?.find((v) => v.name === volumeName);
      const item = volume?.secret?.items?.[0];
      return {
        path: `${mount?.mountPath}/${item?.path}`,
        secret: volume?.secret?.secretName,
        key: item?.key,
      };
    };
    expect(config.github.auth).toMatchObject({
      kind: 'app',
      privateKeyPath: mountedFile('github-auth').path,
    });
    expect(mountedFile('github-auth')).toMatchObject({ secret: 'gantry-github-app', key: 'app.pem' });
    expect(config.github.webhook.secretPath).toBe(mountedFile('webhook').path);
    expect(mountedFile('webhook')).toMatchObject({ secret: 'gantry-github-webhook', key: 'secret' });

    expect(container?.ports).toEqual([{ name: 'http', containerPort: config.http.port, protocol: 'TCP' }]);
    expect(container?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container?.args).toEqual(['--config', '/etc/gantry/config/config.yaml']);
    const configVolume = pod?.volumes?.find((v) => v.name === 'config');
    expect(configVolume?.configMap?.name).toBe(objectsOfKind(objects, 'ConfigMap')[0]?.metadata.name);
  });

  it('names the same runner namespaces the chart grants, Gantry’s default included', () => {
    for (const name of VALUES_FILES) {
      const objects = renderFile(name);
      const config = parseConfig(configOf(objects));
      const classNamespaces = [...new Set(Object.values(config.classes).map((c) => c.namespace))].sort();
      const roleNamespaces = objectsOfKind(objects, 'Role')
        .filter((role) => !role.metadata.name.endsWith('-leader-election'))
        .map((role) => role.metadata.namespace);
      expect(roleNamespaces, name).toEqual(classNamespaces);
    }
  });

  it('uses tokenPath for a personal access token', () => {
    const objects = manifests(
      render({
        values: {
          secrets: { githubAuth: { existingSecret: 'pat' } },
          config: { github: { enabled: true, auth: { kind: 'token' }, repositories: ['acme/app'] } },
        },
      }),
    );
    expect(parseConfig(configOf(objects)).github.auth).toEqual({
      kind: 'token',
      tokenPath: '/etc/gantry/secrets/github-auth/token',
    });
  });
});

describe('bad values', () => {
  const oneClass = (extra: Record<string, unknown> = {}) => ({
    config: { classes: { lint: { match: { github: { labels: ['lint'] } }, ...extra } } },
  });
  const refused = (values: unknown): string => {
    const result = tryRender({ values });
    expect(result.code, result.stdout).not.toBe(0);
    return result.stderr;
  };

  it('refuses an unknown key, naming it and where it is', () => {
    expect(refused(oneClass({ maxRunner: 3 }))).toContain(
      "at '/config/classes/lint': additional properties 'maxRunner' not allowed",
    );
    expect(refused({ replicas: 2 })).toContain("at '': additional properties 'replicas' not allowed");
    expect(refused({ runnerNamespaces: { defaults: { resourceQuota: { hrad: {} } } } })).toContain(
      "at '/runnerNamespaces/defaults/resourceQuota': additional properties 'hrad' not allowed",
    );
  });

  it('refuses negative limits and counts', () => {
    expect(refused(oneClass({ maxRunners: -1 }))).toContain(
      "at '/config/classes/lint/maxRunners': minimum: got -1, want 0",
    );
    expect(refused(oneClass({ resources: { limits: { memory: '-1Gi' } } }))).toContain(
      "at '/config/classes/lint/resources/limits/memory': '-1Gi' does not match pattern",
    );
    expect(refused(oneClass({ resources: { requests: { cpu: -2 } } }))).toContain(
      "at '/config/classes/lint/resources/requests/cpu': minimum: got -2, want 0",
    );
    expect(
      refused({ runnerNamespaces: { defaults: { resourceQuota: { hard: { pods: '-5' } } } } }),
    ).toContain("at '/runnerNamespaces/defaults/resourceQuota/hard/pods': '-5' does not match pattern");
    expect(refused(oneClass({ idleTimeout: 'soon' }))).toContain(
      "at '/config/classes/lint/idleTimeout': 'soon' does not match pattern",
    );
  });

  it('refuses bad names', () => {
    expect(
      refused({ config: { classes: { Lint_Jobs: { match: { github: { labels: ['x'] } } } } } }),
    ).toContain("at '/config/classes': additional properties 'Lint_Jobs' not allowed");
    expect(refused(oneClass({ namespace: 'CI_Runners' }))).toContain(
      "at '/config/classes/lint/namespace': 'CI_Runners' does not match pattern",
    );
    expect(refused({ secrets: { webhook: { existingSecret: 'Not A Name' } } })).toContain(
      "at '/secrets/webhook/existingSecret'",
    );
  });

  it('elects a leader when there is more than one replica, and refuses two replicas without election', () => {
    const objects = manifests(render({ values: { replicaCount: 2 } }));
    expect(parseConfig(configOf(objects)).election).toMatchObject({
      enabled: true,
      namespace: 'gantry-system',
    });
    const deployment = deploymentOf(objects);
    expect(deployment.spec?.strategy?.type).toBe('RollingUpdate');
    const container = deployment.spec?.template.spec?.containers[0];
    expect(container?.env).toContainEqual({
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    const leases = objectsOfKind(objects, 'Role').find((role) =>
      role.metadata.name.endsWith('-leader-election'),
    );
    expect(leases?.metadata.namespace).toBe('gantry-system');
    expect(leases?.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);

    const single = manifests(render({ values: { replicaCount: 1 } }));
    expect(deploymentOf(single).spec?.strategy?.type).toBe('Recreate');
    expect(
      objectsOfKind(single, 'Role').some((role) => role.metadata.name.endsWith('-leader-election')),
    ).toBe(false);

    expect(refused({ replicaCount: 2, config: { election: { enabled: false } } })).toContain(
      'replicaCount is above 1 but config.election.enabled is false',
    );
  });

  it('refuses credentials in values, which would land in the ConfigMap', () => {
    expect(
      refused({
        config: { github: { auth: { kind: 'app', appId: 1, installationId: 2, privateKey: 'PEM' } } },
      }),
    ).toContain('config.github.auth.privateKey would be stored in a ConfigMap');
    expect(refused({ config: { github: { webhook: { secret: 's3cret' } } } })).toContain(
      'config.github.webhook.secret would be stored in a ConfigMap',
    );
  });

  it('refuses runner pods in the release namespace and overrides for no class', () => {
    expect(refused(oneClass({ namespace: 'gantry-system' }))).toContain(
      'config.classes.lint.namespace: gantry-system is the release namespace',
    );
    expect(
      refused({ runnerNamespaces: { overrides: { nope: { limitRange: { enabled: false } } } } }),
    ).toContain('runnerNamespaces.overrides.nope: no class of config.classes uses this namespace');
  });
});
