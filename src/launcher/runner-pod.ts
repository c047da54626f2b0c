import type { V1EnvVar, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';
import { JIT_CONFIG_ENV, RUNNER_WORK_DIR, type RunnerClass } from '../config/classes.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import { buildCachePodParts } from './cache-volumes.ts';
import { JIT_CONFIG_KEY, jitConfigSecretName } from './jit-config-secret.ts';
import {
  ANNOTATION_JOB,
  ANNOTATION_NAME_SEED,
  ANNOTATION_REPO,
  COMPONENT_RUNNER,
  runnerNameOf,
  runnerObjectLabels,
} from './metadata.ts';

/**
 * A runner's one-shot Pod. A pure builder: the same action and class always give the same pod, so a
 * retried create is a no-op. The pod reads its JIT config from the Secret of `buildJitConfigSecret`.
 *
 * The pod meets Pod Security "restricted": non-root (uid 1001, the runner image's user), no privilege
 * escalation, every capability dropped, the runtime's default seccomp profile. It gets no service
 * account token and no service-link environment: a CI job has no business with the cluster's API.
 */

export const RUNNER_CONTAINER = 'runner';
export const RUNNER_UID = 1001;
const WORK_VOLUME = 'work';

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
        [ANNOTATION_NAME_SEED]: create.nameSeed,
        ...(create.repo !== undefined ? { [ANNOTATION_REPO]: create.repo } : {}),
        ...(create.jobKey !== undefined ? { [ANNOTATION_JOB]: create.jobKey } : {}),
      },
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      activeDeadlineSeconds: runnerClass.activeDeadlineSeconds,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: RUNNER_UID,
        runAsGroup: RUNNER_UID,
        // Volumes (caches, work folder) become writable by the runner's group.
        fsGroup: RUNNER_UID,
        fsGroupChangePolicy: 'OnRootMismatch',
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: RUNNER_CONTAINER,
          image: runnerClass.image,
          command: [...runnerClass.command],
          env,
          resources: containerResources(runnerClass),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUNNER_UID,
            allowPrivilegeEscalation: false,
            privileged: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          volumeMounts: [{ name: WORK_VOLUME, mountPath: RUNNER_WORK_DIR }, ...caches.mounts],
        },
      ],
      volumes: [
        { name: WORK_VOLUME, emptyDir: { sizeLimit: runnerClass.workspace.sizeLimit } },
        ...caches.volumes,
      ],
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

function containerResources(runnerClass: RunnerClass): V1ResourceRequirements {
  const pick = (list: RunnerClass['resources']['requests']) =>
    Object.fromEntries(
      Object.entries(list).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  const requests = pick(runnerClass.resources.requests);
  const limits = pick(runnerClass.resources.limits);
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}
