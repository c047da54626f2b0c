import type { EpochMillis, JobConclusion, JobEvent, JobIdentity, JobOrigin } from '../../model/job.ts';
import type { JobMessage, QueueMessage, Statistics } from './wire.ts';

/**
 * What one scale set's messages say, turned into job events for the ledger, and which messages can be
 * acknowledged. No I/O: the listener feeds it messages, origins and statistics.
 *
 * Jobs: JobAssigned queues a job (the service gave it to the scale set: it waits for one of its
 * runners), JobStarted starts it on the named runner, JobCompleted ends it. A JobCompleted for a job
 * no runner took is the service taking it back (its pickup time ran out; it may be offered again,
 * up to three times): the job leaves the queue, and a later JobAssigned queues it afresh under a new
 * key, since the ledger never revives an ended key. Events of a job wait while its origin is looked
 * up, so that its trust is known before any runner is planned or judged for it.
 *
 * Acknowledgement: a message is deleted from the queue once nothing in it is still needed, that is,
 * once every job it brought news of has newer news or has ended. A message holding the latest news of
 * a waiting or running job stays unacknowledged, so that a restarted Gantry (or a new leader, with a
 * new session) is sent it again and learns which jobs wait and which runners are busy, instead of
 * taking busy runners for idle ones. A message older than `maxRetentionMs` is let go anyway: its job
 * is taken as ended (GitHub cancels a job queued for a day, and a class's pods have a deadline).
 *
 * Statistics: the service counts the scale set's assigned and running jobs. Waiting jobs it counts
 * that no message has named (a batch cut at 50, or news a predecessor acknowledged) are queued as
 * unnamed jobs, so that they get runners too; their number follows the statistics, never adding to
 * the named ones.
 */

export interface JobBookOptions {
  className: string;
  scaleSetId: number;
  /** The scale set's labels, given to unnamed jobs. */
  labels: readonly string[];
  maxRetentionMs: number;
  /**
   * Which time this process holds the scale set's session: keys of an earlier hold are not used again,
   * since the ledger never revives a key that ended (see `handOver`).
   */
  epoch?: number;
}

type Phase = 'available' | 'waiting' | 'running' | 'returned' | 'ended';

/** Where a job stands: as the messages say (`truth`), or as the ledger was told (`told`). */
interface Progress {
  phase: Phase;
  /** How often the service assigned it to the scale set; part of its key from the second time on. */
  assignment: number;
  /** Whether a queued (or started) event went out for the current assignment. */
  announced: boolean;
}

interface TrackedJob {
  runnerRequestId: number;
  truth: Progress;
  told: Progress;
  /** The latest news, and when it came. */
  last: JobMessage;
  lastAt: EpochMillis;
  /** The message holding its latest news, while the job needs it kept. */
  newest?: number;
  /** Set once known. */
  origin?: JobOrigin;
  /** News not told yet because the origin is not known, in order. */
  held: JobMessage[];
  /** Available jobs: acquisition was done or declined. */
  settled: boolean;
}

interface RetainedMessage {
  /** Jobs whose latest news this message holds. */
  jobs: Set<number>;
  receivedAt: EpochMillis;
  /** Some entry could not be read: kept (and read again by a successor) until it ages out. */
  problem: boolean;
}

export interface ApplyResult {
  events: JobEvent[];
  /** The message had been applied before (a new session reads unacknowledged messages again). */
  redelivered: boolean;
}

/** How long a job that ended (or that the service took back) is remembered. */
const OVER_JOBS_KEPT_MS = 3_600_000;

const ZERO_STATISTICS: Statistics = {
  availableJobs: 0,
  acquiredJobs: 0,
  assignedJobs: 0,
  runningJobs: 0,
  registeredRunners: 0,
  busyRunners: 0,
  idleRunners: 0,
};

