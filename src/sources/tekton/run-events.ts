import {
  type EpochMillis,
  type JobConclusion,
  type JobEvent,
  type JobIdentity,
  jobKey,
} from '../../model/job.ts';
import {
  ANNOTATION_ADMITTED_AT,
  ANNOTATION_CLASS,
  ANNOTATION_HELD,
  ANNOTATION_QUEUED_AT,
  LABEL_CLASS,
} from '../../model/keys.ts';
import { PENDING, type PipelineRun } from './pipeline-run.ts';

/**
 * What a PipelineRun means to the queue, read from the run alone (its spec.status, Gantry's
 * annotations and Tekton's Succeeded condition), so a restarted Gantry rebuilds the same queue.
 */

/** `spec.status` values that stop a run; one that never started is over once it carries one. */
const STOPPING = new Set(['Cancelled', 'CancelledRunFinally', 'StoppedRunFinally']);

/** Who a run is, as every event of it says: the key is the run's uid, stable across restarts. */
export function runIdentity(run: PipelineRun): JobIdentity | undefined {
  const { uid, namespace, name, labels = {}, annotations = {} } = run.metadata ?? {};
  if (!uid || !namespace || !name) return undefined;
  const requestedClass = annotations[ANNOTATION_CLASS] ?? labels[LABEL_CLASS];
  return {
    source: 'tekton',
    key: jobKey('tekton', uid),
    repo: namespace,
    labels: [],
    runId: name,
    runAttempt: 1,
    untrusted: false,
    name: `${namespace}/${name}`,
    tektonLabels: labels,
    tektonNamespace: namespace,
    ...(requestedClass !== undefined ? { requestedClass } : {}),
  };
}

/**
 * The event a run's current state amounts to, or undefined when it is none of Gantry's business
 * (held by its author, or pending without Gantry having queued it). Runs that started without
 * Gantry (created while its webhook was down, or released by their author) are `started`: they
 * hold a slot of their class all the same.
 */
export function runEvent(run: PipelineRun, now: EpochMillis): JobEvent | undefined {
  const job = runIdentity(run);
  if (!job) return undefined;
  const annotations = run.metadata?.annotations ?? {};
  const createdAt =
    timeOf(annotations[ANNOTATION_QUEUED_AT]) ?? timeOf(run.metadata?.creationTimestamp) ?? now;
  const base = { job, via: 'watch' as const, createdAt };
  const startTime = timeOf(run.status?.startTime);
  const succeeded = run.status?.conditions?.find((c) => c.type === 'Succeeded');
  if (succeeded?.status === 'True' || succeeded?.status === 'False') {
    return {
      ...base,
      kind: 'completed',
      startedAt: startTime ?? timeOf(annotations[ANNOTATION_ADMITTED_AT]) ?? null,
      completedAt: timeOf(run.status?.completionTime) ?? now,
      conclusion: succeeded.status === 'True' ? 'success' : conclusionOf(succeeded.reason),
      runnerName: null,
    };
  }
  const specStatus = run.spec?.status ?? '';
  if (specStatus === PENDING) {
    if (annotations[ANNOTATION_HELD] !== undefined || annotations[ANNOTATION_QUEUED_AT] === undefined) {
      return undefined;
    }
    return { ...base, kind: 'queued' };
  }
  if (STOPPING.has(specStatus) && startTime === undefined) {
    return {
      ...base,
      kind: 'completed',
      startedAt: null,
      completedAt: now,
      conclusion: 'cancelled',
      runnerName: null,
    };
  }
  return {
    ...base,
    kind: 'started',
    startedAt: timeOf(annotations[ANNOTATION_ADMITTED_AT]) ?? startTime ?? createdAt,
    runnerName: null,
  };
}

/** The run was deleted: whatever it was doing is over. */
export function runDeletedEvent(run: PipelineRun, now: EpochMillis): JobEvent | undefined {
  const job = runIdentity(run);
  if (!job) return undefined;
  const last = runEvent(run, now);
  if (last?.kind === 'completed') return last;
  const startedAt = last?.kind === 'started' ? last.startedAt : null;
  return {
    job,
    via: 'watch',
    createdAt: last?.createdAt ?? now,
    kind: 'completed',
    startedAt,
    completedAt: now,
    conclusion: 'cancelled',
    runnerName: null,
  };
}

function conclusionOf(reason: string | undefined): JobConclusion {
  if (reason === 'Cancelled' || reason === 'StoppedRunFinally' || reason === 'CancelledRunFinally') {
    return 'cancelled';
  }
  if (reason === 'PipelineRunTimeout') return 'timed_out';
  return 'failure';
}

function timeOf(value: string | Date | undefined): EpochMillis | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
