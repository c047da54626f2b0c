/**
 * Builders of the JSON the GitHub Actions service speaks to scale-set clients. The shapes follow what
 * GitHub's own client (`github.com/actions/scaleset`, types.go and errors.go) sends and decodes; the
 * service has no published description. Where the client would accept several forms, the comment says
 * which one the fake picked.
 */

import { createHmac, randomBytes } from 'node:crypto';

/** Per scale set, as the service attaches it to sessions, scale sets and every message. */
export interface Statistics {
  totalAvailableJobs: number;
  totalAcquiredJobs: number;
  totalAssignedJobs: number;
  totalRunningJobs: number;
  totalRegisteredRunners: number;
  totalBusyRunners: number;
  totalIdleRunners: number;
}

export interface ScaleSetLabel {
  name: string;
  type: string;
}

export interface FakeScaleSet {
  id: number;
  name: string;
  runnerGroupId: number;
  runnerGroupName: string;
  labels: ScaleSetLabel[];
  disableUpdate: boolean;
  createdAt: number;
}

export interface FakeRunnerGroup {
  id: number;
  name: string;
  isDefault: boolean;
}

/**
 * Where a job stands for its scale set:
 * available (announced, not acquired) → acquired (waiting for capacity) → assigned (to the scale set,
 * waiting for a runner) → running → completed; `requeued` waits out GitHub's delay after a runner
 * did not pick the job up in time, `canceled` is final.
 */
export type JobState =
  | 'available'
  | 'acquired'
  | 'assigned'
  | 'running'
  | 'requeued'
  | 'completed'
  | 'canceled';

/** TaskResult names, as the service writes them in JobCompleted.result. */
export type JobResult = 'succeeded' | 'failed' | 'canceled' | 'skipped' | 'abandoned';

export interface FakeScaleSetJob {
  runnerRequestId: number;
  scaleSetId: number;
  jobId: string;
  repositoryName: string;
  ownerName: string;
  workflowRef: string;
  displayName: string;
  workflowRunId: number;
  eventName: string;
  labels: string[];
  state: JobState;
  queuedAt: number;
  scaleSetAssignedAt: number | null;
  runnerAssignedAt: number | null;
  finishedAt: number | null;
  runner: { id: number; name: string } | null;
  result: JobResult | null;
  /** How often GitHub already took the job back from the scale set (it gives up after `maxRequeues`). */
  requeues: number;
  /** Clock time of the next automatic step: the pickup deadline while assigned, the requeue while requeued. */
  dueAt: number | null;
}

export interface FakeAgent {
  id: number;
  name: string;
  scaleSetId: number;
  /** Offline until its process connects (the test says when). */
  status: 'offline' | 'online';
  runnerRequestId: number | null;
  workFolder: string;
  createdAt: number;
}

export type JobMessageType = 'JobAvailable' | 'JobAssigned' | 'JobStarted' | 'JobCompleted';

/** What the client reads of a zero `time.Time`: the service leaves unset times at the epoch of year 1. */
const UNSET_TIME = '0001-01-01T00:00:00Z';
const time = (ms: number | null): string => (ms === null ? UNSET_TIME : new Date(ms).toISOString());

/** One entry of a message's `body` array. */
export function jobMessage(type: JobMessageType, job: FakeScaleSetJob, tenantUrl: string) {
  const common = {
    messageType: type,
    runnerRequestId: job.runnerRequestId,
    repositoryName: job.repositoryName,
    ownerName: job.ownerName,
    jobId: job.jobId,
    jobWorkflowRef: job.workflowRef,
    jobDisplayName: job.displayName,
    workflowRunId: job.workflowRunId,
    eventName: job.eventName,
    requestLabels: job.labels,
    queueTime: time(job.queuedAt),
    scaleSetAssignTime: time(job.scaleSetAssignedAt),
    runnerAssignTime: time(job.runnerAssignedAt),
    finishTime: time(job.finishedAt),
  };
  switch (type) {
    case 'JobAvailable':
      return {
        ...common,
        acquireJobUrl: `${tenantUrl}_apis/runtime/runnerscalesets/${job.scaleSetId}/acquirejobs`,
      };
    case 'JobAssigned':
      return common;
    case 'JobStarted':
      return { ...common, runnerId: job.runner?.id ?? 0, runnerName: job.runner?.name ?? '' };
    case 'JobCompleted':
      return {
        ...common,
        result: job.result ?? 'canceled',
        runnerId: job.runner?.id ?? 0,
        runnerName: job.runner?.name ?? '',
      };
  }
}

