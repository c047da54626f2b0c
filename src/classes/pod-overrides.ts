import { z } from 'zod';
import { DO_NOT_DISRUPT_ANNOTATIONS } from '../model/keys.ts';
import { isQualifiedName } from '../model/kube-names.ts';
import { parseQuantity } from '../model/quantity.ts';
import { absolutePath, dnsLabel, dnsSubdomain, envMap, labelMap, quantity, resourceList } from './fields.ts';

/**
 * What a class may add to its runner pods beyond the runner container Gantry builds: pull secrets,
 * volumes, init and sidecar containers, a service account, spreading, host aliases and DNS. The
 * shapes are Kubernetes' own, checked here field by field so a typo names its key (client-node
 * would drop an unknown field without a word); what only the cluster knows (does the Secret exist,
 * does the namespace's Pod Security level allow a privileged sidecar) the apiserver judges.
 *
 * On the sandbox tier (untrusted and sandboxed classes) what would weaken the pod's isolation is
 * refused here: a service-account token, a hostPath volume, and privilege or added capabilities in
 * any container. Host namespaces and host ports are not offered at all.
 */

/** Kubernetes structures passed through as written: the apiserver validates their content. */
const kubeStruct = z.record(z.string(), z.unknown());

export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const pullPolicy = z.enum(PULL_POLICIES, { error: 'expected Always, IfNotPresent or Never' });
const fileMode = z.int().min(0).max(0o777).describe('File mode bits, 0 to 0777 (decimal in JSON: 0 to 511).');
const optionalFlag = z.boolean().optional();
const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'expected an IPv4 or IPv6 address' });

const keyToPath = z.strictObject({
  key: z.string().min(1),
  path: z.string().min(1),
  mode: fileMode.optional(),
});

/** The volume types a class may use, each with the fields Kubernetes gives it. */
const volumeSources = {
  emptyDir: z
    .strictObject({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity.optional() })
    .describe('Scratch space that lives as long as the pod.'),
  configMap: z
    .strictObject({
      name: dnsSubdomain,
      items: z.array(keyToPath).optional(),
      defaultMode: fileMode.optional(),
      optional: optionalFlag,
    })
    .describe('A ConfigMap of the class’s namespace.'),
  secret: z
    .strictObject({
      secretName: dnsSubdomain,
      items: z.array(keyToPath).optional(),
      defaultMode: fileMode.optional(),
      optional: optionalFlag,
    })
    .describe('A Secret of the class’s namespace.'),
  persistentVolumeClaim: z
    .strictObject({ claimName: dnsSubdomain, readOnly: optionalFlag })
    .describe('An existing claim of the class’s namespace.'),
  ephemeral: z
    .strictObject({ volumeClaimTemplate: kubeStruct })
    .describe('A claim made with the pod and deleted with it (volumeClaimTemplate as in Kubernetes).'),
  projected: z
    .strictObject({ sources: z.array(kubeStruct).min(1), defaultMode: fileMode.optional() })
    .describe(
      'ConfigMaps, Secrets and downward API in one folder (a serviceAccountToken source is a token).',
    ),
  downwardAPI: z
    .strictObject({ items: z.array(kubeStruct).optional(), defaultMode: fileMode.optional() })
    .describe('The pod’s own fields as files.'),
  csi: z
    .strictObject({
      driver: z.string().min(1),
      readOnly: optionalFlag,
      fsType: z.string().optional(),
      volumeAttributes: z.record(z.string(), z.string()).optional(),
      nodePublishSecretRef: z.strictObject({ name: dnsSubdomain }).optional(),
    })
    .describe('An inline CSI volume (e.g. a secrets-store driver).'),
  nfs: z
    .strictObject({ server: z.string().min(1), path: absolutePath, readOnly: optionalFlag })
    .describe('An NFS export.'),
  hostPath: z
    .strictObject({
      path: absolutePath,
      type: z
        .enum([
          '',
          'DirectoryOrCreate',
          'Directory',
          'FileOrCreate',
          'File',
          'Socket',
          'CharDevice',
          'BlockDevice',
        ])
        .optional(),
    })
    .describe('A folder of the node. Never on the sandbox tier; Pod Security "restricted" refuses it too.'),
} as const;
const VOLUME_TYPES = Object.keys(volumeSources) as (keyof typeof volumeSources)[];

