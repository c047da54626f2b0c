/**
 * The Actions service's JSON, read defensively: each reader takes what it needs and throws a
 * WireError naming the field and what was found, so that one bad answer or message is reported
 * precisely and changes nothing. The service has no published description; the shapes are those
 * GitHub's own client (github.com/actions/scaleset) sends and decodes.
 */

/** A field of the service's answer that is missing or of the wrong kind. */
export class WireError extends Error {
  override name = 'WireError';
}

type Json = Record<string, unknown>;

const describe = (value: unknown): string => {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return typeof value === 'object' ? 'an object' : String(value);
};

export function asObject(value: unknown, what: string): Json {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  throw new WireError(`${what}: expected an object, got ${describe(value)}`);
}

function str(o: Json, key: string, what: string): string {
  const value = o[key];
  if (typeof value === 'string') return value;
  throw new WireError(`${what}.${key}: expected a string, got ${describe(value)}`);
}

function optionalStr(o: Json, key: string, what: string): string {
  return o[key] === undefined || o[key] === null ? '' : str(o, key, what);
}

/** Ids are int64 on the service's side; beyond 2^53 they would lose digits here. */
function id(o: Json, key: string, what: string, allowZero = false): number {
  const value = o[key];
  if (typeof value === 'number' && Number.isSafeInteger(value) && (value > 0 || (allowZero && value === 0))) {
    return value;
  }
  throw new WireError(
    `${what}.${key}: expected a ${allowZero ? 'non-negative' : 'positive'} id, got ${describe(value)}`,
  );
}

function count(o: Json, key: string, what: string): number {
  const value = o[key] ?? 0;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new WireError(`${what}.${key}: expected a count, got ${describe(value)}`);
}

