import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { classesSchema } from '../../../src/classes/schema.ts';

// The pod overrides a class may set: checked key by key with the key named, and on the sandbox tier
// refused wherever they would weaken the pod's isolation.

const configWithClasses = z.strictObject({ classes: classesSchema });

function problems(classes: unknown): string[] {
  const result = configWithClasses.safeParse({ classes });
  if (result.success) return [];
  return result.error.issues.map((issue) =>
    issue.code === 'unrecognized_keys'
      ? `${issue.path.join('.')}: unknown key ${issue.keys.join(', ')}`
      : `${issue.path.join('.')}: ${issue.message}`,
  );
}

const build = { match: { github: { labels: ['self-hosted', 'build'] } } };
const sandbox = {
  untrusted: true,
  namespace: 'sandbox',
  runnerGroup: 'sandbox',
  runtimeClassName: 'gvisor',
  match: { github: { labels: ['self-hosted', 'sandbox'] } },
};
const sidecar = { name: 'proxy', image: 'registry.example.com/proxy:1' };

describe('pod overrides of a class', () => {
  it('takes every override on a trusted class, normalised', () => {
    const parsed = configWithClasses.parse({
      classes: {
        build: {
          ...build,
          imagePullPolicy: 'IfNotPresent',
          imagePullSecrets: ['registry-creds'],
          serviceAccountName: 'ci-builder',
          mountServiceAccountToken: true,
          volumes: [
            { name: 'tools', configMap: { name: 'ci-tools', defaultMode: 0o555 } },
            { name: 'scratch', emptyDir: { sizeLimit: 2 } },
          ],
          volumeMounts: [{ name: 'tools', mountPath: '/opt/tools', readOnly: true }],
          initContainers: [{ name: 'warm', image: 'busybox:1', command: ['true'] }],
          sidecars: [
            { ...sidecar, env: { PORT: 3128 }, volumeMounts: [{ name: 'scratch', mountPath: '/cache' }] },
          ],
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
          ],
          hostAliases: [{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }],
          dnsPolicy: 'None',
          dnsConfig: {
            nameservers: ['10.0.0.53'],
            searches: ['ci.internal'],
            options: [{ name: 'ndots', value: '2' }],
          },
          doNotDisrupt: false,
          resources: { requests: { 'ephemeral-storage': '5Gi' }, limits: { 'ephemeral-storage': '40Gi' } },
        },
      },
    }).classes.build;
    expect(parsed?.volumes[1]).toEqual({ name: 'scratch', emptyDir: { sizeLimit: '2' } });
    expect(parsed?.volumeMounts).toEqual([{ name: 'tools', mountPath: '/opt/tools', readOnly: true }]);
    expect(parsed?.sidecars[0]).toMatchObject({
      env: { PORT: '3128' },
      resources: { requests: {}, limits: {} },
      volumeMounts: [{ name: 'scratch', mountPath: '/cache', readOnly: false }],
    });
    expect(parsed?.initContainers[0]?.volumeMounts).toEqual([]);
    expect(parsed?.doNotDisrupt).toBe(false);
  });

  it('names the key and what was expected for a bad override', () => {
    expect(problems({ build: { ...build, imagePullPolicy: 'Sometimes' } })).toEqual([
      'classes.build.imagePullPolicy: expected Always, IfNotPresent or Never',
    ]);
    expect(
      problems({ build: { ...build, volumes: [{ name: 'x', emptyDir: {}, configMap: { name: 'c' } }] } }),
    ).toEqual([
      'classes.build.volumes.0: expected exactly one volume type of emptyDir, configMap, secret, persistentVolumeClaim, ephemeral, projected, downwardAPI, csi, nfs, hostPath, got emptyDir and configMap',
    ]);
    // A type Gantry does not offer (gitRepo is deprecated, and runs git on the node) leaves none.
    expect(problems({ build: { ...build, volumes: [{ name: 'x', gitRepo: { repository: 'r' } }] } })).toEqual(
      [
        'classes.build.volumes.0: unknown key gitRepo',
        'classes.build.volumes.0: expected exactly one volume type of emptyDir, configMap, secret, persistentVolumeClaim, ephemeral, projected, downwardAPI, csi, nfs, hostPath',
      ],
    );
    expect(
      problems({ build: { ...build, volumes: [{ name: 'x', emptyDir: { sizeLimt: '1Gi' } }] } }),
    ).toEqual(['classes.build.volumes.0.emptyDir: unknown key sizeLimt']);
    expect(problems({ build: { ...build, hostAliases: [{ ip: 'mirror', hostnames: ['m'] }] } })).toEqual([
      'classes.build.hostAliases.0.ip: expected an IPv4 or IPv6 address',
    ]);
    expect(problems({ build: { ...build, dnsPolicy: 'None' } })).toEqual([
      'classes.build.dnsConfig.nameservers: required with dnsPolicy None: the pod would have no resolver',
    ]);
    expect(
      problems({
        build: {
          ...build,
          topologySpreadConstraints: [{ maxSkew: 0, topologyKey: 'zone', whenUnsatisfiable: 'Maybe' }],
        },
      }),
    ).toHaveLength(2);
  });

  it('keeps volumes, mounts and containers apart from Gantry’s own and from each other', () => {
    const caches = [{ name: 'deps', type: 'ephemeral', size: '1Gi' }];
    expect(
      problems({
        build: {
          ...build,
          caches,
          volumes: [
            { name: 'work', emptyDir: {} },
            { name: 'cache-deps', emptyDir: {} },
            { name: 'tools', emptyDir: {} },
            { name: 'tools', emptyDir: {} },
          ],
          volumeMounts: [
            { name: 'nope', mountPath: '/opt/nope' },
            { name: 'tools', mountPath: '/home/runner/_work/tools' },
            { name: 'tools', mountPath: '/caches' },
          ],
          initContainers: [{ name: 'runner', image: 'busybox' }],
          sidecars: [sidecar, { ...sidecar, volumeMounts: [{ name: 'cache-deps', mountPath: '/deps' }] }],
        },
      }),
    ).toEqual([
      'classes.build.volumes.0.name: work is Gantry’s own volume',
      'classes.build.volumes.1.name: cache-deps is Gantry’s own volume',
      'classes.build.volumes.3.name: duplicates another volume’s name',
      'classes.build.volumeMounts.0.name: no volume nope in the class’s volumes',
      'classes.build.volumeMounts.1.mountPath: overlaps /home/runner/_work, where something else is mounted',
      'classes.build.volumeMounts.2.mountPath: overlaps /caches/deps, where something else is mounted',
      'classes.build.initContainers.0.name: runner is the runner container’s name',
      'classes.build.sidecars.1.name: duplicates another container’s name',
    ]);
  });

  it('checks what the kubelet or the apiserver would refuse later, and Gantry’s own annotations', () => {
    expect(
      problems({
        build: {
          ...build,
          sidecars: [
            { ...sidecar, securityContext: { runAsUser: 0 } },
            {
              ...sidecar,
              name: 'big',
              resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } },
            },
          ],
          podAnnotations: { 'karpenter.sh/do-not-disrupt': 'false' },
          resources: { limits: { 'ephemeral-storage': '10Gi' } },
        },
      }),
    ).toEqual([
      'classes.build.resources.limits.ephemeral-storage: expected at least workspace.sizeLimit (20Gi): the kubelet counts the work folder against it',
      'classes.build.sidecars.0.securityContext.runAsNonRoot: expected false with runAsUser 0: the pod runs as non-root, and the kubelet would refuse the container',
      'classes.build.sidecars.1.resources.requests.memory: expected at most limits.memory (1Gi)',
      'classes.build.podAnnotations.karpenter.sh/do-not-disrupt: is set by Gantry while doNotDisrupt is true; set doNotDisrupt: false to set it here',
    ]);
    expect(
      problems({
        build: { ...build, doNotDisrupt: false, podAnnotations: { 'karpenter.sh/do-not-disrupt': 'true' } },
      }),
    ).toEqual([]);
  });

  it('leaves a privileged sidecar of a trusted class to the namespace’s Pod Security level', () => {
    expect(
      problems({
        build: {
          ...build,
          sidecars: [
            { ...sidecar, securityContext: { privileged: true, capabilities: { add: ['NET_ADMIN'] } } },
          ],
          volumes: [{ name: 'docker', hostPath: { path: '/var/lib/docker', type: 'Directory' } }],
          mountServiceAccountToken: true,
        },
      }),
    ).toEqual([]);
  });

  describe('on the sandbox tier', () => {
    const weakening = {
      mountServiceAccountToken: true,
      volumes: [
        { name: 'host', hostPath: { path: '/' } },
        {
          name: 'token',
          projected: { sources: [{ configMap: { name: 'ca' } }, { serviceAccountToken: { path: 't' } }] },
        },
      ],
      sidecars: [
        {
          ...sidecar,
          securityContext: {
            privileged: true,
            allowPrivilegeEscalation: true,
            capabilities: { add: ['SYS_ADMIN'] },
            procMount: 'Unmasked',
            seccompProfile: { type: 'Unconfined' },
            appArmorProfile: { type: 'Unconfined' },
          },
        },
      ],
    };
    const refusals = (path: string) => [
      `classes.${path}.volumes.0.hostPath: not for an untrusted or sandboxed class: a hostPath volume opens the node’s filesystem`,
      `classes.${path}.volumes.1.projected.sources.1.serviceAccountToken: not for an untrusted or sandboxed class: a service-account token is a credential for the cluster`,
      `classes.${path}.sidecars.0.securityContext.privileged: not for an untrusted or sandboxed class: a privileged container reaches the node`,
      `classes.${path}.sidecars.0.securityContext.allowPrivilegeEscalation: not for an untrusted or sandboxed class: processes could gain privileges`,
      `classes.${path}.sidecars.0.securityContext.capabilities.add: not for an untrusted or sandboxed class: added capabilities widen what fork code may do`,
      `classes.${path}.sidecars.0.securityContext.procMount: not for an untrusted or sandboxed class: an unmasked /proc shows the node’s kernel interfaces`,
      `classes.${path}.sidecars.0.securityContext.seccompProfile.type: not for an untrusted or sandboxed class: an unconfined profile lifts the syscall filter`,
      `classes.${path}.sidecars.0.securityContext.appArmorProfile.type: not for an untrusted or sandboxed class: an unconfined profile lifts the syscall filter`,
      `classes.${path}.mountServiceAccountToken: not for an untrusted or sandboxed class: fork code would get a credential for the cluster`,
    ];

    it('refuses a token, host paths and privilege for an untrusted class, naming each key', () => {
      expect(problems({ forks: { ...sandbox, ...weakening } })).toEqual(refusals('forks'));
    });

    it('refuses the same for a sandboxed trusted class', () => {
      const sandboxed = { ...sandbox, untrusted: false, sandboxed: true };
      expect(problems({ public: { ...sandboxed, ...weakening } })).toEqual(refusals('public'));
    });

    it('allows what keeps the isolation: pull secrets, a service account without its token, restricted sidecars', () => {
      expect(
        problems({
          forks: {
            ...sandbox,
            imagePullSecrets: ['registry-creds'],
            serviceAccountName: 'sandbox-runner',
            volumes: [{ name: 'ca', configMap: { name: 'ci-ca' } }],
            sidecars: [{ ...sidecar, securityContext: { readOnlyRootFilesystem: true } }],
            hostAliases: [{ ip: '10.0.0.5', hostnames: ['mirror.internal'] }],
          },
        }),
      ).toEqual([]);
    });
  });
});
