import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSpec,
  V1ResourceRequirements,
  V1SecurityContext,
  V1TopologySpreadConstraint,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { ResourceName } from '../classes/fields.ts';
import type {
  ContainerSecurity,
  ExtraContainer,
  PodVolume,
  PodVolumeMount,
  SpreadConstraint,
} from '../classes/pod-overrides.ts';
import { runnerContainerResources } from '../classes/runner-resources.ts';
import { SANDBOX_CONTAINER, SANDBOX_FLOOR } from '../classes/sandbox.ts';
import {
  JIT_CONFIG_ENV,
  RUNNER_CONTAINER,
  RUNNER_WORK_DIR,
  RUNNER_WORK_VOLUME,
  type RunnerClass,
} from '../classes/schema.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import {
  ANNOTATION_JOB,
  ANNOTATION_NAME_SEED,
  ANNOTATION_REPO,
  COMPONENT_RUNNER,
  DO_NOT_DISRUPT_ANNOTATIONS,
  LABEL_CLASS,
} from '../model/keys.ts';
import { buildCachePodParts } from './cache-volumes.ts';
import { JIT_CONFIG_KEY, jitConfigSecretName } from './jit-config-secret.ts';
import { runnerNameOf, runnerObjectLabels } from './runner-labels.ts';

/**
 * A runner's one-shot Pod. A pure builder: the same action and class always give the same pod, so a
 * retried create is a no-op. The pod reads its JIT config from the Secret of `buildJitConfigSecret`.
 *
 * The pod meets Pod Security "restricted": non-root (uid 1001, the runner image's user), no privilege
 * escalation, every capability dropped, the runtime's default seccomp profile. It gets no service
 * account token (unless a trusted class asks for one) and no service-link environment: a CI job has
 * no business with the cluster's API. The class's pod overrides (volumes, init and sidecar containers,
 * pull secrets, spreading, DNS) are added around the runner container, never into its own settings;
 * its sidecars get the same restricted defaults wherever the class leaves a field unset.
 *
 * By default the pod asks node autoscalers (Karpenter, cluster-autoscaler) to leave its node alone
 * while it runs: a one-shot runner moved elsewhere loses its job.
 */

export { RUNNER_CONTAINER };
export const RUNNER_UID = 1001;

export function buildRunnerPod(create: CreateRunnerAction, runnerClass: RunnerClass): V1Pod {
  const name = runnerNameOf(create);
  const caches = buildCachePodParts(runnerClass.caches, {
    untrusted: runnerClass.untrusted,
    ...(create.repo !== undefined ? { repo: create.repo } : {}),
  });

  // The class's own variables win over the cache defaults; both come after the JIT config.
  const classEnv = Object.entries(runnerClass.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([envName, value]): V1EnvVar => ({ name: envName, value }));
  const overridden = new Set(classEnv.map((env) => env.name));
  const env: V1EnvVar[] = [
    {
      name: JIT_CONFIG_ENV,
      valueFrom: { secretKeyRef: { name: jitConfigSecretName(name), key: JIT_CONFIG_KEY } },
    },
    ...caches.env.filter((entry) => !overridden.has(entry.name)),
    ...classEnv,
  ];

  const { nodeSelector, tolerations, affinity, runtimeClassName, priorityClassName } = runnerClass;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: create.namespace,
      labels: { ...runnerClass.podLabels, ...runnerObjectLabels(create, COMPONENT_RUNNER) },
      annotations: {
        ...runnerClass.podAnnotations,
        ...(runnerClass.doNotDisrupt ? DO_NOT_DISRUPT_ANNOTATIONS : {}),
        [ANNOTATION_NAME_SEED]: create.nameSeed,
        ...(create.repo !== undefined ? { [ANNOTATION_REPO]: create.repo } : {}),
        ...(create.jobKey !== undefined ? { [ANNOTATION_JOB]: create.jobKey } : {}),
      },
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: runnerClass.mountServiceAccountToken,
      enableServiceLinks: false,
      activeDeadlineSeconds: runnerClass.activeDeadlineSeconds,
      securityContext: {
        runAsNonRoot: SANDBOX_FLOOR.runAsNonRoot,
        runAsUser: RUNNER_UID,
        runAsGroup: RUNNER_UID,
        // Volumes (caches, work folder) become writable by the runner's group.
        fsGroup: RUNNER_UID,
        fsGroupChangePolicy: 'OnRootMismatch',
        seccompProfile: { ...SANDBOX_FLOOR.seccompProfile },
      },
      containers: [
        {
          name: RUNNER_CONTAINER,
          image: runnerClass.image,
          ...(runnerClass.imagePullPolicy ? { imagePullPolicy: runnerClass.imagePullPolicy } : {}),
          command: [...runnerClass.command],
          env,
          resources: requirements(runnerContainerResources(runnerClass)),
          securityContext: {
            runAsNonRoot: SANDBOX_FLOOR.runAsNonRoot,
            runAsUser: RUNNER_UID,
            ...SANDBOX_CONTAINER,
            capabilities: { drop: [...SANDBOX_CONTAINER.capabilities.drop] },
            seccompProfile: { ...SANDBOX_FLOOR.seccompProfile },
          },
          volumeMounts: [
            { name: RUNNER_WORK_VOLUME, mountPath: RUNNER_WORK_DIR },
            ...caches.mounts,
            ...runnerClass.volumeMounts.map(volumeMount),
          ],
        },
      ],
      volumes: [
        { name: RUNNER_WORK_VOLUME, emptyDir: { sizeLimit: runnerClass.workspace.sizeLimit } },
        ...caches.volumes,
        ...runnerClass.volumes.map(podVolume),
      ],
      ...podOverrides(create.className, runnerClass),
      ...(runtimeClassName ? { runtimeClassName } : {}),
      ...(priorityClassName ? { priorityClassName } : {}),
      ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector: { ...nodeSelector } } : {}),
      ...(tolerations.length > 0
        ? { tolerations: tolerations.map((toleration) => ({ ...toleration })) }
        : {}),
      ...(affinity ? { affinity } : {}),
    },
  };
}