const CONCLUSIONS: Readonly<Record<string, JobConclusion>> = {
  succeeded: 'success',
  failed: 'failure',
  canceled: 'cancelled',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

export class JobBook {
  readonly #options: JobBookOptions;
  readonly #jobs = new Map<number, TrackedJob>();
  readonly #retained = new Map<number, RetainedMessage>();
  /** Messages applied and acknowledged: one seen again is only acknowledged again. */
  readonly #done = new Set<number>();
  #unnamed: { key: string; createdAt: EpochMillis }[] = [];
  #unnamedSeq = 0;
  #statistics: Statistics | null = null;

  constructor(options: JobBookOptions) {
    this.#options = options;
  }

  /**
   * Applies a message's job news in order. `originOf` gives a job's origin when it is known without
   * waiting; the events of a job whose origin is not are held until `resolveOrigin`.
   */
  apply(
    message: QueueMessage,
    now: EpochMillis,
    originOf: (job: JobMessage) => JobOrigin | undefined,
  ): ApplyResult {
    const redelivered = this.#retained.has(message.messageId) || this.#done.has(message.messageId);
    const result: ApplyResult = { events: [], redelivered };
    if (redelivered) return result;
    const entry: RetainedMessage = { jobs: new Set(), receivedAt: now, problem: message.problems.length > 0 };
    this.#retained.set(message.messageId, entry);
    for (const news of message.jobs) {
      let job = this.#jobs.get(news.runnerRequestId);
      if (!job) {
        job = {
          runnerRequestId: news.runnerRequestId,
          truth: { phase: 'available', assignment: 0, announced: false },
          told: { phase: 'available', assignment: 0, announced: false },
          last: news,
          lastAt: now,
          held: [],
          settled: false,
        };
        this.#jobs.set(news.runnerRequestId, job);
      }
      job.last = news;
      job.lastAt = now;
      advance(job.truth, news);
      if (news.type === 'JobAvailable') job.settled = false;
      job.held.push(news);
      if (job.origin === undefined) {
        const origin = originOf(news);
        if (origin !== undefined) job.origin = origin;
      }
      result.events.push(...this.#tell(job, now));
      this.#retain(job, message.messageId);
    }
    return result;
  }

  /** The origin of a job whose events were held: its news since then, as events. */
  resolveOrigin(runnerRequestId: number, origin: JobOrigin, now: EpochMillis): JobEvent[] {
    const job = this.#jobs.get(runnerRequestId);
    if (!job || job.origin !== undefined) return [];
    job.origin = origin;
    const events = this.#tell(job, now);
    this.#retain(job, job.newest);
    return events;
  }

  /** The latest news of jobs whose events wait for their origin. */
  awaitingOrigin(): JobMessage[] {
    return [...this.#jobs.values()]
      .filter((j) => j.origin === undefined && j.held.length > 0)
      .map((j) => j.last);
  }

  /** Announced jobs not acquired or declined yet, with their origin when known. */
  unsettledAvailable(): { news: JobMessage; origin?: JobOrigin }[] {
    return [...this.#jobs.values()]
      .filter((j) => j.truth.phase === 'available' && !j.settled)
      .map((j) => ({ news: j.last, ...(j.origin ? { origin: j.origin } : {}) }));
  }

  /** Acquisition of these announced jobs was done (or declined): they no longer hold their message. */
  settle(runnerRequestIds: readonly number[]): void {
    for (const id of runnerRequestIds) {
      const job = this.#jobs.get(id);
      if (job?.truth.phase !== 'available') continue;
      job.settled = true;
      this.#retain(job, job.newest);
    }
  }

  /**
   * The service's latest statistics. Returns the events that bring the unnamed jobs to what they count
   * as waiting beyond the jobs named by messages.
   */
  setStatistics(statistics: Statistics, now: EpochMillis): JobEvent[] {
    this.#statistics = statistics;
    let named = 0;
    for (const job of this.#jobs.values()) if (job.truth.phase === 'waiting') named++;
    const target = Math.max(0, statistics.assignedJobs - statistics.runningJobs - named);
    const events: JobEvent[] = [];
    while (this.#unnamed.length < target) {
      const key = `github:scaleset/${this.#options.scaleSetId}/unnamed/${++this.#unnamedSeq}${this.#epochSuffix}`;
      this.#unnamed.push({ key, createdAt: now });
      events.push({ kind: 'queued', job: this.#unnamedIdentity(key), via: 'poll', createdAt: now });
    }
    while (this.#unnamed.length > target) {
      const gone = this.#unnamed.pop();
      if (!gone) break;
      events.push({
        kind: 'completed',
        job: this.#unnamedIdentity(gone.key),
        via: 'poll',
        createdAt: gone.createdAt,
        startedAt: null,
        completedAt: now,
        conclusion: 'unknown',
        runnerName: null,
      });
    }
    return events;
  }

  /** Messages whose news nobody needs any more, to delete from the queue. */
  acknowledgeable(): number[] {
    const ids: number[] = [];
    for (const [id, entry] of this.#retained) if (entry.jobs.size === 0 && !entry.problem) ids.push(id);
    return ids;
  }

  /** The service deleted the message. */
  acknowledged(messageId: number): void {
    this.#retained.delete(messageId);
    this.#done.add(messageId);
    // Ids only grow: the oldest half goes once the set is large.
    if (this.#done.size > 20_000) {
      const oldest = [...this.#done].sort((a, b) => a - b).slice(0, 10_000);
      for (const id of oldest) this.#done.delete(id);
    }
  }

  /**
   * Lets go of messages kept longer than the retention: their jobs are taken as ended (events say so),
   * and the messages become acknowledgeable.
   */
  expire(now: EpochMillis): JobEvent[] {
    const events: JobEvent[] = [];
    for (const entry of this.#retained.values()) {
      if (now - entry.receivedAt < this.#options.maxRetentionMs) continue;
      entry.problem = false;
      for (const id of [...entry.jobs]) {
        const job = this.#jobs.get(id);
        if (!job) continue;
        const { told } = job;
        if (told.announced && (told.phase === 'waiting' || told.phase === 'running')) {
          events.push(this.#completed(job, job.last, 'unknown', now));
        }
        job.truth.phase = 'ended';
        told.phase = 'ended';
        job.held = [];
        this.#retain(job, undefined);
      }
    }
    // An ended job is kept a while to recognise late news of it, and a returned one to count its
    // assignments should the service offer it again (within minutes; it gives up after three tries).
    const keepOverMs = Math.min(this.#options.maxRetentionMs, OVER_JOBS_KEPT_MS);
    for (const [id, job] of this.#jobs) {
      const over = job.truth.phase === 'ended' || job.truth.phase === 'returned';
      if (over && job.newest === undefined && now - job.lastAt > keepOverMs) this.#jobs.delete(id);
    }
    return events;
  }

  counts(): { waiting: number; running: number; unnamed: number; retained: number; awaitingOrigin: number } {
    let waiting = 0;
    let running = 0;
    let awaitingOrigin = 0;
    for (const job of this.#jobs.values()) {
      if (job.truth.phase === 'waiting') waiting++;
      if (job.truth.phase === 'running') running++;
      if (job.origin === undefined && job.held.length > 0) awaitingOrigin++;
    }
    return { waiting, running, unnamed: this.#unnamed.length, retained: this.#retained.size, awaitingOrigin };
  }

  get statistics(): Statistics | null {
    return this.#statistics;
  }

  /**
   * This process lets go of the session (it stops leading): another holds it from now, acknowledges
   * what it applies, and this book would go stale. The ledger is told that the jobs it was told of
   * are no longer this book's (completed, conclusion unknown, no times that would count as a run);
   * a later hold starts a new book with a new epoch, and reads the unacknowledged messages again.
   */
  handOver(now: EpochMillis): JobEvent[] {
    const events: JobEvent[] = [];
    for (const job of this.#jobs.values()) {
      const { told } = job;
      if (!told.announced || (told.phase !== 'waiting' && told.phase !== 'running')) continue;
      events.push({
        kind: 'completed',
        job: this.#identity(job, job.last),
        via: 'poll',
        createdAt: createdAt(job.last, now),
        startedAt: null,
        completedAt: now,
        conclusion: 'unknown',
        runnerName: null,
      });
    }
    events.push(...this.setStatistics({ ...ZERO_STATISTICS }, now));
    this.#jobs.clear();
    this.#retained.clear();
    return events;
  }

  get #epochSuffix(): string {
    return this.#options.epoch ? `@${this.#options.epoch}` : '';
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  /** Tells the ledger the job's held news, once its origin is known. */
  #tell(job: TrackedJob, now: EpochMillis): JobEvent[] {
    if (job.origin === undefined) return [];
    const events: JobEvent[] = [];
    for (const news of job.held.splice(0)) {
      advance(job.told, news);
      events.push(...this.#announce(job, news, now));
    }
    return events;
  }

  /** The event (if any) for news the ledger is told of. */
  #announce(job: TrackedJob, news: JobMessage, now: EpochMillis): JobEvent[] {
    const { told } = job;
    switch (news.type) {
      case 'JobAvailable':
        return [];
      case 'JobAssigned': {
        if (told.phase !== 'waiting' || told.announced) return [];
        told.announced = true;
        return [
          { kind: 'queued', job: this.#identity(job, news), via: 'poll', createdAt: createdAt(news, now) },
        ];
      }
      case 'JobStarted': {
        if (told.phase !== 'running') return [];
        told.announced = true;
        return [
          {
            kind: 'started',
            job: this.#identity(job, news),
            via: 'poll',
            createdAt: createdAt(news, now),
            startedAt: news.runnerAssignedAt ?? now,
            runnerName: news.runnerName || null,
          },
        ];
      }
      case 'JobCompleted': {
        if (!told.announced) return [];
        const event = this.#completed(job, news, CONCLUSIONS[news.result.toLowerCase()] ?? 'unknown', now);
        told.announced = false;
        return [event];
      }
    }
  }

  #completed(job: TrackedJob, news: JobMessage, conclusion: JobConclusion, now: EpochMillis): JobEvent {
    const ran = ranOnRunner(news);
    return {
      kind: 'completed',
      job: this.#identity(job, news),
      via: 'poll',
      createdAt: createdAt(news, now),
      startedAt: ran ? (news.runnerAssignedAt ?? null) : null,
      completedAt: news.type === 'JobCompleted' ? (news.finishedAt ?? now) : now,
      conclusion,
      runnerName: ran && news.runnerName ? news.runnerName : null,
    };
  }

  /**
   * Keeps the job's latest news in `messageId` while the job needs it, and lets go of older news.
   * `undefined`: the job has no newer message; it keeps the one it holds only while it needs it.
   */
  #retain(job: TrackedJob, messageId: number | undefined): void {
    const { phase } = job.truth;
    const live =
      phase === 'waiting' ||
      phase === 'running' ||
      (phase === 'available' && !job.settled) ||
      (job.origin === undefined && job.held.length > 0);
    if (job.newest !== undefined && job.newest !== messageId) {
      this.#retained.get(job.newest)?.jobs.delete(job.runnerRequestId);
      delete job.newest;
    }
    if (!live || messageId === undefined) {
      if (!live && job.newest !== undefined) {
        this.#retained.get(job.newest)?.jobs.delete(job.runnerRequestId);
        delete job.newest;
      }
      return;
    }
    const entry = this.#retained.get(messageId);
    if (!entry) return;
    entry.jobs.add(job.runnerRequestId);
    job.newest = messageId;
  }

  #identity(job: TrackedJob, news: JobMessage): JobIdentity {
    const { origin, told } = job;
    const { scaleSetId, className } = this.#options;
    return {
      source: 'github',
      key: `github:scaleset/${scaleSetId}/${job.runnerRequestId}${told.assignment > 1 ? `/${told.assignment}` : ''}${this.#epochSuffix}`,
      repo: news.repo,
      labels: news.labels,
      runId: String(news.workflowRunId),
      runAttempt: 1,
      untrusted: origin?.untrustedBecause !== undefined,
      ...(origin ? { origin } : {}),
      name: news.displayName || `job ${job.runnerRequestId}`,
      requestedClass: className,
    };
  }

  #unnamedIdentity(key: string): JobIdentity {
    return {
      source: 'github',
      key,
      repo: 'unknown/unknown',
      labels: this.#options.labels,
      runId: 'unknown',
      runAttempt: 1,
      untrusted: false,
      name: 'job not named yet',
      requestedClass: this.#options.className,
    };
  }
}

/** Moves a job on by one piece of news; news for a phase already passed changes nothing. */
function advance(progress: Progress, news: JobMessage): void {
  switch (news.type) {
    case 'JobAvailable':
      if (progress.phase === 'returned') progress.phase = 'available';
      return;
    case 'JobAssigned':
      if (progress.phase === 'available' || progress.phase === 'returned') {
        progress.phase = 'waiting';
        progress.assignment++;
        progress.announced = false;
      }
      return;
    case 'JobStarted':
      if (progress.phase === 'ended' || progress.phase === 'running') return;
      if (progress.phase !== 'waiting') {
        progress.assignment++;
        progress.announced = false;
      }
      progress.phase = 'running';
      return;
    case 'JobCompleted':
      if (progress.phase === 'ended') return;
      progress.phase = ranOnRunner(news) || progress.phase === 'running' ? 'ended' : 'returned';
      return;
  }
}

/** Whether a runner ran the job (a JobCompleted of a job taken back names none). */
function ranOnRunner(news: JobMessage): boolean {
  return news.runnerId > 0 || news.runnerName !== '';
}

/** When the job entered GitHub's queue, for its queue time; the scale set's assignment when unset. */
function createdAt(news: JobMessage, now: EpochMillis): EpochMillis {
  return news.queuedAt ?? news.scaleSetAssignedAt ?? now;
}
