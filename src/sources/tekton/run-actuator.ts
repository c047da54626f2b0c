import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { isTransientKubeError, kubeMessage, kubeRetryAfterMs, kubeStatus } from '../../kube/errors.ts';
import type { AdmitRunAction, CancelRunAction } from '../../model/action.ts';
import { ANNOTATION_ADMITTED_AT, ANNOTATION_CANCEL_REASON } from '../../model/keys.ts';
import type { RunActuator, RunOutcome } from '../../ports.ts';
import { withRetry } from '../../util/retry.ts';
import { CALL_RETRIES } from '../../util/schedules.ts';
import {
  CANCELLED,
  PENDING,
  PIPELINE_RUNS,
  pointerKey,
  TEKTON_GROUP,
  TEKTON_VERSION,
} from './pipeline-run.ts';

/** Where a run the queue knows by key lives. */
export interface RunLocation {
  namespace: string;
  name: string;
  uid: string;
}

export interface RunActuatorOptions {
  custom: CustomObjectsApi;
  locate: (runKey: string) => RunLocation | undefined;
  now?: () => number;
  retry?: { attempts: number; baseDelayMs: number; maxDelayMs: number };
}

/**
 * Admits and cancels queued PipelineRuns. Each is one JSON patch that first tests the run is the
 * same one (uid) and still held by Gantry (spec.status PipelineRunPending): the apiserver applies
 * the patch atomically, so a run its author cancelled or deleted meanwhile is never started, and a
 * run admitted before a restart is not admitted twice.
 */
export function createRunActuator(options: RunActuatorOptions): RunActuator {
  const now = options.now ?? Date.now;
  const policy = {
    ...CALL_RETRIES.kube,
    ...options.retry,
    isRetryable: isTransientKubeError,
    requestedDelayMs: kubeRetryAfterMs,
  };
  const asJsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

  async function patch(runKey: string, operations: object[]): Promise<RunOutcome> {
    const run = options.locate(runKey);
    if (!run) return { kind: 'gone' };
    const guarded = [
      { op: 'test', path: '/metadata/uid', value: run.uid },
      { op: 'test', path: '/spec/status', value: PENDING },
      ...operations,
    ];
    try {
      await withRetry(
        () =>
          options.custom.patchNamespacedCustomObject(
            {
              group: TEKTON_GROUP,
              version: TEKTON_VERSION,
              plural: PIPELINE_RUNS,
              namespace: run.namespace,
              name: run.name,
              body: guarded,
            },
            asJsonPatch,
          ),
        policy,
      );
      return { kind: 'done' };
    } catch (err) {
      // 404: deleted; 422: a test failed (no longer pending, or another run by that name).
      const status = kubeStatus(err);
      if (status === 404 || status === 422) return { kind: 'gone' };
      return {
        kind: 'failed',
        error: new Error(`PipelineRun ${run.namespace}/${run.name}: ${kubeMessage(err)}`),
      };
    }
  }

  const annotation = (key: string, value: string) => ({
    op: 'add',
    path: `/metadata/annotations/${pointerKey(key)}`,
    value,
  });

  return {
    admit(action: AdmitRunAction) {
      return patch(action.runKey, [
        { op: 'remove', path: '/spec/status' },
        annotation(ANNOTATION_ADMITTED_AT, new Date(now()).toISOString()),
      ]);
    },
    cancel(action: CancelRunAction) {
      return patch(action.runKey, [
        { op: 'replace', path: '/spec/status', value: CANCELLED },
        annotation(ANNOTATION_CANCEL_REASON, action.reason),
      ]);
    },
  };
}