/** The class's pod-level overrides, each left out when unset so the stored pod shows only what was asked. */
function podOverrides(className: string, runnerClass: RunnerClass): Partial<V1PodSpec> {
  const initContainers = [
    ...runnerClass.initContainers.map(extraContainer),
    // Native sidecars: started in order before the runner, stopped by the kubelet after it.
    ...runnerClass.sidecars.map(
      (sidecar): V1Container => ({ ...extraContainer(sidecar), restartPolicy: 'Always' }),
    ),
  ];
  const {
    imagePullSecrets,
    serviceAccountName,
    topologySpreadConstraints,
    hostAliases,
    dnsPolicy,
    dnsConfig,
  } = runnerClass;
  return {
    ...(initContainers.length > 0 ? { initContainers } : {}),
    ...(imagePullSecrets.length > 0 ? { imagePullSecrets: imagePullSecrets.map((name) => ({ name })) } : {}),
    ...(serviceAccountName ? { serviceAccountName } : {}),
    ...(topologySpreadConstraints.length > 0
      ? { topologySpreadConstraints: topologySpreadConstraints.map((c) => spreadConstraint(className, c)) }
      : {}),
    ...(hostAliases.length > 0
      ? { hostAliases: hostAliases.map(({ ip, hostnames }) => ({ ip, hostnames: [...hostnames] })) }
      : {}),
    ...(dnsPolicy ? { dnsPolicy } : {}),
    ...(dnsConfig ? { dnsConfig: structuredClone(dnsConfig) } : {}),
  };
}

/** An init or sidecar container: the class's settings, restricted defaults where it left them unset. */
function extraContainer(container: ExtraContainer): V1Container {
  const env = Object.entries(container.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]): V1EnvVar => ({ name, value }));
  return {
    name: container.name,
    image: container.image,
    ...(container.imagePullPolicy ? { imagePullPolicy: container.imagePullPolicy } : {}),
    ...(container.command ? { command: [...container.command] } : {}),
    ...(container.args ? { args: [...container.args] } : {}),
    ...(container.workingDir ? { workingDir: container.workingDir } : {}),
    ...(env.length > 0 ? { env } : {}),
    resources: requirements(container.resources),
    securityContext: restrictedDefaults(container.securityContext),
    ...(container.volumeMounts.length > 0 ? { volumeMounts: container.volumeMounts.map(volumeMount) } : {}),
    ...(container.startupProbe ? { startupProbe: structuredClone(container.startupProbe) } : {}),
  };
}

/**
 * The runner's restricted settings for whatever the class left unset: no privilege escalation (which
 * Kubernetes refuses beside privileged: true) and every capability dropped. The user and the seccomp
 * profile come from the pod.
 */
function restrictedDefaults(given: ContainerSecurity | undefined): V1SecurityContext {
  const context: V1SecurityContext = given ? structuredClone(given) : {};
  if (context.privileged !== true)
    context.allowPrivilegeEscalation ??= SANDBOX_CONTAINER.allowPrivilegeEscalation;
  context.capabilities ??= { drop: [...SANDBOX_CONTAINER.capabilities.drop] };
  return context;
}

function podVolume(volume: PodVolume): V1Volume {
  return structuredClone(volume) as V1Volume;
}

function volumeMount(mount: PodVolumeMount): V1VolumeMount {
  return {
    name: mount.name,
    mountPath: mount.mountPath,
    readOnly: mount.readOnly,
    ...(mount.subPath !== undefined ? { subPath: mount.subPath } : {}),
  };
}

/** A spread constraint without a selector would count no pods: it counts the class's runners. */
function spreadConstraint(className: string, constraint: SpreadConstraint): V1TopologySpreadConstraint {
  const copy = structuredClone(constraint) as V1TopologySpreadConstraint;
  copy.labelSelector ??= { matchLabels: { [LABEL_CLASS]: className } };
  return copy;
}

function requirements(resources: {
  requests: Partial<Record<ResourceName, string>>;
  limits: Partial<Record<ResourceName, string>>;
}): V1ResourceRequirements {
  const pick = (list: Partial<Record<ResourceName, string>>) =>
    Object.fromEntries(
      Object.entries(list).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  const requests = pick(resources.requests);
  const limits = pick(resources.limits);
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}