const volume = z
  .strictObject({
    name: dnsLabel.describe('Volume name, unique in the pod; runner and sidecars mount it by this name.'),
    ...Object.fromEntries(VOLUME_TYPES.map((type) => [type, volumeSources[type].optional()])),
  } as { name: typeof dnsLabel } & {
    [K in keyof typeof volumeSources]: z.ZodOptional<(typeof volumeSources)[K]>;
  })
  .superRefine((value, ctx) => {
    const given = VOLUME_TYPES.filter((type) => value[type] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one volume type of ${VOLUME_TYPES.join(', ')}${given.length > 1 ? `, got ${given.join(' and ')}` : ''}`,
      });
    }
  });
export type PodVolume = z.output<typeof volume>;

const volumeMount = z.strictObject({
  name: dnsLabel.describe(
    'A volume of the class (or work, or cache-<name>, for init and sidecar containers).',
  ),
  mountPath: absolutePath,
  readOnly: z.boolean().default(false),
  subPath: z
    .string()
    .refine((path) => !path.startsWith('/') && !path.split('/').includes('..'), {
      error: 'expected a relative path without ".."',
    })
    .optional(),
});
export type PodVolumeMount = z.output<typeof volumeMount>;

const profile = z.strictObject({
  type: z.enum(['RuntimeDefault', 'Localhost', 'Unconfined']),
  localhostProfile: z.string().min(1).optional(),
});

const containerSecurityContext = z
  .strictObject({
    runAsUser: z.int().min(0).optional(),
    runAsGroup: z.int().min(0).optional(),
    runAsNonRoot: optionalFlag,
    readOnlyRootFilesystem: optionalFlag,
    allowPrivilegeEscalation: optionalFlag,
    privileged: optionalFlag,
    capabilities: z
      .strictObject({
        add: z.array(z.string().min(1)).optional(),
        drop: z.array(z.string().min(1)).optional(),
      })
      .optional(),
    procMount: z.enum(['Default', 'Unmasked']).optional(),
    seccompProfile: profile.optional(),
    appArmorProfile: profile.optional(),
    seLinuxOptions: z
      .strictObject({
        user: z.string().optional(),
        role: z.string().optional(),
        type: z.string().optional(),
        level: z.string().optional(),
      })
      .optional(),
  })
  .describe(
    'As in a container spec. Unset keys get the runner’s restricted defaults (no privilege escalation, every ' +
      'capability dropped; user 1001 and the RuntimeDefault seccomp profile from the pod).',
  );
export type ContainerSecurity = z.output<typeof containerSecurityContext>;

const extraContainer = z.strictObject({
  name: dnsLabel.describe('Container name, unique in the pod (not runner).'),
  image: z.string().min(1),
  imagePullPolicy: pullPolicy.optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: absolutePath.optional(),
  env: envMap.default({}).describe('Environment by name. The runner’s JIT config is never passed on.'),
  resources: z
    .strictObject({ requests: resourceList.default({}), limits: resourceList.default({}) })
    .prefault({})
    .describe('Counted in the pod’s requests, quota and cost as Kubernetes counts them.'),
  securityContext: containerSecurityContext.optional(),
  volumeMounts: z.array(volumeMount).default([]),
  startupProbe: kubeStruct
    .optional()
    .describe('As in a container spec; for a sidecar, the runner starts once it passes.'),
});
export type ExtraContainer = z.output<typeof extraContainer>;

const spreadConstraint = z.strictObject({
  maxSkew: z.int().min(1),
  topologyKey: z
    .string()
    .refine(isQualifiedName, { error: 'expected a node label key such as topology.kubernetes.io/zone' }),
  whenUnsatisfiable: z.enum(['DoNotSchedule', 'ScheduleAnyway']),
  labelSelector: z
    .strictObject({ matchLabels: labelMap.optional(), matchExpressions: z.array(kubeStruct).optional() })
    .optional()
    .describe('Pods counted for the skew; default: the runner pods of this class.'),
  matchLabelKeys: z.array(z.string().min(1)).optional(),
  minDomains: z.int().min(1).optional(),
  nodeAffinityPolicy: z.enum(['Honor', 'Ignore']).optional(),
  nodeTaintsPolicy: z.enum(['Honor', 'Ignore']).optional(),
});
export type SpreadConstraint = z.output<typeof spreadConstraint>;

const dnsConfig = z.strictObject({
  nameservers: z.array(ipAddress).max(3).optional(),
  searches: z.array(z.string().min(1)).max(32).optional(),
  options: z.array(z.strictObject({ name: z.string().min(1), value: z.string().optional() })).optional(),
});

/** The class keys, spread into the runner class schema. */
export const podOverrideFields = {
  imagePullPolicy: pullPolicy
    .optional()
    .describe(
      'Pull policy of the runner image; default Kubernetes’ own (Always for :latest, else IfNotPresent).',
    ),
  imagePullSecrets: z
    .array(dnsSubdomain)
    .default([])
    .describe('Names of Secrets in the class’s namespace holding credentials for private registries.'),
  serviceAccountName: dnsSubdomain
    .optional()
    .describe(
      'ServiceAccount of the runner pods (default: the namespace’s default). Its token is mounted only with ' +
        'mountServiceAccountToken; mutating webhooks (workload identity) may still act on the name. Tekton: ' +
        'the service account of the run’s TaskRuns (taskRunTemplate.serviceAccountName), set when the ' +
        'author names none; with enforce, a run or task naming another is refused.',
    ),
  mountServiceAccountToken: z
    .boolean()
    .default(false)
    .describe(
      'Mount the service account’s API token into the pod. A CI job rarely needs the cluster’s API; never on ' +
        'an untrusted or sandboxed class.',
    ),
  volumes: z
    .array(volume)
    .default([])
    .describe('Extra pod volumes, as in a pod spec (one type each). hostPath never on the sandbox tier.'),
  volumeMounts: z
    .array(volumeMount)
    .default([])
    .describe('Where the runner container mounts volumes of `volumes`.'),
  initContainers: z
    .array(extraContainer)
    .default([])
    .describe('Containers that run to completion, in order, before the runner (and the sidecars) start.'),
  sidecars: z
    .array(extraContainer)
    .default([])
    .describe(
      'Native sidecars (init containers with restartPolicy Always): started in order before the runner, running ' +
        'beside it, stopped by the kubelet once the runner exits.',
    ),
  topologySpreadConstraints: z
    .array(spreadConstraint)
    .default([])
    .describe('How runner pods spread over zones or nodes, as in a pod spec.'),
  hostAliases: z
    .array(z.strictObject({ ip: ipAddress, hostnames: z.array(z.string().min(1)).min(1) }))
    .default([])
    .describe('Entries added to the pod’s /etc/hosts (e.g. an internal registry mirror).'),
  dnsPolicy: z
    .enum(['ClusterFirst', 'Default', 'None'])
    .optional()
    .describe('As in a pod spec; None takes resolvers from dnsConfig alone.'),
  dnsConfig: dnsConfig.optional().describe('Extra resolvers, search domains and options, as in a pod spec.'),
  doNotDisrupt: z
    .boolean()
    .default(true)
    .describe(
      'Annotate runner pods karpenter.sh/do-not-disrupt "true" and cluster-autoscaler.kubernetes.io/safe-to-evict ' +
        '"false", so node autoscalers do not remove a node (consolidation, scale-down) while a one-shot runner on it ' +
        'could lose its job.',
    ),
};

export interface PodOverrides {
  imagePullPolicy?: (typeof PULL_POLICIES)[number] | undefined;
  imagePullSecrets: string[];
  serviceAccountName?: string | undefined;
  mountServiceAccountToken: boolean;
  volumes: PodVolume[];
  volumeMounts: PodVolumeMount[];
  initContainers: ExtraContainer[];
  sidecars: ExtraContainer[];
  topologySpreadConstraints: SpreadConstraint[];
  hostAliases: { ip: string; hostnames: string[] }[];
  dnsPolicy?: 'ClusterFirst' | 'Default' | 'None' | undefined;
  dnsConfig?: z.output<typeof dnsConfig> | undefined;
  doNotDisrupt: boolean;
  podAnnotations: Record<string, string>;
}

/** What Gantry's own part of the pod takes: names and paths the overrides must leave alone. */
export interface ReservedPodParts {
  /** The runner container's name. */
  container: string;
  /** Volumes Gantry mounts into the runner itself (work folder, caches), by name. */
  volumes: ReadonlySet<string>;
  /** Folders of the runner container Gantry mounts something at. */
  mountPaths: readonly string[];
}

type Issue = (path: (string | number)[], message: string) => void;

const SANDBOX_REFUSAL = 'not for an untrusted or sandboxed class';

/** Cross-field checks of the overrides; `sandbox`: the class is on the sandbox tier. */
export function checkPodOverrides(
  overrides: PodOverrides,
  reserved: ReservedPodParts,
  sandbox: boolean,
  issue: Issue,
): void {
  const own = new Set<string>();
  overrides.volumes.forEach((entry, index) => {
    if (reserved.volumes.has(entry.name))
      issue(['volumes', index, 'name'], `${entry.name} is Gantry’s own volume`);
    else if (own.has(entry.name)) issue(['volumes', index, 'name'], `duplicates another volume’s name`);
    own.add(entry.name);
    if (sandbox && entry.hostPath) {
      issue(
        ['volumes', index, 'hostPath'],
        `${SANDBOX_REFUSAL}: a hostPath volume opens the node’s filesystem`,
      );
    }
    entry.projected?.sources.forEach((source, sourceIndex) => {
      if (sandbox && 'serviceAccountToken' in source) {
        issue(
          ['volumes', index, 'projected', 'sources', sourceIndex, 'serviceAccountToken'],
          `${SANDBOX_REFUSAL}: a service-account token is a credential for the cluster`,
        );
      }
    });
  });

  checkMounts(['volumeMounts'], overrides.volumeMounts, own, reserved.mountPaths, issue);

  const containerNames = new Set<string>([reserved.container]);
  const mountable = new Set([...own, ...reserved.volumes]);
  for (const key of ['initContainers', 'sidecars'] as const) {
    overrides[key].forEach((container, index) => {
      if (containerNames.has(container.name)) {
        issue(
          [key, index, 'name'],
          container.name === reserved.container
            ? `${container.name} is the runner container’s name`
            : 'duplicates another container’s name',
        );
      }
      containerNames.add(container.name);
      checkMounts([key, index, 'volumeMounts'], container.volumeMounts, mountable, [], issue);
      const context = container.securityContext;
      if (context?.runAsUser === 0 && context.runAsNonRoot !== false) {
        issue(
          [key, index, 'securityContext', 'runAsNonRoot'],
          'expected false with runAsUser 0: the pod runs as non-root, and the kubelet would refuse the container',
        );
      }
      if (sandbox) checkSandboxedContainer(container.securityContext, [key, index, 'securityContext'], issue);
      for (const name of ['cpu', 'memory', 'ephemeral-storage'] as const) {
        const { requests, limits } = container.resources;
        if (
          requests[name] !== undefined &&
          limits[name] !== undefined &&
          exceeds(requests[name], limits[name])
        ) {
          issue(
            [key, index, 'resources', 'requests', name],
            `expected at most limits.${name} (${limits[name]})`,
          );
        }
      }
    });
  }

  if (overrides.mountServiceAccountToken && sandbox) {
    issue(
      ['mountServiceAccountToken'],
      `${SANDBOX_REFUSAL}: fork code would get a credential for the cluster`,
    );
  }
  if (overrides.dnsPolicy === 'None' && !overrides.dnsConfig?.nameservers?.length) {
    issue(['dnsConfig', 'nameservers'], 'required with dnsPolicy None: the pod would have no resolver');
  }
  if (overrides.doNotDisrupt) {
    for (const key of Object.keys(DO_NOT_DISRUPT_ANNOTATIONS)) {
      if (key in overrides.podAnnotations) {
        issue(
          ['podAnnotations', key],
          'is set by Gantry while doNotDisrupt is true; set doNotDisrupt: false to set it here',
        );
      }
    }
  }
}

function checkMounts(
  path: (string | number)[],
  mounts: readonly PodVolumeMount[],
  volumes: ReadonlySet<string>,
  takenPaths: readonly string[],
  issue: Issue,
): void {
  const paths = [...takenPaths];
  mounts.forEach((mount, index) => {
    if (!volumes.has(mount.name)) {
      issue([...path, index, 'name'], `no volume ${mount.name} in the class’s volumes`);
    }
    const overlap = paths.find((taken) => overlaps(taken, mount.mountPath));
    if (overlap !== undefined) {
      issue([...path, index, 'mountPath'], `overlaps ${overlap}, where something else is mounted`);
    }
    paths.push(mount.mountPath);
  });
}

/** One folder is the other or holds it. */
function overlaps(a: string, b: string): boolean {
  const trim = (p: string) => p.replace(/\/+$/, '') || '/';
  const [x, y] = [trim(a), trim(b)];
  return x === y || x.startsWith(`${y === '/' ? '' : y}/`) || y.startsWith(`${x === '/' ? '' : x}/`);
}

/** Privilege, added capabilities and unconfined profiles reach past the sandbox runtime. */
function checkSandboxedContainer(
  context: ContainerSecurity | undefined,
  path: (string | number)[],
  issue: Issue,
): void {
  if (!context) return;
  if (context.privileged)
    issue([...path, 'privileged'], `${SANDBOX_REFUSAL}: a privileged container reaches the node`);
  if (context.allowPrivilegeEscalation) {
    issue([...path, 'allowPrivilegeEscalation'], `${SANDBOX_REFUSAL}: processes could gain privileges`);
  }
  if (context.capabilities?.add?.length) {
    issue(
      [...path, 'capabilities', 'add'],
      `${SANDBOX_REFUSAL}: added capabilities widen what fork code may do`,
    );
  }
  if (context.procMount === 'Unmasked') {
    issue([...path, 'procMount'], `${SANDBOX_REFUSAL}: an unmasked /proc shows the node’s kernel interfaces`);
  }
  for (const key of ['seccompProfile', 'appArmorProfile'] as const) {
    if (context[key]?.type === 'Unconfined') {
      issue([...path, key, 'type'], `${SANDBOX_REFUSAL}: an unconfined profile lifts the syscall filter`);
    }
  }
}

function exceeds(request: string, limit: string): boolean {
  return (parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? 0);
}
