import { z } from 'zod';
import {
  type JobConclusion,
  type JobEvent,
  type JobIdentity,
  type JobOrigin,
  jobKey,
  type ObservedVia,
} from '../../model/job.ts';

/**
 * A GitHub workflow job in the few fields Gantry reads, whether it came in a webhook or from the REST
 * API (both use the same field names). Unknown fields are allowed: GitHub adds fields over time.
 */
const workflowJobFields = z.object({
  id: z.int().positive(),
  run_id: z.int().positive(),
  run_attempt: z.int().positive().optional(),
  name: z.string(),
  status: z.string().min(1),
  conclusion: z.string().nullable().optional(),
  labels: z.array(z.string().max(256)).max(100, 'expected at most 100 labels'),
  created_at: z.string().optional(),
  started_at: z.string().nullable().optional(),
  completed_at: z.string().nullable().optional(),
  runner_name: z.string().nullable().optional(),
});

export type WorkflowJobFields = z.output<typeof workflowJobFields>;

/** GitHub's owner and repository names: letters, digits, `-`, `_` and `.`, never `.` or `..` alone. */
const repoFullName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'expected owner/name')
  .refine((name) => !name.split('/').some((part) => part === '.' || part === '..'), 'expected owner/name');

export const workflowJobPayloadSchema = z.object({
  action: z.string().min(1),
  workflow_job: workflowJobFields,
  repository: z.object({ full_name: repoFullName, private: z.boolean().optional() }),
  installation: z.object({ id: z.int() }).optional(),
});

export type WorkflowJobPayload = z.output<typeof workflowJobPayloadSchema>;

const login = z.object({ login: z.string() }).nullable().optional();

/**
 * A workflow_run delivery, in the fields that say where the run comes from (the REST run object's
 * names): enough to judge its jobs' origin before any of them is announced.
 */
export const workflowRunPayloadSchema = z.object({
  action: z.string().min(1),
  workflow_run: z.object({
    id: z.int().positive(),
    event: z.string().min(1),
    head_branch: z.string().nullable().optional(),
    repository: z.object({
      full_name: repoFullName,
      private: z.boolean().optional(),
      visibility: z.string().optional(),
    }),
    head_repository: z.object({ full_name: z.string() }).nullable().optional(),
    actor: login,
    triggering_actor: login,
  }),
  repository: z.object({ full_name: repoFullName }),
  installation: z.object({ id: z.int() }).optional(),
});

export type WorkflowRunPayload = z.output<typeof workflowRunPayloadSchema>;

export const jobListItemSchema = workflowJobFields;

/** Where a job is in its life, as far as demand goes. `waiting` (environment approval) is not demand yet. */
export type JobPhase = 'waiting' | 'queued' | 'started' | 'completed';

export const PHASE_ORDER: Record<JobPhase, number> = { waiting: 0, queued: 1, started: 2, completed: 3 };

/** The phase a webhook action announces; an unknown action is null (ignored, GitHub may add actions). */
export function phaseOfAction(action: string, status: string): JobPhase | null {
  switch (action) {
    case 'queued':
      // Older deliveries announce environment-gated jobs as action queued with status waiting.
      return status === 'waiting' ? 'waiting' : 'queued';
    case 'waiting':
      return 'waiting';
    case 'in_progress':
      return 'started';
    case 'completed':
      return 'completed';
    default:
      return null;
  }
}

/** The phase of a job as the REST API reports it. */
export function phaseOfStatus(status: string): JobPhase | null {
  switch (status) {
    case 'queued':
      return 'queued';
    case 'waiting':
    case 'pending':
    case 'requested':
      return 'waiting';
    case 'in_progress':
      return 'started';
    case 'completed':
      return 'completed';
    default:
      return null;
  }
}

const CONCLUSIONS = new Set<JobConclusion>([
  'success',
  'failure',
  'cancelled',
  'skipped',
  'timed_out',
  'neutral',
  'action_required',
]);

function conclusionOf(raw: string | null | undefined): JobConclusion {
  return raw && CONCLUSIONS.has(raw as JobConclusion) ? (raw as JobConclusion) : 'unknown';
}

/** A bad timestamp is bad input: the error names the field. */
export class JobFieldError extends Error {
  override name = 'JobFieldError';
}

function timestamp(job: WorkflowJobFields, field: 'created_at' | 'started_at' | 'completed_at'): number {
  const raw = job[field];
  const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms))
    throw new JobFieldError(
      `workflow_job.${field}: expected an ISO 8601 date-time, got ${JSON.stringify(raw ?? null)}`,
    );
  return ms;
}

export function identityOf(job: WorkflowJobFields, repo: string, origin: JobOrigin): JobIdentity {
  return {
    source: 'github',
    key: jobKey('github', job.id),
    repo,
    labels: [...job.labels],
    runId: String(job.run_id),
    runAttempt: job.run_attempt ?? 1,
    untrusted: origin.untrustedBecause !== undefined,
    origin,
    name: job.name,
  };
}

/**
 * The event for a job in a given phase, or null for `waiting` (no demand). Timestamps come from GitHub's
 * own fields; a payload without created_at (some old deliveries) falls back to started_at.
 */
export function eventOf(
  job: WorkflowJobFields,
  phase: JobPhase,
  identity: JobIdentity,
  via: ObservedVia,
): JobEvent | null {
  if (phase === 'waiting') return null;
  const createdAt =
    job.created_at !== undefined ? timestamp(job, 'created_at') : timestamp(job, 'started_at');
  const runnerName = job.runner_name ?? null;
  switch (phase) {
    case 'queued':
      return { kind: 'queued', job: identity, via, createdAt };
    case 'started':
      return {
        kind: 'started',
        job: identity,
        via,
        createdAt,
        startedAt: timestamp(job, 'started_at'),
        runnerName,
      };
    case 'completed':
      return {
        kind: 'completed',
        job: identity,
        via,
        createdAt,
        // A job cancelled before any runner took it never started, whatever started_at says.
        startedAt: runnerName ? timestamp(job, 'started_at') : null,
        completedAt: timestamp(job, 'completed_at'),
        conclusion: conclusionOf(job.conclusion),
        runnerName,
      };
  }
}

/** Checks, without side effects, that the job carries the timestamps its phase needs; the problem or null. */
export function checkJobFields(job: WorkflowJobFields, phase: JobPhase): string | null {
  try {
    eventOf(job, phase, identityOf(job, 'check/only', { event: 'check', headBranch: null }), 'webhook');
    return null;
  } catch (err) {
    if (err instanceof JobFieldError) return err.message;
    throw err;
  }
}
