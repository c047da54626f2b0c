import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { EpochMillis } from '../model/job.ts';
import { InputError } from '../util/input-error.ts';

/**
 * The trace format: JSON Lines, one GitHub Actions job per line, optionally preceded by one header
 * line. It is what `gantry trace export` writes and `gantry simulate` replays (docs/trace-format.md).
 * Times are RFC 3339; a job that never started but left the queue (cancelled) has `completed` and no
 * `started`; a job that ran has `started` and `completed`, or `duration` in seconds.
 */

export const TRACE_FORMAT = 'gantry-trace';
export const TRACE_VERSION = 1;

const time = z.iso.datetime({
  offset: true,
  error: 'expected an RFC 3339 time such as 2026-01-05T09:00:00Z',
});
const id = z
  .union([z.string().min(1), z.int().nonnegative()], { error: 'expected an id (a string or a whole number)' })
  .transform(String);

const jobLine = z
  .strictObject({
    job: id.describe('The job id (GitHub: workflow job id).'),
    run: id.describe('The workflow run id; jobs of one run arrive together.'),
    attempt: z.int().positive().default(1).describe('The run attempt (re-runs have new job ids).'),
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name'),
    labels: z
      .array(z.string().min(1, { error: 'expected a non-empty label' }))
      .min(1, { error: 'expected at least one label (runs-on)' }),
    created: time.describe('When the job was queued.'),
    started: time.optional().describe('When a runner took it.'),
    completed: time.optional().describe('When it ended (or was cancelled while queued).'),
    duration: z
      .number({ error: 'expected seconds' })
      .nonnegative({ error: 'expected seconds >= 0' })
      .optional()
      .describe('Seconds it ran, when started and completed are not given.'),
    fork: z
      .boolean()
      .default(false)
      .describe('The run comes from a fork (a pull request from another repository).'),
    visibility: z.enum(['public', 'private', 'internal']).default('private'),
    event: z.string().min(1).default('push').describe('The event that triggered the run.'),
    branch: z.string().nullable().default(null).describe('The run’s head branch or tag.'),
    actor: z.string().min(1).optional().describe('Who triggered the run.'),
    name: z.string().optional(),
    conclusion: z.string().optional(),
    runner: z.string().nullable().optional().describe('The runner that ran it, as recorded.'),
  })
  .superRefine((line, ctx) => {
    const created = Date.parse(line.created);
    const started = line.started !== undefined ? Date.parse(line.started) : undefined;
    const completed = line.completed !== undefined ? Date.parse(line.completed) : undefined;
    if (started !== undefined && started < created) {
      ctx.addIssue({ code: 'custom', path: ['started'], message: 'is before created' });
    }
    if (completed !== undefined && completed < (started ?? created)) {
      ctx.addIssue({
        code: 'custom',
        path: ['completed'],
        message: `is before ${started !== undefined ? 'started' : 'created'}`,
      });
    }
    if (started !== undefined && completed === undefined && line.duration === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['completed'],
        message: 'required with started (or give duration)',
      });
    }
    if (started === undefined && completed === undefined && line.duration === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['duration'],
        message:
          'required when neither started and completed nor completed (a job cancelled in the queue) are given',
      });
    }
    if (line.duration !== undefined && started !== undefined && completed !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['duration'],
        message: 'give either duration or started and completed, not both',
      });
    }
  });

const headerLine = z.strictObject({
  format: z.literal(TRACE_FORMAT),
  version: z.literal(TRACE_VERSION, { error: `expected version ${TRACE_VERSION}` }),
  source: z.enum(['github', 'gantry', 'synthetic']).optional(),
  repositories: z.array(z.string()).optional(),
  from: time.optional(),
  to: time.optional(),
  exportedAt: time.optional(),
  note: z.string().optional(),
});

export type TraceHeader = z.output<typeof headerLine>;

/** One job of a trace, with times as epoch milliseconds. */
export interface TraceJob {
  job: string;
  run: string;
  attempt: number;
  repo: string;
  labels: string[];
  created: EpochMillis;
  /** When a runner took it, as recorded (the simulator replays arrivals, not these starts). */
  started?: EpochMillis;
  /** Milliseconds it ran; absent for a job cancelled while queued. */
  durationMs?: number;
  /** A job that never ran: when it left the queue. */
  cancelledAt?: EpochMillis;
  fork: boolean;
  visibility: 'public' | 'private' | 'internal';
  event: string;
  branch: string | null;
  actor?: string;
  name?: string;
  conclusion?: string;
  runner?: string | null;
}

export interface Trace {
  header?: TraceHeader;
  /** In order of creation (stable for equal times). */
  jobs: TraceJob[];
}

