import type { LedgerChange } from '../ledger/ledger.ts';
import type { EpochMillis, JobIdentity } from '../model/job.ts';
import { formatTraceHeader, formatTraceJob, type TraceJob } from './format.ts';

/**
 * A running Gantry's own record of the GitHub jobs it saw end, as trace jobs, for `gantry trace
 * export --gantry`. It observes ledger changes (no second source of truth: the ledger forgets a job
 * once it ended, this keeps its trace line) and holds the last `capacity` jobs. A job whose queueing
 * Gantry did not see (it started before Gantry did) is left out: its creation time is unknown.
 * Visibility is what the trust policy could tell: public only when that made the job untrusted.
 */

interface Pending {
  identity: JobIdentity;
  createdAt: EpochMillis;
  startedAt?: EpochMillis;
  runnerName?: string;
}

export class JobRecorder {
  readonly #capacity: number;
  readonly #pending = new Map<string, Pending>();
  /** A ring of ended jobs, oldest first from `#next`. */
  readonly #ended: (TraceJob | undefined)[];
  #next = 0;
  #count = 0;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
    this.#ended = new Array<TraceJob | undefined>(this.#capacity);
  }

  observe(change: LedgerChange): void {
    switch (change.kind) {
      case 'job-queued':
        if (change.job.identity.source === 'github') {
          this.#pending.set(change.job.identity.key, {
            identity: change.job.identity,
            createdAt: change.job.createdAt,
          });
        }
        return;
      case 'job-started': {
        const pending = this.#pending.get(change.job.identity.key);
        if (!pending) return;
        if (change.job.startedAt !== undefined) pending.startedAt = change.job.startedAt;
        if (change.job.runnerName) pending.runnerName = change.job.runnerName;
        return;
      }
      case 'job-completed': {
        const pending = this.#pending.get(change.job.key);
        if (!pending) return;
        this.#pending.delete(change.job.key);
        this.#push(
          toTraceJob(
            pending,
            change.startedAt ?? pending.startedAt,
            change.completedAt,
            change.runnerName ?? pending.runnerName,
          ),
        );
        return;
      }
      default:
        return;
    }
  }

  #push(job: TraceJob): void {
    this.#ended[this.#next] = job;
    this.#next = (this.#next + 1) % this.#capacity;
    this.#count = Math.min(this.#capacity, this.#count + 1);
  }

  /** Ended jobs created at or after `since`, oldest first. */
  jobs(since = Number.NEGATIVE_INFINITY): TraceJob[] {
    const out: TraceJob[] = [];
    const first = this.#count < this.#capacity ? 0 : this.#next;
    for (let i = 0; i < this.#count; i++) {
      const job = this.#ended[(first + i) % this.#capacity];
      if (job && job.created >= since) out.push(job);
    }
    return out.sort((a, b) => a.created - b.created);
  }

  /** The trace as served at GET /api/trace: a header line, then one line per job. */
  trace(since: EpochMillis | undefined, now: EpochMillis): string {
    const jobs = this.jobs(since);
    const header = formatTraceHeader({
      source: 'gantry',
      ...(jobs[0] ? { from: new Date(since ?? jobs[0].created).toISOString() } : {}),
      to: new Date(now).toISOString(),
      exportedAt: new Date(now).toISOString(),
    });
    return `${[header, ...jobs.map(formatTraceJob)].join('\n')}\n`;
  }
}

function toTraceJob(
  pending: Pending,
  startedAt: EpochMillis | undefined,
  completedAt: EpochMillis,
  runnerName: string | undefined,
): TraceJob {
  const { identity, createdAt } = pending;
  const origin = identity.origin;
  const ran = startedAt !== undefined && runnerName !== undefined;
  return {
    job: identity.key.replace(/^github:/, ''),
    run: identity.runId,
    attempt: identity.runAttempt,
    repo: identity.repo,
    labels: [...identity.labels],
    created: createdAt,
    ...(ran
      ? {
          started: Math.max(createdAt, startedAt),
          durationMs: Math.max(0, completedAt - Math.max(createdAt, startedAt)),
        }
      : { cancelledAt: Math.max(createdAt, completedAt) }),
    fork: origin?.untrustedBecause === 'fork',
    visibility: origin?.untrustedBecause === 'public-repository' ? 'public' : 'private',
    event: origin?.event ?? 'push',
    branch: origin?.headBranch ?? null,
    name: identity.name,
    ...(runnerName !== undefined ? { runner: runnerName } : {}),
  };
}
