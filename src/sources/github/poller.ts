import type { Logger } from 'pino';
import type { JobEvent } from '../../model/job.ts';
import type { GithubApi, WorkflowRun } from './api.ts';
import type { RateLimitSnapshot } from './client.ts';
import type { Clock } from './clock.ts';
import { GithubRateLimitedError } from './errors.ts';
import type { JobApplier } from './job-events.ts';
import type { JobTracker } from './job-tracker.ts';
import type { GithubMetrics } from './metrics.ts';
import { defaultPollPacing, type PollDelayReason, pollDelay } from './rate-limit.ts';
import type { RunOrigins } from './run-origin.ts';
import { JobFieldError, jobListItemSchema, phaseOfStatus } from './workflow-job.ts';

export interface PollReport {
  result: 'ok' | 'partial' | 'rate_limited';
  repos: number;
  runs: number;
  /** Runs whose jobs were read (conditionally) this sweep. */
  runsChecked: number;
  events: number;
  /** Queued jobs that no webhook had announced. */
  foundByPoll: number;
}

export interface PollerOptions {
  api: GithubApi;
  /** Repositories to poll: configured, or those of the App installation. */
  repositories: () => Promise<string[]>;
  applier: JobApplier;
  tracker: JobTracker;
  origins: RunOrigins;
  rateLimit: () => RateLimitSnapshot;
  /** When the last verified workflow_job webhook arrived; null when webhooks are off or none came. */
  lastWebhookAt: () => number | null;
  webhooksEnabled: boolean;
  intervalMs: number;
  backstopIntervalMs: number;
  /** While webhooks stay healthy and backstop sweeps find nothing they missed, the interval doubles up to this. */
  backstopMaxIntervalMs?: number;
  clock: Clock;
  logger: Logger;
  metrics: GithubMetrics;
}

export interface Poller {
  /** One sweep over every repository; never throws (problems are logged and reported). */
  pollOnce(): Promise<PollReport>;
  /** How long to wait before the next sweep, given webhook health and the rate limit. */
  nextDelay(): { ms: number; reason: PollDelayReason; mode: 'poll' | 'backstop' };
  start(): void;
  stop(): Promise<void>;
}

/**
 * The backstop that finds queued jobs no webhook announced. Per repository it lists queued and
 * in-progress runs (an in-progress run can still hold queued jobs), then reads the jobs of the runs
 * webhooks do not vouch for, and once more the jobs of runs that left the lists while Gantry still
 * thought them open. Every request is conditional, so an idle sweep costs no quota.
 */