function toJob(line: z.output<typeof jobLine>): TraceJob {
  const created = Date.parse(line.created);
  const started = line.started !== undefined ? Date.parse(line.started) : undefined;
  const completed = line.completed !== undefined ? Date.parse(line.completed) : undefined;
  const durationMs =
    line.duration !== undefined
      ? Math.round(line.duration * 1000)
      : started !== undefined && completed !== undefined
        ? completed - started
        : undefined;
  return {
    job: line.job,
    run: line.run,
    attempt: line.attempt,
    repo: line.repo,
    labels: line.labels,
    created,
    ...(started !== undefined ? { started } : {}),
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(durationMs === undefined && completed !== undefined ? { cancelledAt: completed } : {}),
    fork: line.fork,
    visibility: line.visibility,
    event: line.event,
    branch: line.branch,
    ...(line.actor !== undefined ? { actor: line.actor } : {}),
    ...(line.name !== undefined ? { name: line.name } : {}),
    ...(line.conclusion !== undefined ? { conclusion: line.conclusion } : {}),
    ...(line.runner !== undefined ? { runner: line.runner } : {}),
  };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.join(', ')}`;
  const path = issue.path.join('.');
  return path ? `field ${path}: ${issue.message}` : issue.message;
}

/**
 * Parses one line of a trace (`where` names it in errors): a job, a header, or nothing for a blank
 * line. Throws an InputError naming the line and the field.
 */
export function parseTraceLine(
  text: string,
  where: string,
  headerAllowed: boolean,
): TraceJob | TraceHeader | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch (err) {
    throw new InputError(`${where}: not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(`${where}: expected a JSON object (one job per line)`);
  }
  if ('format' in raw) {
    if (!headerAllowed) throw new InputError(`${where}: a header is allowed on the first line only`);
    const header = headerLine.safeParse(raw);
    if (!header.success)
      throw new InputError(`${where}: header: ${describeIssue(header.error.issues[0] as z.core.$ZodIssue)}`);
    return header.data;
  }
  const job = jobLine.safeParse(raw);
  if (!job.success)
    throw new InputError(`${where}: ${describeIssue(job.error.issues[0] as z.core.$ZodIssue)}`);
  return toJob(job.data);
}

function isHeader(value: TraceJob | TraceHeader): value is TraceHeader {
  return 'format' in value;
}

/** Parses a whole trace held in memory (`name` names it in errors). */
export function parseTrace(text: string, name = 'trace'): Trace {
  const trace: Trace = { jobs: [] };
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) addLine(trace, seen, lines[i] ?? '', `${name} line ${i + 1}`);
  return finish(trace, name);
}

/** Reads a trace file line by line, so a large trace is never held as one string. */
export async function readTraceFile(path: string): Promise<Trace> {
  const trace: Trace = { jobs: [] };
  const seen = new Set<string>();
  const stream = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      `cannot read trace ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
    );
  }
  let number = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    number += 1;
    addLine(trace, seen, line, `trace ${path} line ${number}`);
  }
  return finish(trace, `trace ${path}`);
}

function addLine(trace: Trace, seen: Set<string>, line: string, where: string): void {
  const parsed = parseTraceLine(line, where, trace.jobs.length === 0 && trace.header === undefined);
  if (!parsed) return;
  if (isHeader(parsed)) {
    trace.header = parsed;
    return;
  }
  const key = `${parsed.job}#${parsed.attempt}`;
  if (seen.has(key))
    throw new InputError(`${where}: job ${parsed.job} (attempt ${parsed.attempt}) appears twice`);
  seen.add(key);
  trace.jobs.push(parsed);
}

function finish(trace: Trace, name: string): Trace {
  if (trace.jobs.length === 0) throw new InputError(`${name}: no jobs`);
  // Exports list runs newest first; replay needs arrival order. Sort is stable for equal times.
  trace.jobs.sort((a, b) => a.created - b.created);
  return trace;
}

const iso = (ms: EpochMillis) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** One job as a trace line (no newline). */
export function formatTraceJob(job: TraceJob): string {
  const completed =
    job.started !== undefined && job.durationMs !== undefined
      ? job.started + job.durationMs
      : job.cancelledAt;
  const line: Record<string, unknown> = {
    job: job.job,
    run: job.run,
    ...(job.attempt !== 1 ? { attempt: job.attempt } : {}),
    repo: job.repo,
    labels: job.labels,
    created: iso(job.created),
    ...(job.started !== undefined ? { started: iso(job.started) } : {}),
    ...(completed !== undefined ? { completed: iso(completed) } : {}),
    ...(job.started === undefined && job.durationMs !== undefined ? { duration: job.durationMs / 1000 } : {}),
    ...(job.fork ? { fork: true } : {}),
    visibility: job.visibility,
    event: job.event,
    branch: job.branch,
    ...(job.actor !== undefined ? { actor: job.actor } : {}),
    ...(job.name !== undefined ? { name: job.name } : {}),
    ...(job.conclusion !== undefined ? { conclusion: job.conclusion } : {}),
    ...(job.runner !== undefined ? { runner: job.runner } : {}),
  };
  return JSON.stringify(line);
}

export function formatTraceHeader(header: Omit<TraceHeader, 'format' | 'version'>): string {
  return JSON.stringify({ format: TRACE_FORMAT, version: TRACE_VERSION, ...header });
}