/** The service writes unset times as 0001-01-01T00:00:00Z (Go's zero time): null here. */
function time(o: Json, key: string, what: string): number | null {
  const value = o[key];
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string')
    throw new WireError(`${what}.${key}: expected a time, got ${describe(value)}`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new WireError(`${what}.${key}: expected a time, got ${describe(value)}`);
  return ms <= 0 ? null : ms;
}

/** A list in the service's envelope, `{count, value: [...]}`. */
export function listOf<T>(value: unknown, what: string, item: (entry: unknown, what: string) => T): T[] {
  const o = asObject(value, what);
  if (!Array.isArray(o.value))
    throw new WireError(`${what}.value: expected an array, got ${describe(o.value)}`);
  return o.value.map((entry, i) => item(entry, `${what}.value[${i}]`));
}

// ── statistics, scale sets, sessions ───────────────────────────────────────────────────────────

/** A scale set's counts as the service keeps them; assigned jobs include running ones. */
export interface Statistics {
  availableJobs: number;
  acquiredJobs: number;
  assignedJobs: number;
  runningJobs: number;
  registeredRunners: number;
  busyRunners: number;
  idleRunners: number;
}

export function readStatistics(value: unknown, what: string): Statistics {
  const o = asObject(value, what);
  return {
    availableJobs: count(o, 'totalAvailableJobs', what),
    acquiredJobs: count(o, 'totalAcquiredJobs', what),
    assignedJobs: count(o, 'totalAssignedJobs', what),
    runningJobs: count(o, 'totalRunningJobs', what),
    registeredRunners: count(o, 'totalRegisteredRunners', what),
    busyRunners: count(o, 'totalBusyRunners', what),
    idleRunners: count(o, 'totalIdleRunners', what),
  };
}

export interface ScaleSet {
  id: number;
  name: string;
  runnerGroupId: number;
  runnerGroupName: string;
  labels: string[];
}

export function readScaleSet(value: unknown, what = 'scale set'): ScaleSet {
  const o = asObject(value, what);
  const labels = Array.isArray(o.labels) ? o.labels : [];
  return {
    id: id(o, 'id', what),
    name: str(o, 'name', what),
    runnerGroupId: id(o, 'runnerGroupId', what),
    runnerGroupName: optionalStr(o, 'runnerGroupName', what),
    labels: labels.map((label, i) =>
      str(asObject(label, `${what}.labels[${i}]`), 'name', `${what}.labels[${i}]`),
    ),
  };
}

export interface RunnerGroup {
  id: number;
  name: string;
}

export function readRunnerGroup(value: unknown, what: string): RunnerGroup {
  const o = asObject(value, what);
  return { id: id(o, 'id', what), name: str(o, 'name', what) };
}

export interface Session {
  sessionId: string;
  ownerName: string;
  messageQueueUrl: string;
  messageQueueAccessToken: string;
  statistics: Statistics | null;
}

export function readSession(value: unknown, what = 'session'): Session {
  const o = asObject(value, what);
  const messageQueueUrl = str(o, 'messageQueueUrl', what);
  try {
    new URL(messageQueueUrl);
  } catch {
    throw new WireError(`${what}.messageQueueUrl: expected a URL, got ${describe(messageQueueUrl)}`);
  }
  const sessionId = str(o, 'sessionId', what);
  if (!/^[A-Za-z0-9-]+$/.test(sessionId)) {
    throw new WireError(`${what}.sessionId: expected a session id, got ${describe(sessionId)}`);
  }
  return {
    sessionId,
    ownerName: optionalStr(o, 'ownerName', what),
    messageQueueUrl,
    messageQueueAccessToken: str(o, 'messageQueueAccessToken', what),
    statistics: o.statistics ? readStatistics(o.statistics, `${what}.statistics`) : null,
  };
}

// ── runners ────────────────────────────────────────────────────────────────────────────────────

export interface RunnerRef {
  id: number;
  name: string;
  scaleSetId: number;
}

export function readRunner(value: unknown, what = 'runner'): RunnerRef {
  const o = asObject(value, what);
  return {
    id: id(o, 'id', what),
    name: str(o, 'name', what),
    scaleSetId: id(o, 'runnerScaleSetId', what, true),
  };
}

export interface JitConfig {
  runner: RunnerRef;
  /** Secret: the runner's whole identity. Never logged. */
  encodedJitConfig: string;
}

export function readJitConfig(value: unknown, what = 'JIT config'): JitConfig {
  const o = asObject(value, what);
  const encodedJitConfig = str(o, 'encodedJITConfig', what);
  if (!encodedJitConfig)
    throw new WireError(`${what}.encodedJITConfig: expected a config, got an empty string`);
  return { runner: readRunner(o.runner, `${what}.runner`), encodedJitConfig };
}

// ── messages ───────────────────────────────────────────────────────────────────────────────────

export type JobMessageType = 'JobAvailable' | 'JobAssigned' | 'JobStarted' | 'JobCompleted';

const JOB_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'JobAvailable',
  'JobAssigned',
  'JobStarted',
  'JobCompleted',
]);

/** One entry of a message's body: news of one job of the scale set. */
export interface JobMessage {
  type: JobMessageType;
  /** The service's handle of the job request (acquisition, statistics): stable across its messages. */
  runnerRequestId: number;
  /** `owner/name` of the job's repository. */
  repo: string;
  jobId: string;
  /** `owner/repo/path@ref` of the workflow file the job is defined in (a called workflow's, for reusable ones). */
  workflowRef: string;
  displayName: string;
  workflowRunId: number;
  eventName: string;
  labels: string[];
  queuedAt: number | null;
  scaleSetAssignedAt: number | null;
  runnerAssignedAt: number | null;
  finishedAt: number | null;
  /** JobStarted, JobCompleted: the runner (its name is Gantry's pod name); 0 and '' when none ran it. */
  runnerId: number;
  runnerName: string;
  /** JobCompleted: the service's TaskResult (succeeded, failed, canceled, skipped, abandoned). */
  result: string;
}

const REPO_PART = /^[A-Za-z0-9_.-]+$/;