export function createPoller(options: PollerOptions): Poller {
  const { api, tracker, clock, metrics } = options;
  const log = options.logger.child({ component: 'github-poller' });
  let lastFoundAt: number | null = null;
  /** Backstop sweeps in a row that found nothing webhooks had missed. */
  let cleanBackstops = 0;
  let loop: Promise<void> | null = null;
  let abort: AbortController | null = null;
  let lastReason: PollDelayReason = 'normal';

  /** Webhooks are trusted while verified deliveries come in and the poller has not caught them missing one. */
  const webhooksHealthy = (): boolean => {
    if (!options.webhooksEnabled) return false;
    const now = clock.now();
    const lastWebhook = options.lastWebhookAt();
    if (lastWebhook === null || now - lastWebhook > options.backstopIntervalMs) return false;
    return lastFoundAt === null || now - lastFoundAt > options.backstopIntervalMs;
  };

  const shouldCheckRun = (runId: number, healthy: boolean): boolean => {
    if (!healthy) return true;
    const lastWebhook = tracker.lastWebhookAt(runId);
    // Unknown to webhooks, or quiet for a whole backstop interval: read its jobs to be sure.
    return lastWebhook === undefined || clock.now() - lastWebhook >= options.backstopIntervalMs;
  };

  async function checkRun(repo: string, runId: number, report: PollReport, final: boolean): Promise<void> {
    const { items: jobs } = await api.listRunJobs(repo, runId);
    report.runsChecked++;
    const stillOpen = new Set<number>();
    for (const raw of jobs) {
      const parsed = jobListItemSchema.safeParse(raw);
      const phase = parsed.success ? phaseOfStatus(parsed.data.status) : null;
      if (!parsed.success || phase === null) {
        log.warn(
          { repo, run: runId, job: raw.id, status: raw.status },
          'job in an unexpected shape or status; skipped',
        );
        continue;
      }
      const job = parsed.data;
      if (phase === 'queued' || phase === 'started') stillOpen.add(job.id);
      let event: JobEvent | null;
      try {
        event = await options.applier.apply(job, repo, phase, 'poll');
      } catch (err) {
        if (!(err instanceof JobFieldError)) throw err;
        log.warn({ repo, run: runId, job: job.id, err: err.message }, 'job skipped');
        continue;
      }
      if (!event) continue;
      report.events++;
      if (event.kind === 'queued' && options.webhooksEnabled) {
        report.foundByPoll++;
        metrics.jobsFoundByPoll.inc();
        lastFoundAt = clock.now();
        log.warn(
          { repo, run: runId, job: event.job.key },
          'queued job found by polling: no webhook announced it',
        );
      }
    }
    if (!final) return;
    // The run left the queued/in-progress lists: jobs Gantry still holds open there ended unseen.
    for (const { key, job } of tracker.openJobsOf(runId)) {
      const id = Number(key.slice(key.indexOf(':') + 1));
      if (!stillOpen.has(id)) options.applier.closeUnseen(job, key);
    }
  }

  async function pollRepo(
    repo: string,
    healthy: boolean,
    openRuns: readonly number[],
    report: PollReport,
  ): Promise<void> {
    const runs = new Map<number, WorkflowRun>();
    for (const status of ['queued', 'in_progress'] as const) {
      const { items } = await api.listWorkflowRuns(repo, status);
      for (const run of items) {
        runs.set(Number(run.id), run);
        options.origins.remember(run);
      }
    }
    report.runs += runs.size;
    for (const runId of runs.keys()) {
      if (shouldCheckRun(runId, healthy)) await checkRun(repo, runId, report, false);
    }
    for (const runId of openRuns) {
      if (!runs.has(runId)) await checkRun(repo, runId, report, true);
    }
  }

  async function pollOnce(): Promise<PollReport> {
    const report: PollReport = { result: 'ok', repos: 0, runs: 0, runsChecked: 0, events: 0, foundByPoll: 0 };
    if (options.rateLimit().blocked) {
      report.result = 'rate_limited';
      metrics.pollSweeps.inc({ result: report.result });
      return report;
    }
    const healthy = webhooksHealthy();
    try {
      const repos = await options.repositories();
      const openRuns = new Map<string, number[]>();
      for (const { repo, runId } of tracker.openRuns())
        openRuns.set(repo, [...(openRuns.get(repo) ?? []), runId]);
      for (const repo of repos) {
        try {
          await pollRepo(repo, healthy, openRuns.get(repo) ?? [], report);
          report.repos++;
        } catch (err) {
          if (err instanceof GithubRateLimitedError) throw err;
          report.result = 'partial';
          log.warn({ repo, err: (err as Error).message }, 'polling a repository failed; next sweep retries');
        }
      }
    } catch (err) {
      if (err instanceof GithubRateLimitedError) {
        report.result = 'rate_limited';
      } else {
        report.result = 'partial';
        log.warn({ err: (err as Error).message }, 'listing repositories failed; next sweep retries');
      }
    }
    metrics.pollSweeps.inc({ result: report.result });
    if (!healthy || report.foundByPoll > 0 || report.result !== 'ok') cleanBackstops = 0;
    else cleanBackstops++;
    log.debug({ ...report }, 'poll sweep done');
    return report;
  }

  const nextDelay: Poller['nextDelay'] = () => {
    const healthy = webhooksHealthy();
    // A backstop that keeps finding nothing is stretched: it costs quota per repository and hour,
    // whatever the jobs; one that finds a missed job brings it back to its base interval.
    const backstopMs = Math.min(
      options.backstopMaxIntervalMs ?? options.backstopIntervalMs,
      options.backstopIntervalMs * 2 ** Math.min(cleanBackstops, 16),
    );
    const baseIntervalMs = healthy ? backstopMs : options.intervalMs;
    const { ms, reason } = pollDelay(options.rateLimit(), clock.now(), {
      baseIntervalMs,
      ...defaultPollPacing,
    });
    return { ms, reason, mode: healthy ? 'backstop' : 'poll' };
  };

  return {
    pollOnce,
    nextDelay,
    start() {
      if (loop) return;
      const controller = new AbortController();
      abort = controller;
      loop = (async () => {
        while (!controller.signal.aborted) {
          try {
            await pollOnce();
          } catch (err) {
            log.error({ err: (err as Error).message }, 'poll sweep failed');
          }
          const delay = nextDelay();
          if (delay.reason !== lastReason) {
            log.info(
              {
                reason: delay.reason,
                waitSeconds: Math.round(delay.ms / 1000),
                remaining: options.rateLimit().remaining,
              },
              delay.reason === 'normal'
                ? 'poller back to its normal pace'
                : 'poller slowed down to spare the GitHub quota',
            );
            lastReason = delay.reason;
          }
          try {
            await clock.sleep(delay.ms, controller.signal);
          } catch {
            break;
          }
        }
      })();
    },
    async stop() {
      abort?.abort();
      // Forgotten at once so a start() right after (leadership regained) begins a new loop.
      const stopping = loop;
      loop = null;
      abort = null;
      await stopping;
    },
  };
}
