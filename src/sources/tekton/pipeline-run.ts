import type { V1ObjectMeta } from '@kubernetes/client-node';

/**
 * The part of a Tekton PipelineRun (tekton.dev/v1) Gantry reads and writes, and the annotations it
 * keeps its queue in. Everything Gantry knows of a run is on the run itself, so a restarted Gantry
 * rebuilds its queue from a list.
 */

export const TEKTON_GROUP = 'tekton.dev';
export const TEKTON_VERSION = 'v1';
export const PIPELINE_RUNS = 'pipelineruns';

/** `spec.status` of a run held before it starts; clearing it starts the run. */
export const PENDING = 'PipelineRunPending';
/** `spec.status` that cancels a run (a pending one never starts). */
export const CANCELLED = 'Cancelled';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown' | string;
  reason?: string;
  message?: string;
}

export interface PipelineRun {
  apiVersion?: string;
  kind?: string;
  /** Custom objects arrive as plain JSON: timestamps are strings despite V1ObjectMeta's Date. */
  metadata?: V1ObjectMeta;
  spec?: {
    status?: string;
    taskRunTemplate?: { serviceAccountName?: string; podTemplate?: Record<string, unknown> };
    [field: string]: unknown;
  };
  status?: {
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}

/** A key as one step of a JSON-patch path (RFC 6901: `~` and `/` become `~0` and `~1`). */
export function pointerKey(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