export type JobMessage = ReturnType<typeof jobMessage>;

/** A message of the long-poll queue: the job messages travel as one JSON *string*. */
export function queueMessage(messageId: number, body: readonly JobMessage[], statistics: Statistics) {
  return {
    messageId,
    messageType: 'RunnerScaleSetJobMessages',
    body: JSON.stringify(body),
    statistics,
  };
}

export function scaleSetBody(set: FakeScaleSet, tenantUrl: string, statistics: Statistics) {
  return {
    id: set.id,
    name: set.name,
    runnerGroupId: set.runnerGroupId,
    runnerGroupName: set.runnerGroupName,
    labels: set.labels,
    // The Go client sends `RunnerSetting` and decodes case-insensitively; the fake answers in the
    // service's camelCase, so a case-sensitive client must accept both.
    runnerSetting: { disableUpdate: set.disableUpdate },
    createdOn: new Date(set.createdAt).toISOString(),
    runnerJitConfigUrl: `${tenantUrl}_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`,
    statistics,
  };
}

export function sessionBody(
  session: { id: string; ownerName: string; queueToken: string },
  set: ReturnType<typeof scaleSetBody>,
  messageQueueUrl: string,
  statistics: Statistics,
) {
  return {
    sessionId: session.id,
    ownerName: session.ownerName,
    runnerScaleSet: set,
    messageQueueUrl,
    messageQueueAccessToken: session.queueToken,
    statistics,
  };
}

export function runnerGroupBody(group: FakeRunnerGroup, size: number) {
  return { id: group.id, name: group.name, size, isDefaultGroup: group.isDefault };
}

/** The service's list envelope. */
export const list = <T>(value: readonly T[]) => ({ count: value.length, value });

export function runnerReference(agent: FakeAgent) {
  return { id: agent.id, name: agent.name, runnerScaleSetId: agent.scaleSetId };
}

/**
 * A JIT config as the runner decodes it: base64 of a JSON map from file name (.runner, .credentials,
 * .credentials_rsaparams) to base64 file content. Opaque to autoscalers; the fake fills what a reader
 * would look for.
 */
export function encodedJitConfig(agent: FakeAgent, tenantUrl: string, githubUrl: string): string {
  const file = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
  return file({
    '.runner': file({
      AgentId: agent.id,
      AgentName: agent.name,
      PoolId: 1,
      PoolName: 'Default',
      ServerUrl: tenantUrl,
      GitHubUrl: githubUrl,
      WorkFolder: agent.workFolder,
      Ephemeral: true,
      RunnerScaleSetId: agent.scaleSetId,
    }),
    '.credentials': file({ Scheme: 'OAuth', Data: { ClientId: randomBytes(16).toString('hex') } }),
    '.credentials_rsaparams': randomBytes(48).toString('base64'),
  });
}

/**
 * The service's error body: a serialized .NET exception. The Go client matches `typeName` by substring
 * (AgentExistsException, AgentNotFoundException, JobStillRunningException), and real answers carry the
 * assembly-qualified name, e.g. "GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionConflictException,
 * GitHub.Actions.Runtime.WebApi" (quoted in actions-runner-controller#4285).
 */
export function serviceError(
  exception: string,
  message: string,
  namespace = 'GitHub.Actions.Runtime.WebApi',
) {
  return {
    $id: '1',
    innerException: null,
    message,
    typeName: `${namespace}.${exception}, ${namespace}`,
    typeKey: exception,
    errorCode: 0,
    eventId: 3000,
  };
}

/** Agents live in the distributed-task namespace (the pool API predates scale sets). */
export const AGENT_NAMESPACE = 'GitHub.DistributedTask.WebApi';

/** A signed HS256 JWT: clients read `exp` from it without verifying, so the signature only looks real. */
export function signJwt(claims: Record<string, unknown>, secret: Buffer): string {
  const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** The claims of a JWT (unverified), or null when it is not one. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const body = token.split('.')[1];
  if (!body) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
