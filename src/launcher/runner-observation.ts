import type { V1Pod } from '@kubernetes/client-node';
import type { RunnerObservation, RunnerPhase } from '../model/runner-observation.ts';
import { ANNOTATION_JOB, ANNOTATION_REPO, LABEL_CLASS } from './metadata.ts';

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
  const failureReason = phase === 'Failed' ? (status?.reason ?? terminated?.reason) : undefined;
  return {
    name,
    namespace,
    className,
    ...(repo ? { repo } : {}),
    ...(plannedFor ? { plannedFor } : {}),
    phase,
    ...(scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' ? { unschedulable: true } : {}),
    createdAt: toMillis(pod.metadata?.creationTimestamp) ?? 0,
    ...(phase === 'Running' || phase === 'Succeeded' || phase === 'Failed'
      ? { runningSince: toMillis(started) ?? toMillis(status?.startTime) ?? 0 }
      : {}),
    ...(endedAt !== undefined ? { endedAt } : {}),
    deleting: pod.metadata?.deletionTimestamp !== undefined,
    ...(failureReason ? { failureReason } : {}),
  };
}

function toMillis(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
