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
  readValues,
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
    // One per runner namespace, and Gantry's own.
    expect(kinds('NetworkPolicy')).toEqual([...runnerNamespaces, 'gantry-system'].sort());
    // ci-release turns its LimitRange off.
    expect(kinds('LimitRange')).toEqual(['ci-runners', 'ci-untrusted']);
    for (const kind of ['Deployment', 'ServiceAccount', 'ConfigMap', 'PodDisruptionBudget']) {
      expect(kinds(kind), kind).toEqual(['gantry-system']);
    }
    // The main Service, and the webhook listener's.
    expect(objectsOfKind(objects, 'Service').map((o) => o.metadata.name)).toEqual([
      'gantry',
      'gantry-webhook',
    ]);
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
    const policy = objectsOfKind(renderFile('github'), 'NetworkPolicy').find(
      (o) => o.metadata.namespace !== 'gantry-system',
    );
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
    expect(v4?.except).toEqual([
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      '100.64.0.0/10',
      '169.254.0.0/16',
      '127.0.0.0/8',
      '0.0.0.0/8',
      '192.0.0.0/24',
      '198.18.0.0/15',
      '240.0.0.0/4',
    ]);
    // Unique local (with the clouds' IPv6 metadata addresses), link-local, and NAT64, which reaches IPv4.
    expect(blocks.find((block) => block.cidr === '::/0')?.except).toEqual([
      'fc00::/7',
      'fe80::/10',
      '64:ff9b::/96',
      '64:ff9b:1::/48',
    ]);
    // Only the cluster DNS is reachable inside, and no NodeLocal DNS unless configured.
    expect(blocks.map((block) => block.cidr)).toEqual(['0.0.0.0/0', '::/0']);
  });

  it('denies the cluster’s own ranges given in values, each in its family, and allows NodeLocal DNS when configured', () => {
    const objects = manifests(
      render({
        files: [valuesFile('github')],
        values: {
          runnerNamespaces: {
            defaults: {
              networkPolicy: {
                clusterCIDRs: ['2600:1f14:abc::/56', '34.118.224.0/20'],
                dns: { nodeLocal: { enabled: true } },
              },
            },
            overrides: {
              'gantry-runners': { networkPolicy: { dns: { nodeLocal: { address: 'fd00::a' } } } },
            },
          },
        },
      }),
    );
    // The runner namespace's (Gantry's own pods have one too, in the release namespace).
    const policy = objectsOfKind(objects, 'NetworkPolicy').find(
      (o) => o.metadata.namespace === 'gantry-runners',
    );
    if (!policy) throw new Error('no NetworkPolicy rendered');
    const { egress } = policy.spec as {
      egress: { to: { ipBlock?: { cidr: string; except?: string[] } }[]; ports?: unknown }[];
    };
    const blocks = egress.flatMap((rule) => rule.to.flatMap((peer) => (peer.ipBlock ? [peer.ipBlock] : [])));
    expect(blocks.find((block) => block.cidr === '0.0.0.0/0')?.except?.at(-1)).toBe('34.118.224.0/20');
    expect(blocks.find((block) => block.cidr === '::/0')?.except?.at(-1)).toBe('2600:1f14:abc::/56');
    expect(egress.at(-1)).toEqual({
      to: [{ ipBlock: { cidr: 'fd00::a/128' } }],
      ports: [
        { port: 53, protocol: 'UDP' },
        { port: 53, protocol: 'TCP' },
      ],
    });
    const defaultAddress = manifests(
      render({
        files: [valuesFile('github')],
        values: {
          runnerNamespaces: { defaults: { networkPolicy: { dns: { nodeLocal: { enabled: true } } } } },
        },
      }),
    );
    expect(JSON.stringify(objectsOfKind(defaultAddress, 'NetworkPolicy'))).toContain(
      '"cidr":"169.254.20.10/32"',
    );
    const bad = tryRender({
      values: { runnerNamespaces: { defaults: { networkPolicy: { clusterCIDRs: ['fd00::/200'] } } } },
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('/runnerNamespaces/defaults/networkPolicy/clusterCIDRs/0');
  });

  it('opens Gantry’s own pods port by port, to what the values name', () => {
    const own = (objects: ChartObject[]) =>
      objectsOfKind(objects, 'NetworkPolicy').find((o) => o.metadata.namespace === 'gantry-system') as
        | (ChartObject & { spec: { policyTypes: string[]; ingress: unknown[] } })
        | undefined;
    const full = own(renderFile('full'));
    expect(full?.spec.policyTypes).toEqual(['Ingress']);
    expect(full?.spec.ingress).toEqual([
      { ports: [{ port: 'http', protocol: 'TCP' }], from: [{ namespaceSelector: {} }] },
      { ports: [{ port: 'github-webhook', protocol: 'TCP' }] },
    ]);
    const narrowed = own(
      manifests(
        render({
          values: {
            ...readValues('full'),
            networkPolicy: {
              webhookFrom: [
                { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress' } } },
              ],
            },
          },
        }),
      ),
    );
    expect(narrowed?.spec.ingress[1]).toEqual({
      ports: [{ port: 'github-webhook', protocol: 'TCP' }],
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress' } } }],
    });
    expect(
      own(manifests(render({ values: { ...readValues('full'), networkPolicy: { enabled: false } } }))),
    ).toBeUndefined();
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

    expect(container?.ports).toEqual([
      { name: 'http', containerPort: config.http.port, protocol: 'TCP' },
      { name: 'github-webhook', containerPort: config.github.webhook.port, protocol: 'TCP' },
    ]);
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
    // create cannot be limited by name; reading and renewing can.
    expect(leases?.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['gantry-leader'],
        verbs: ['get', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    const renamed = manifests(render({ values: { config: { election: { leaseName: 'ci-leader' } } } }));
    expect(
      objectsOfKind(renamed, 'Role').find((role) => role.metadata.name.endsWith('-leader-election'))?.rules,
    ).toContainEqual(expect.objectContaining({ resourceNames: ['ci-leader'] }));

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

  it('refuses to leave runner namespaces it does not create without Pod Security, until told they have it', () => {
    const existing = { ...oneClass({ namespace: 'ci-runners' }), runnerNamespaces: { create: false } };
    const message = refused(existing);
    expect(message).toContain(
      'runnerNamespaces.create is false, so the chart cannot label the runner namespaces (ci-runners) for Pod Security "restricted"',
    );
    expect(message).toContain('kubectl label namespace NAME pod-security.kubernetes.io/enforce=restricted');
    expect(message).toContain('runnerNamespaces.podSecurityConfirmed: true');
    const confirmed = manifests(
      render({ values: { ...existing, runnerNamespaces: { create: false, podSecurityConfirmed: true } } }),
    );
    expect(objectsOfKind(confirmed, 'Namespace')).toEqual([]);
    expect(objectsOfKind(confirmed, 'Role').map((role) => role.metadata.namespace)).toContain('ci-runners');
    // No class, no runner namespace: nothing to label.
    expect(tryRender({ values: { runnerNamespaces: { create: false } } }).code).toBe(0);
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
      const webhook = name === 'full' ? ['github-webhook'] : [];
      expect(
        service.map((p) => p.name),
        name,
      ).toEqual(['http']);
      expect(
        container.map((p) => p.name),
        name,
      ).toEqual(['http', ...webhook]);
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
            verbs: ['get', 'update'],
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

  it('keeps the queue Gantry’s with an admission policy over the same namespaces as the webhook', () => {
    for (const name of ['tekton-only', 'tekton-cert-manager'] as const) {
      const objects = renderFile(name);
      const [policy] = named(objects, 'ValidatingAdmissionPolicy', 'gantry-tekton-queue') as (ChartObject & {
        spec: {
          failurePolicy: string;
          matchConstraints: { matchPolicy: string; resourceRules: unknown[] };
          matchConditions: { expression: string }[];
          validations: { expression: string; reason: string; message: string }[];
        };
      })[];
      expect(policy?.spec.failurePolicy, name).toBe('Fail');
      expect(policy?.spec.matchConstraints).toEqual({
        matchPolicy: 'Equivalent',
        resourceRules: [
          {
            apiGroups: ['tekton.dev'],
            apiVersions: ['v1'],
            resources: ['pipelineruns'],
            operations: ['UPDATE'],
          },
        ],
      });
      // Everyone but Gantry's own account; the status subresource (Tekton's writes) is not matched.
      expect(policy?.spec.matchConditions.map((c) => c.expression)).toEqual([
        'request.userInfo.username != "system:serviceaccount:gantry-system:gantry"',
      ]);
      expect(policy?.spec.validations.map((v) => v.reason)).toEqual(['Forbidden', 'Forbidden']);
      const [binding] = named(objects, 'ValidatingAdmissionPolicyBinding', 'gantry-tekton-queue');
      expect(binding?.spec).toEqual({
        policyName: 'gantry-tekton-queue',
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: webhooksOf(objects).webhooks[0]?.namespaceSelector },
      });
    }
    expect(objectsOfKind(renderFile('github'), 'ValidatingAdmissionPolicy')).toEqual([]);
  });

  it('self-managed: lets Gantry change only the caBundle of its webhook configuration, by an admission policy', () => {
    const objects = renderFile('tekton-only');
    const [policy] = named(
      objects,
      'ValidatingAdmissionPolicy',
      'gantry-webhook-cabundle-only',
    ) as (ChartObject & {
      spec: {
        matchConstraints: { resourceRules: { resourceNames: string[]; operations: string[] }[] };
        matchConditions: { expression: string }[];
        validations: { message: string }[];
      };
    })[];
    expect(policy?.spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({ resourceNames: [webhooksOf(objects).metadata.name], operations: ['UPDATE'] }),
    ]);
    expect(policy?.spec.matchConditions.map((c) => c.expression)).toEqual([
      'request.userInfo.username == "system:serviceaccount:gantry-system:gantry"',
    ]);
    expect(named(objects, 'ValidatingAdmissionPolicyBinding', 'gantry-webhook-cabundle-only')).toHaveLength(
      1,
    );
    // With cert-manager Gantry has no right on the configuration, so nothing to confine.
    const certManager = renderFile('tekton-cert-manager');
    expect(named(certManager, 'ValidatingAdmissionPolicy', 'gantry-webhook-cabundle-only')).toEqual([]);
  });

  it('takes the webhook certificate from cert-manager unless told otherwise', () => {
    const objects = manifests(render({ values: { config: { tekton: { enabled: true } } } }));
    expect(objectsOfKind(objects, 'Certificate').map((c) => c.metadata.name)).toEqual(['gantry-webhook']);
    expect(parseConfig(configOf(objects)).tekton.webhook.tls.certFile).toBe(
      '/etc/gantry/secrets/webhook-tls/tls.crt',
    );
    expect(JSON.stringify(objectsOfKind(objects, 'ClusterRole'))).not.toContain(
      'mutatingwebhookconfigurations',
    );
    expect(named(objects, 'Role', 'gantry-webhook-tls')).toEqual([]);
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
        refused(
          tektonOn(
            { webhook: { tls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' } } },
            { tekton: { webhook: { certManager: { enabled: false } } } },
          ),
        ),
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
