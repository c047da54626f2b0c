import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { RUNNER_CONTAINER } from '../classes/schema.ts';
import { ANNOTATION_JOB, ANNOTATION_REPO, LABEL_CLASS } from '../model/keys.ts';
import type {
  LostReason,
  RunnerObservation,
  RunnerPhase,
  StartFailure,
} from '../model/runner-observation.ts';
import { jitConfigSecretName } from './jit-config-secret.ts';

const PHASES: ReadonlySet<string> = new Set(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']);

/**
 * Reads a runner pod into what the ledger tracks. Null for a pod that is not a runner Gantry made
 * (no name or no class label), so a stray object can never confuse the ledger.
 */
export function observeRunnerPod(pod: V1Pod): RunnerObservation | null {
  const name = pod.metadata?.name;
  const namespace = pod.metadata?.namespace;
  const className = pod.metadata?.labels?.[LABEL_CLASS];
  if (!name || !namespace || !className) return null;
  const status = pod.status;
  const phase = (PHASES.has(status?.phase ?? '') ? status?.phase : 'Pending') as RunnerPhase;
  const repo = pod.metadata?.annotations?.[ANNOTATION_REPO];
  const plannedFor = pod.metadata?.annotations?.[ANNOTATION_JOB];
  const scheduled = status?.conditions?.find((c) => c.type === 'PodScheduled');
  const started = status?.containerStatuses
    ?.map((c) => c.state?.running?.startedAt ?? c.state?.terminated?.startedAt)
    .find((at) => at !== undefined);
  const terminated = status?.containerStatuses?.find((c) => c.state?.terminated)?.state?.terminated;
  const endedAt = toMillis(terminated?.finishedAt) ?? toMillis(pod.metadata?.deletionTimestamp);
  const lost = lostReason(pod);
  const disruption = status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  const failureReason =
    phase === 'Failed' ? (status?.reason ?? terminated?.reason ?? disruption?.reason) : undefined;
  const startFailure = phase === 'Pending' ? startFailureOf(pod, name) : undefined;
  const scheduledAt = scheduled?.status === 'True' ? toMillis(scheduled.lastTransitionTime) : undefined;
  const uid = pod.metadata?.uid;
  return {
    name,
    namespace,
    ...(uid ? { uid } : {}),
    className,
    ...(repo ? { repo } : {}),
    ...(plannedFor ? { plannedFor } : {}),
    phase,
    ...(scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' ? { unschedulable: true } : {}),
    createdAt: toMillis(pod.metadata?.creationTimestamp) ?? 0,
    ...(scheduledAt !== undefined ? { scheduledAt } : {}),
    ...(startFailure ? { startFailure } : {}),
    ...(lost ? { lost } : {}),
    ...(phase === 'Running' || phase === 'Succeeded' || phase === 'Failed'
      ? { runningSince: toMillis(started) ?? toMillis(status?.startTime) ?? 0 }
      : {}),
    ...(endedAt !== undefined ? { endedAt } : {}),
    deleting: pod.metadata?.deletionTimestamp !== undefined,
    ...(failureReason ? { failureReason } : {}),
  };
}

/** Waiting reasons of a container that will not start without a change (or, for pulls, some luck). */
const IMAGE_PULL_FAILURES = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'RegistryUnavailable',
  'SignatureValidationFailed',
]);
const CONFIG_FAILURES = new Set(['CreateContainerConfigError']);

/**
 * The first container (init containers first, as they start first) waiting for a reason that means
 * it cannot start. The runner's own JIT Secret is written just after its pod: a kubelet that gets to
 * the container first reports it missing, and succeeds on its next try, so that is no failure.
 */
function startFailureOf(pod: V1Pod, name: string): StartFailure | undefined {
  const statuses: V1ContainerStatus[] = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  for (const container of statuses) {
    const waiting = container.state?.waiting;
    const detail = waiting?.reason;
    if (!detail) continue;
    const message = waiting.message;
    const reason = IMAGE_PULL_FAILURES.has(detail)
      ? 'image-pull'
      : CONFIG_FAILURES.has(detail) && !message?.includes(`"${jitConfigSecretName(name)}"`)
        ? 'container-config'
        : undefined;
    if (reason) return { reason, detail, container: container.name, ...(message ? { message } : {}) };
  }
  return undefined;
}

/** DisruptionTarget reasons set by the node lifecycle's taint eviction and by the pod garbage collector. */
const NODE_LOST_DISRUPTIONS = new Set(['DeletionByTaintManager', 'DeletionByPodGC']);
/** Pod status reasons of a node that went away: the old node controller's, and graceful node shutdown's. */
const NODE_LOST_STATUS = new Set(['NodeLost', 'Terminated', 'Shutdown']);

/**
 * Whether (and how) the cluster took the pod from its runner, from what the pod itself shows: no
 * access to nodes is needed. The runner container killed for memory is the most specific; then a
 * node shutdown's status reason; then the DisruptionTarget condition (every controller that disrupts
 * a pod sets it first); then the reason an older or a kubelet-side path leaves in the pod's status.
 */
export function lostReason(pod: V1Pod): LostReason | undefined {
  const status = pod.status;
  const runner = status?.containerStatuses?.find((c) => c.name === RUNNER_CONTAINER);
  const killed = runner?.state?.terminated?.reason ?? runner?.lastState?.terminated?.reason;
  if (killed === 'OOMKilled') return 'oom-killed';
  // The kubelet marks node-pressure evictions and graceful node shutdown alike (TerminationByKubelet);
  // the status reason tells a shutdown apart.
  if (NODE_LOST_STATUS.has(status?.reason ?? '')) return 'node-lost';
  const disruption = status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (disruption) return NODE_LOST_DISRUPTIONS.has(disruption.reason ?? '') ? 'node-lost' : 'evicted';
  if (status?.reason === 'Evicted' || status?.reason === 'Preempting') return 'evicted';
  return undefined;
}

function toMillis(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
