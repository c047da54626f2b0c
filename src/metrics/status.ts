import type { LedgerChange } from '../ledger/ledger.ts';
import type { EpochMillis } from '../model/job.ts';

/** The state served at GET /api/status and shown by the status page and `gantry status`. */
export interface StatusReport {
  generatedAt: string;
  classes: ClassStatus[];
  /** Newest first. */
  events: StatusEvent[];
  /** GitHub in scale-set mode: per class, its scale set and message session. */
  scaleSets?: ScaleSetStatusRow[];
}

/** One class's scale set as the status page shows it (plain data from the scale-set source). */
export interface ScaleSetStatusRow {
  className: string;
  scaleSet: string;
  scaleSetId: number | null;
  /** Whether this replica holds the scale set's message session. */
  session: boolean;
  /** The X-ScaleSetMaxCapacity sent. */
  capacity: number;
  /** As the service last reported them; null before the first. */
  statistics: {
    assignedJobs: number;
    runningJobs: number;
    registeredRunners: number;
    busyRunners: number;
    idleRunners: number;
  } | null;
  /** Messages kept unacknowledged for the jobs they hold. */
  retained: number;
}

export interface ClassStatus {
  name: string;
  queued: number;
  starting: number;
  idle: number;
  busy: number;
  terminating: number;
  /** Tekton runs admitted (or started without Gantry) and not finished: slots they hold. */
  admitted: number;
  maxRunners: number;
  /** 95th percentile of the queue times of jobs started in the last hour; null without any. */
  queueP95Seconds: number | null;
  /** Dollars accounted for today's UTC date. */
  costTodayDollars: number;
  /** For a class with a warm-pool objective: the pool it keeps now, and what the model predicts for it. */
  warmPool?: {
    target: number;
    objective: { percentile: string; seconds: number };
    predictedSeconds: number;
    met: boolean;
    /** Nothing learned yet to size the pool from: `no-arrivals` or `no-waits`. */
    unknown?: string;
  };
}

export interface StatusEvent {
  at: string;
  class?: string;
  message: string;
}

const QUEUE_WINDOW_MS = 3_600_000;
const QUEUE_SAMPLES_PER_CLASS = 1_000;
const EVENTS_KEPT = 50;

/** Nearest-rank percentile (`p` in 0..1) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? null;
}

/**
 * What the status page needs beyond the ledger's snapshot: recent queue times per class and the
 * latest events, both bounded, both fed by ledger changes.
 */
export class RecentActivity {
  readonly #queueTimes = new Map<string, { at: EpochMillis; seconds: number }[]>();
  readonly #events: StatusEvent[] = [];

  observe(change: LedgerChange, now: EpochMillis): void {
    const event = describe(change);
    if (event) {
      this.#events.unshift({ at: new Date(now).toISOString(), ...event });
      this.#events.length = Math.min(this.#events.length, EVENTS_KEPT);
    }
    if (change.kind === 'job-started' && change.job.classification.matched) {
      const className = change.job.classification.className;
      const samples = this.#queueTimes.get(className) ?? [];
      samples.push({ at: now, seconds: change.queuedForMs / 1000 });
      if (samples.length > QUEUE_SAMPLES_PER_CLASS) samples.shift();
      this.#queueTimes.set(className, samples);
    }
  }

  queueP95Seconds(className: string, now: EpochMillis): number | null {
    const samples = (this.#queueTimes.get(className) ?? []).filter((s) => now - s.at <= QUEUE_WINDOW_MS);
    return percentile(
      samples.map((s) => s.seconds),
      0.95,
    );
  }

  events(): StatusEvent[] {
    return [...this.#events];
  }
}

function describe(change: LedgerChange): Omit<StatusEvent, 'at'> | undefined {
  switch (change.kind) {
    case 'job-queued': {
      const { job } = change;
      return {
        ...(job.classification.matched ? { class: job.classification.className } : {}),
        message: `job queued: ${job.identity.repo} ${job.identity.name}`,
      };
    }
    case 'job-unclassified':
      return { message: `job left alone: ${change.job.repo} ${change.job.name} (${change.reason})` };
    case 'job-started': {
      const { job } = change;
      return {
        ...(job.classification.matched ? { class: job.classification.className } : {}),
        message: `job started after ${(change.queuedForMs / 1000).toFixed(0)} s: ${job.identity.repo} ${job.identity.name}${job.runnerName ? ` on ${job.runnerName}` : ''}`,
      };
    }
    case 'job-completed':
      return {
        ...(change.className ? { class: change.className } : {}),
        message: `job completed: ${change.job.repo} ${change.job.name}`,
      };
    case 'runner-running':
      return {
        class: change.runner.className,
        message: `runner running: ${change.runner.name} (started in ${((change.runner.runningSince - change.runner.createdAt) / 1000).toFixed(0)} s)`,
      };
    case 'runner-ended':
      return undefined;
    case 'runner-gone':
      return { class: change.runner.className, message: `runner removed: ${change.runner.name}` };
    case 'runner-lost':
      return {
        class: change.runner.className,
        message: change.midJob
          ? `runner lost mid-job (${change.reason}): ${change.runner.name}${change.jobKey ? `, job ${change.jobKey}` : ''}; the job fails`
          : `runner lost before it took a job (${change.reason}): ${change.runner.name}`,
      };
    case 'runner-start-failed': {
      const { failure } = change;
      const where = failure.container ? ` (container ${failure.container})` : '';
      return {
        class: change.runner.className,
        message: `runner failed to start, ${failure.detail}${where}: ${change.runner.name}${failure.message ? `: ${clip(failure.message)}` : ''}; creations of the class held`,
      };
    }
    case 'trust-violation':
      return {
        class: change.className,
        message: `TRUST VIOLATION (${change.violation}): ${change.job.repo} ${change.job.name} ran on ${change.runnerName}${change.contained ? '; runner stopped' : '; counted'}`,
      };
  }
}

/** Kubelet and apiserver messages can run long (a registry's whole answer): the page shows the start. */
function clip(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