export function readJobMessage(value: unknown, what: string): JobMessage {
  const o = asObject(value, what);
  const type = str(o, 'messageType', what);
  if (!JOB_MESSAGE_TYPES.has(type))
    throw new WireError(`${what}.messageType: unknown type ${describe(type)}`);
  const owner = str(o, 'ownerName', what);
  const name = str(o, 'repositoryName', what);
  if (!REPO_PART.test(owner))
    throw new WireError(`${what}.ownerName: expected a GitHub account, got ${describe(owner)}`);
  if (!REPO_PART.test(name))
    throw new WireError(`${what}.repositoryName: expected a repository name, got ${describe(name)}`);
  const labels = o.requestLabels ?? [];
  if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string') || labels.length > 100) {
    throw new WireError(`${what}.requestLabels: expected at most 100 strings, got ${describe(labels)}`);
  }
  const eventName = optionalStr(o, 'eventName', what);
  if (eventName && !/^[a-z][a-z_]*$/.test(eventName)) {
    throw new WireError(`${what}.eventName: expected a GitHub event name, got ${describe(eventName)}`);
  }
  const started = type === 'JobStarted' || type === 'JobCompleted';
  return {
    type: type as JobMessageType,
    runnerRequestId: id(o, 'runnerRequestId', what),
    repo: `${owner}/${name}`,
    jobId: optionalStr(o, 'jobId', what),
    workflowRef: optionalStr(o, 'jobWorkflowRef', what),
    displayName: optionalStr(o, 'jobDisplayName', what),
    workflowRunId: id(o, 'workflowRunId', what),
    eventName,
    labels: labels as string[],
    queuedAt: time(o, 'queueTime', what),
    scaleSetAssignedAt: time(o, 'scaleSetAssignTime', what),
    runnerAssignedAt: time(o, 'runnerAssignTime', what),
    finishedAt: time(o, 'finishTime', what),
    runnerId: started && o.runnerId !== undefined ? id(o, 'runnerId', what, true) : 0,
    runnerName: started ? optionalStr(o, 'runnerName', what) : '',
    result: type === 'JobCompleted' ? optionalStr(o, 'result', what) : '',
  };
}

/** A message of the session's queue: statistics and a batch of job messages (at most 50). */
export interface QueueMessage {
  messageId: number;
  statistics: Statistics | null;
  jobs: JobMessage[];
  /** Entries of the body that could not be read, each naming its problem; the others are usable. */
  problems: string[];
}

/**
 * Reads a message. Its id must be readable (the message cannot be acknowledged otherwise) and its body
 * a JSON array; a bad entry of the array is reported in `problems` and the rest are kept.
 */
export function readQueueMessage(value: unknown): QueueMessage {
  const o = asObject(value, 'message');
  const messageId = id(o, 'messageId', 'message');
  const what = `message ${messageId}`;
  const type = str(o, 'messageType', what);
  const statistics = o.statistics ? readStatistics(o.statistics, `${what}.statistics`) : null;
  if (type !== 'RunnerScaleSetJobMessages') {
    return {
      messageId,
      statistics,
      jobs: [],
      problems: [`${what}.messageType: unknown type ${describe(type)}`],
    };
  }
  const raw = str(o, 'body', what);
  let entries: unknown;
  try {
    entries = raw === '' ? [] : JSON.parse(raw);
  } catch (err) {
    throw new WireError(`${what}.body: not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(entries))
    throw new WireError(`${what}.body: expected a JSON array, got ${describe(entries)}`);
  const jobs: JobMessage[] = [];
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    try {
      jobs.push(readJobMessage(entry, `${what}.body[${i}]`));
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      problems.push(err.message);
    }
  });
  return { messageId, statistics, jobs, problems };
}

/** The service's error body (a serialized .NET exception): its type's short name and its message. */
export function readServiceError(value: unknown): { exception: string; message: string } | null {
  if (!value || typeof value !== 'object') return null;
  const o = value as Json;
  const typeName = typeof o.typeName === 'string' ? o.typeName : '';
  const typeKey = typeof o.typeKey === 'string' ? o.typeKey : '';
  // "GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionConflictException, GitHub.Actions.Runtime.WebApi"
  const qualified = typeName.split(',')[0]?.trim() ?? '';
  const exception = typeKey || qualified.slice(qualified.lastIndexOf('.') + 1);
  const message = typeof o.message === 'string' ? o.message : '';
  return exception || message ? { exception, message } : null;
}

/** The claims of a JWT, read without verifying it (the token's issuer checks it; Gantry reads `exp`). */
export function jwtExpiry(token: string): number | null {
  const body = token.split('.')[1];
  if (!body) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    const exp = claims && typeof claims === 'object' ? (claims as Json).exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}
