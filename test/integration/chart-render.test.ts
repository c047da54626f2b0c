import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
      // The runner Roles carry the release's full name; the others a suffix (-leader-election, …).
      const roleNamespaces = objectsOfKind(objects, 'Role')
        .filter((role) => role.metadata.name === 'gantry')
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

  it('enforces another Pod Security level in a namespace that asks for it, never in the sandbox tier’s', () => {
    const classes = {
      build: { namespace: 'ci-docker', match: { github: { labels: ['build'] } } },
      forks: {
        namespace: 'ci-forks',
        untrusted: true,
        runnerGroup: 'forks',
        runtimeClassName: 'gvisor',
        match: { github: { labels: ['build'] } },
      },
    };
    const objects = manifests(
      render({
        values: {
          config: { classes },
          runnerNamespaces: { overrides: { 'ci-docker': { podSecurity: 'privileged' } } },
        },
      }),
    );
    const labelsOf = (name: string) =>
      objectsOfKind(objects, 'Namespace').find((n) => n.metadata.name === name)?.metadata.labels;
    expect(labelsOf('ci-docker')).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'privileged',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/audit': 'restricted',
    });
    expect(labelsOf('ci-forks')).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    expect(
      refused({
        config: { classes },
        runnerNamespaces: { overrides: { 'ci-forks': { podSecurity: 'baseline' } } },
      }),
    ).toContain(
      "runnerNamespaces.overrides.ci-forks.podSecurity: baseline in the namespace of class forks, which runs untrusted or sandboxed jobs; the sandbox tier's namespaces stay restricted",
    );
    expect(refused({ runnerNamespaces: { defaults: { podSecurity: 'open' } } })).toContain(
      "at '/runnerNamespaces/defaults/podSecurity': value must be one of 'restricted', 'baseline', 'privileged'",
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

describe('the Tekton queue', () => {
  interface Webhook {
    name: string;
    clientConfig: {
      service: { name: string; namespace: string; path: string; port: number };
      caBundle?: string;
    };
    rules: unknown[];
    namespaceSelector: unknown;
    failurePolicy: string;
    timeoutSeconds: number;
    [field: string]: unknown;
  }
  const webhooksOf = (objects: ChartObject[]) => {
    const configurations = objectsOfKind(objects, 'MutatingWebhookConfiguration');
    expect(configurations).toHaveLength(1);
    const [configuration] = configurations as (ChartObject & { webhooks: Webhook[] })[];
    if (!configuration) throw new Error('no MutatingWebhookConfiguration rendered');
    return configuration;
  };
  const named = (objects: ChartObject[], kind: string, name: string) =>
    objectsOfKind(objects, kind).filter((o) => o.metadata.name === name);
  const portsOf = (objects: ChartObject[]) => {
    const [service] = objectsOfKind(objects, 'Service') as (ChartObject & {
      spec: { ports: { name: string; port: number; targetPort: string }[] };
    })[];
    return {
      service: service?.spec.ports ?? [],
      container: deploymentOf(objects).spec?.template.spec?.containers[0]?.ports ?? [],
    };
  };
  const pipelineRunRules = [
    { apiGroups: ['tekton.dev'], resources: ['pipelineruns'], verbs: ['get', 'list', 'watch', 'patch'] },
  ];

  it('renders nothing of it while config.tekton.enabled is false', () => {
    for (const name of ['minimal', 'github', 'full'] as const) {
      const objects = renderFile(name);
      expect(objectsOfKind(objects, 'MutatingWebhookConfiguration'), name).toEqual([]);
      expect(objectsOfKind(objects, 'ClusterRole'), name).toEqual([]);
      expect(JSON.stringify(objects), name).not.toContain('tekton.dev');
      const { service, container } = portsOf(objects);
      expect(
        service.map((p) => p.name),
        name,
      ).toEqual(['http']);
      expect(
        container.map((p) => p.name),
        name,
      ).toEqual(['http']);
    }
  });

  it('holds new PipelineRuns of the configured namespaces through one webhook on Gantry’s Service', () => {
    const objects = renderFile('tekton-only');
    const configuration = webhooksOf(objects);
    expect(configuration.metadata.name).toBe('gantry');
    expect(configuration.metadata.annotations).toBeUndefined();
    expect(configuration.webhooks).toEqual([
      {
        name: 'pipelineruns.gantry.dev',
        admissionReviewVersions: ['v1'],
        // No caBundle: Gantry writes it, so the render is the same on every sync.
        clientConfig: {
          service: { name: 'gantry', namespace: 'gantry-system', path: '/admit/pipelineruns', port: 8443 },
        },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: ['tekton.dev'],
            apiVersions: ['v1'],
            resources: ['pipelineruns'],
            scope: 'Namespaced',
          },
        ],
        matchPolicy: 'Equivalent',
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ci-nightly', 'ci-pipelines'] },
          ],
        },
        failurePolicy: 'Ignore',
        timeoutSeconds: 5,
        sideEffects: 'None',
        reinvocationPolicy: 'Never',
      },
    ]);
    const { service, container } = portsOf(objects);
    expect(service).toContainEqual({ name: 'webhook', port: 8443, targetPort: 'webhook', protocol: 'TCP' });
    expect(container).toContainEqual({ name: 'webhook', containerPort: 8443, protocol: 'TCP' });
  });

  it('leaves out kube-system and its own namespace when every namespace is queued, and takes failurePolicy and timeout from values', () => {
    const objects = renderFile('tekton-cert-manager');
    const [webhook] = webhooksOf(objects).webhooks;
    expect(webhook?.namespaceSelector).toEqual({
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['gantry-system', 'kube-system'] },
      ],
    });
    expect(webhook?.failurePolicy).toBe('Fail');
    expect(webhook?.timeoutSeconds).toBe(10);
    expect(webhook?.clientConfig).toEqual({
      service: { name: 'gantry', namespace: 'gantry-system', path: '/admit/pipelineruns', port: 9443 },
    });
  });

  it('grants PipelineRuns per configured namespace, its own Secret and its own webhook configuration', () => {
    const objects = renderFile('tekton-only');
    const tekton = named(objects, 'Role', 'gantry-tekton');
    expect(tekton.map((r) => r.metadata.namespace)).toEqual(['ci-nightly', 'ci-pipelines']);
    for (const role of tekton) expect(role.rules).toEqual(pipelineRunRules);
    expect(named(objects, 'RoleBinding', 'gantry-tekton').map((b) => b.metadata.namespace)).toEqual([
      'ci-nightly',
      'ci-pipelines',
    ]);
    expect(named(objects, 'Role', 'gantry-webhook-tls')).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ namespace: 'gantry-system' }),
        rules: [
          {
            apiGroups: [''],
            resources: ['secrets'],
            resourceNames: ['gantry-webhook-tls'],
            verbs: ['get', 'update'],
          },
          { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        ],
      }),
    ]);
    // The one cluster-wide grant: its own webhook configuration, by name.
    expect(objectsOfKind(objects, 'ClusterRole')).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name: 'gantry-webhook-ca' }),
        rules: [
          {
            apiGroups: ['admissionregistration.k8s.io'],
            resources: ['mutatingwebhookconfigurations'],
            resourceNames: ['gantry'],
            verbs: ['get', 'update', 'patch'],
          },
        ],
      }),
    ]);
    for (const binding of [
      ...objectsOfKind(objects, 'ClusterRoleBinding'),
      ...objectsOfKind(objects, 'RoleBinding'),
    ]) {
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'gantry', namespace: 'gantry-system' },
      ]);
    }
    expect(objectsOfKind(objects, 'ClusterRoleBinding').map((b) => b.metadata.name)).toEqual([
      'gantry-webhook-ca',
    ]);
  });

  it('grants PipelineRuns cluster-wide when no namespace is listed, and nothing on Secrets or webhooks with cert-manager', () => {
    const objects = renderFile('tekton-cert-manager');
    expect(objectsOfKind(objects, 'ClusterRole')).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name: 'gantry-tekton' }),
        rules: pipelineRunRules,
      }),
    ]);
    expect(objectsOfKind(objects, 'ClusterRoleBinding').map((b) => b.metadata.name)).toEqual([
      'gantry-tekton',
    ]);
    expect(named(objects, 'Role', 'gantry-tekton')).toEqual([]);
    const rules = JSON.stringify(objectsOfKind(objects, 'Role').map((r) => r.rules));
    expect(rules).not.toContain('mutatingwebhookconfigurations');
    // Secrets only in the runner Roles (the JIT configs), none in the release namespace.
    expect(
      objectsOfKind(objects, 'Role')
        .filter((role) => JSON.stringify(role.rules).includes('secrets'))
        .map((role) => role.metadata.namespace),
    ).toEqual(['ci-sandboxed', 'gantry-runners']);
  });

  it('writes the names of its Service, Secret and webhook configuration into the config, self-managed', () => {
    const objects = renderFile('tekton-only');
    const { tekton } = parseConfig(configOf(objects));
    const [service] = objectsOfKind(objects, 'Service');
    const configuration = webhooksOf(objects);
    const [tlsRole] = named(objects, 'Role', 'gantry-webhook-tls') as (ChartObject & {
      rules: { resourceNames?: string[] }[];
    })[];
    const [caRole] = named(objects, 'ClusterRole', 'gantry-webhook-ca') as (ChartObject & {
      rules: { resourceNames?: string[] }[];
    })[];
    expect(tekton.enabled).toBe(true);
    expect(tekton.namespaces).toEqual(['ci-pipelines', 'ci-nightly']);
    expect(tekton.webhook.tls).toMatchObject({
      serviceName: service?.metadata.name,
      webhookConfigurationName: configuration.metadata.name,
      secretName: tlsRole?.rules[0]?.resourceNames?.[0],
    });
    expect(tekton.webhook.tls.certFile).toBeUndefined();
    expect(caRole?.rules[0]?.resourceNames).toEqual([configuration.metadata.name]);
    expect(configuration.webhooks[0]?.clientConfig.service.name).toBe(service?.metadata.name);
    expect(configuration.webhooks[0]?.clientConfig.service.port).toBe(tekton.webhook.port);
    // The pod mounts no certificate: Gantry keeps it in the Secret through the API.
    const volumes = deploymentOf(objects).spec?.template.spec?.volumes ?? [];
    expect(volumes.map((v) => v.name)).not.toContain('webhook-tls');
  });

  it('follows the release name, and honours a Secret name of the config', () => {
    const objects = manifests(
      render({
        release: 'ci',
        files: [valuesFile('tekton-only')],
        values: { config: { tekton: { webhook: { tls: { secretName: 'ci-admission-tls' } } } } },
      }),
    );
    const { tls } = parseConfig(configOf(objects)).tekton.webhook;
    expect(tls).toMatchObject({
      serviceName: 'ci-gantry',
      webhookConfigurationName: 'ci-gantry',
      secretName: 'ci-admission-tls',
    });
    expect(webhooksOf(objects).metadata.name).toBe('ci-gantry');
    expect(named(objects, 'Role', 'ci-gantry-webhook-tls')[0]?.rules).toContainEqual(
      expect.objectContaining({ resourceNames: ['ci-admission-tls'] }),
    );
  });

  it('with cert-manager: a self-signed Issuer, a Certificate for the Service, mounted where the config points, CA injected', () => {
    const objects = renderFile('tekton-cert-manager');
    const { tekton } = parseConfig(configOf(objects));
    const [issuer] = objectsOfKind(objects, 'Issuer');
    const [certificate] = objectsOfKind(objects, 'Certificate') as (ChartObject & {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } };
    })[];
    expect(issuer).toMatchObject({
      apiVersion: 'cert-manager.io/v1',
      metadata: { name: 'gantry-webhook-selfsigned', namespace: 'gantry-system' },
      spec: { selfSigned: {} },
    });
    expect(certificate?.apiVersion).toBe('cert-manager.io/v1');
    expect(certificate?.metadata).toMatchObject({ name: 'gantry-webhook', namespace: 'gantry-system' });
    expect(certificate?.spec.dnsNames).toEqual([
      'gantry.gantry-system.svc',
      'gantry.gantry-system.svc.cluster.local',
    ]);
    expect(certificate?.spec.issuerRef).toMatchObject({ name: 'gantry-webhook-selfsigned', kind: 'Issuer' });
    const configuration = webhooksOf(objects);
    expect(configuration.metadata.annotations).toEqual({
      'cert-manager.io/inject-ca-from': 'gantry-system/gantry-webhook',
    });
    expect(configuration.webhooks[0]?.clientConfig.caBundle).toBeUndefined();

    const pod = deploymentOf(objects).spec?.template.spec;
    const container = pod?.containers[0];
    const mount = container?.volumeMounts?.find((m) => m.name === 'webhook-tls');
    const volume = pod?.volumes?.find((v) => v.name === 'webhook-tls');
    expect(mount?.readOnly).toBe(true);
    expect(volume?.secret?.secretName).toBe(certificate?.spec.secretName);
    const files = (volume?.secret?.items ?? []).map((item) => `${mount?.mountPath}/${item.path}`);
    expect(files).toEqual([tekton.webhook.tls.certFile, tekton.webhook.tls.keyFile]);
    expect(volume?.secret?.items?.map((item) => item.key)).toEqual(['tls.crt', 'tls.key']);
    const { service, container: ports } = portsOf(objects);
    expect(service).toContainEqual({ name: 'webhook', port: 9443, targetPort: 'webhook', protocol: 'TCP' });
    expect(ports).toContainEqual({ name: 'webhook', containerPort: tekton.webhook.port, protocol: 'TCP' });
    expect(tekton.webhook.port).toBe(9443);
  });

  it('renders the Argo CD example, which ignores exactly the caBundle the chart leaves to the cluster', () => {
    const application = parseYaml(
      readFileSync(join(CHART_DIR, 'examples/argocd-application.yaml'), 'utf8'),
    ) as {
      spec: {
        source: { helm: { releaseName: string; valuesObject: unknown } };
        destination: { namespace: string };
        ignoreDifferences: { group: string; kind: string; jsonPointers: string[] }[];
      };
    };
    const { source, destination, ignoreDifferences } = application.spec;
    const objects = manifests(
      render({
        release: source.helm.releaseName,
        namespace: destination.namespace,
        values: source.helm.valuesObject,
      }),
    );
    expect(() => parseConfig(configOf(objects))).not.toThrow();
    const configuration = webhooksOf(objects);
    expect(ignoreDifferences).toEqual([
      {
        group: configuration.apiVersion?.split('/')[0],
        kind: configuration.kind,
        jsonPointers: ['/webhooks/0/clientConfig/caBundle'],
      },
    ]);
    expect(configuration.webhooks).toHaveLength(1);
    expect(configuration.webhooks[0]?.clientConfig).not.toHaveProperty('caBundle');
  });

  describe('bad values', () => {
    const tektonOn = (tekton: Record<string, unknown> = {}, chart: Record<string, unknown> = {}) => ({
      ...chart,
      config: { tekton: { enabled: true, ...tekton } },
    });
    const refused = (values: unknown): string => {
      const result = tryRender({ values });
      expect(result.code, result.stdout).not.toBe(0);
      return result.stderr;
    };

    it('refuses a failurePolicy or timeout the apiserver would not take, naming the key', () => {
      expect(refused(tektonOn({}, { tekton: { webhook: { failurePolicy: 'Sometimes' } } }))).toContain(
        "at '/tekton/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'",
      );
      expect(refused(tektonOn({}, { tekton: { webhook: { timeoutSeconds: 31 } } }))).toContain(
        "at '/tekton/webhook/timeoutSeconds': maximum: got 31, want 30",
      );
      expect(refused(tektonOn({}, { tekton: { webhook: { certManger: { enabled: true } } } }))).toContain(
        "at '/tekton/webhook': additional properties 'certManger' not allowed",
      );
    });

    it('refuses names the chart sets, and certificate files it does not mount', () => {
      expect(refused(tektonOn({ webhook: { tls: { serviceName: 'other' } } }))).toContain(
        'config.tekton.webhook.tls.serviceName: leave it out; the chart sets it',
      );
      expect(refused(tektonOn({ webhook: { tls: { webhookConfigurationName: 'other' } } }))).toContain(
        'config.tekton.webhook.tls.webhookConfigurationName: leave it out',
      );
      expect(
        refused(tektonOn({ webhook: { tls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' } } })),
      ).toContain('config.tekton.webhook.tls.certFile: the chart mounts no certificate files');
      expect(
        refused(
          tektonOn(
            { webhook: { tls: { extraHosts: ['gantry.example'] } } },
            {
              tekton: { webhook: { certManager: { enabled: true } } },
            },
          ),
        ),
      ).toContain(
        'config.tekton.webhook.tls.extraHosts: leave it out; with tekton.webhook.certManager.enabled',
      );
    });

    it('refuses a webhook port of 0 or the HTTP port', () => {
      expect(refused(tektonOn({ webhook: { port: 0 } }))).toContain(
        'config.tekton.webhook.port: expected a fixed port',
      );
      expect(refused(tektonOn({ webhook: { port: 8080 } }))).toContain(
        'config.tekton.webhook.port: 8080 is config.http.port too',
      );
    });
  });
});
