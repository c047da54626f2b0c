import type { EpochMillis } from '../model/job.ts';
import { splitRepo } from '../sources/github/api.ts';
import type {
  CachedBody,
  CallResult,
  EtagStore,
  GithubClient,
  GithubResponse,
  RequestExtras,
} from '../sources/github/client.ts';
import type { Clock } from '../sources/github/clock.ts';
import { GithubRateLimitedError, isStatus } from '../sources/github/errors.ts';
import { InputError } from '../util/input-error.ts';
import type { TraceJob } from './format.ts';
import type { ExportProgress } from './progress.ts';

/**
 * A trace from GitHub's REST API: for each repository, the workflow runs created in the window
 * (`GET /repos/{owner}/{repo}/actions/runs?created=FROM..TO`), and each run's jobs, every attempt
 * (`…/runs/{id}/jobs?filter=all`). Every page is a conditional request through Gantry's GitHub
 * client (timeouts, bounded retries, the rate-limit gate); with an ETag store kept between exports,
 * what did not change costs no quota. GitHub returns at most 1,000 runs for a filtered listing, so a
 * window with more is split in halves until each has fewer. When the rate limit is spent (or only
 * `keepQuota` is left, for Gantry itself), the export waits for the reset, up to `maxWaitMs` in all.
 */

export interface GithubExportOptions {
  client: GithubClient;
  clock: Clock;
  repos: readonly string[];
  since: EpochMillis;
  until: EpochMillis;
  perPage?: number;
  /** Quota left to others (Gantry shares the installation's): below it the export waits for the reset. */
  keepQuota?: number;
  /** Longest one wait for a rate limit may be (GitHub's window is an hour). */
  maxWaitMs?: number;
  /** Waits in a row with no request answered between them, before the export gives up. */
  maxConsecutiveWaits?: number;
  onProgress?: (progress: ExportProgress) => void;
  /** Each job, as it is read (runs newest first, as GitHub lists them). */
  onJob: (job: TraceJob) => void;
}

export interface GithubExportReport {
  runs: number;
  jobs: number;
  /** Jobs not finished yet (queued or running at the export): left out. */
  unfinished: number;
  /** Jobs GitHub skipped (a condition was false): never queued, left out. */
  skipped: number;
  /** Windows that still had more than GitHub lists (1,000) though they could not be split further. */
  truncatedWindows: number;
  notModified: number;
}

/** GitHub lists at most this many results of a filtered query. */
export const GITHUB_FILTERED_RESULTS = 1_000;
const SECOND = 1_000;

/** The fields of a run the trace needs (a cached page keeps only these). */
interface RunFields {
  id: number;
  event: string;
  head_branch: string | null;
  run_attempt?: number;
  repository: { full_name: string; private: boolean; visibility?: string };
  head_repository?: { full_name: string } | null;
  actor?: { login: string } | null;
  triggering_actor?: { login: string } | null;
}

interface RunsPage {
  total_count: number;
  workflow_runs: RunFields[];
}

interface JobFields {
  id: number;
  run_id: number;
  run_attempt?: number;
  status: string;
  conclusion: string | null;
  created_at?: string;
  started_at: string;
  completed_at: string | null;
  name: string;
  labels: string[];
  runner_name: string | null;
}

interface JobsPage {
  total_count: number;
  jobs: JobFields[];
}

const isoSeconds = (ms: EpochMillis) =>
  new Date(Math.floor(ms / SECOND) * SECOND).toISOString().replace('.000Z', 'Z');

export async function exportFromGithub(options: GithubExportOptions): Promise<GithubExportReport> {
  const { client, clock } = options;
  const perPage = options.perPage ?? 100;
  const keepQuota = options.keepQuota ?? 0;
  const maxWaitMs = options.maxWaitMs ?? 65 * 60_000;
  const maxConsecutiveWaits = options.maxConsecutiveWaits ?? 3;
  const octokit = client.octokit;
  const report: GithubExportReport = {
    runs: 0,
    jobs: 0,
    unfinished: 0,
    skipped: 0,
    truncatedWindows: 0,
    notModified: 0,
  };
  const progress: ExportProgress = {
    reposDone: 0,
    repos: options.repos.length,
    runsDone: 0,
    runsKnown: 0,
    jobs: 0,
    notModified: 0,
  };
  let waitsInARow = 0;
  const publish = () => {
    const limit = client.rateLimit();
    progress.quota =
      limit.limit !== null && limit.remaining !== null
        ? { remaining: limit.remaining, limit: limit.limit }
        : undefined;
    progress.notModified = report.notModified;
    options.onProgress?.({ ...progress });
  };

  const waitUntil = async (untilMs: number, why: string) => {
    const waitMs = Math.max(0, untilMs - clock.now());
    if (waitMs > maxWaitMs) {
      throw new Error(
        `${why}: GitHub's rate limit resets at ${new Date(untilMs).toISOString()}, more than ` +
          `${Math.round(maxWaitMs / 60_000)} min away`,
      );
    }
    if (++waitsInARow > maxConsecutiveWaits) {
      throw new Error(
        `${why}: still rate limited after ${maxConsecutiveWaits} waits for GitHub's reset; giving up`,
      );
    }
    progress.waitingUntil = untilMs;
    publish();
    await clock.sleep(waitMs);
    delete progress.waitingUntil;
    publish();
  };

  /** One request; waits out rate limits (and keeps `keepQuota` for others) before and after. */
  const call = async <T>(
    operation: string,
    key: string,
    send: (extras: RequestExtras) => Promise<GithubResponse<T>>,
  ) => {
    for (;;) {
      const quota = client.rateLimit();
      if (
        keepQuota > 0 &&
        quota.remaining !== null &&
        quota.remaining <= keepQuota &&
        quota.resetAtMs !== null &&
        quota.resetAtMs > clock.now()
      ) {
        await waitUntil(
          quota.resetAtMs + SECOND,
          `${operation}: only ${quota.remaining} requests left (keeping ${keepQuota})`,
        );
        continue;
      }
      try {
        const result: CallResult<T> = await client.call(
          { operation, idempotent: true, conditionalKey: key },
          send,
        );
        if (result.notModified) report.notModified++;
        return result;
      } catch (err) {
        if (!(err instanceof GithubRateLimitedError)) throw err;
        await waitUntil(err.untilMs, operation);
      }
    }
  };

  /** Every page of a listing, following GitHub's absolute next links (on the API's own origin). */
  async function* pages<P>(
    operation: string,
    key: string,
    first: (extras: RequestExtras) => Promise<GithubResponse<P>>,
  ) {
    let result = await call(operation, key, first);
    for (let n = 1; ; n++) {
      yield result.data;
      const next = result.nextUrl;
      if (!next || n >= 1_000) return;
      result = await call(
        operation,
        next,
        (extras) => octokit.request({ method: 'GET', url: next, ...extras }) as Promise<GithubResponse<P>>,
      );
    }
  }

  const exportRun = async (repo: string, run: RunFields) => {
    const key = `repos/${repo}/actions/runs/${run.id}/jobs?filter=all&per_page=${perPage}`;
    for await (const page of pages<JobsPage>(
      'list_run_jobs',
      key,
      (extras) =>
        octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', {
          ...splitRepo(repo),
          run_id: run.id,
          filter: 'all',
          per_page: perPage,
          ...extras,
        }) as Promise<GithubResponse<JobsPage>>,
    )) {
      for (const job of page.jobs) {
        const traced = toTraceJob(repo, run, job);
        if (traced === 'unfinished') report.unfinished++;
        else if (traced === 'skipped') report.skipped++;
        else {
          report.jobs++;
          progress.jobs++;
          options.onJob(traced);
        }
      }
    }
    report.runs++;
    progress.runsDone++;
    publish();
  };

  /** The runs created in [from, to] (whole seconds, both included). */
  const exportWindow = async (repo: string, from: EpochMillis, to: EpochMillis): Promise<void> => {
    const created = `${isoSeconds(from)}..${isoSeconds(to)}`;
    const key = `repos/${repo}/actions/runs?created=${created}&per_page=${perPage}`;
    let counted = false;
    for await (const page of pages<RunsPage>(
      'list_workflow_runs',
      key,
      (extras) =>
        octokit.request('GET /repos/{owner}/{repo}/actions/runs', {
          ...splitRepo(repo),
          created,
          per_page: perPage,
          ...extras,
        }) as Promise<GithubResponse<RunsPage>>,
    )) {
      if (!counted) {
        counted = true;
        if (page.total_count > GITHUB_FILTERED_RESULTS) {
          if (to - from >= 2 * SECOND) {
            // GitHub would stop listing at 1,000: halves, each listed on its own.
            const middle = from + Math.floor((to - from) / 2 / SECOND) * SECOND;
            await exportWindow(repo, from, middle);
            await exportWindow(repo, middle + SECOND, to);
            return;
          }
          report.truncatedWindows++;
        }
        progress.runsKnown += Math.min(page.total_count, GITHUB_FILTERED_RESULTS);
        publish();
      }
      for (const run of page.workflow_runs) await exportRun(repo, run);
    }
  };

  for (const repo of options.repos) {
    try {
      await exportWindow(repo, options.since, options.until);
    } catch (err) {
      // A repository that is not there (or not readable with these credentials) is the caller's mistake.
      if (isStatus(err, 404) && report.runs === 0) {
        throw new InputError(
          `repository ${repo}: not found, or these credentials cannot read its Actions runs`,
        );
      }
      throw err;
    }
    progress.reposDone++;
    publish();
  }
  return report;
}

function toTraceJob(repo: string, run: RunFields, job: JobFields): TraceJob | 'unfinished' | 'skipped' {
  if (job.status !== 'completed' || job.completed_at === null) return 'unfinished';
  if (job.conclusion === 'skipped') return 'skipped';
  const created = Date.parse(job.created_at ?? job.started_at);
  const started = Date.parse(job.started_at);
  const completed = Date.parse(job.completed_at);
  const ran = job.runner_name !== null && job.runner_name !== '';
  const visibility =
    run.repository.visibility === 'internal' ? 'internal' : run.repository.private ? 'private' : 'public';
  const headRepo = run.head_repository?.full_name;
  const actor = run.triggering_actor?.login ?? run.actor?.login;
  return {
    job: String(job.id),
    run: String(job.run_id),
    attempt: job.run_attempt ?? run.run_attempt ?? 1,
    repo,
    labels: job.labels,
    created,
    ...(ran
      ? {
          started: Math.max(created, started),
          durationMs: Math.max(0, completed - Math.max(created, started)),
        }
      : { cancelledAt: Math.max(created, completed) }),
    fork:
      headRepo !== undefined
        ? headRepo.toLowerCase() !== run.repository.full_name.toLowerCase()
        : run.event.startsWith('pull_request'),
    visibility,
    event: run.event,
    branch: run.head_branch,
    ...(actor !== undefined ? { actor } : {}),
    name: job.name,
    ...(job.conclusion !== null ? { conclusion: job.conclusion } : {}),
    runner: job.runner_name,
  };
}

/**
 * An ETag store kept in a file between exports. Only what the trace needs of each page is kept, so a
 * week of an organisation's runs stays a few MB rather than the hundreds GitHub's full pages take.
 */
export function reducedEtagStore(entries: Map<string, CachedBody>): EtagStore {
  return {
    get: (key) => entries.get(key),
    set: (key, body) => {
      const data = reducePage(body.data);
      entries.set(key, { ...body, data, bytes: JSON.stringify(data ?? null).length + body.etag.length });
    },
  };
}

function pick<T extends object>(value: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const key of keys) if (key in value) out[key] = value[key];
  return out;
}

function reducePage(data: unknown): unknown {
  if (typeof data !== 'object' || data === null) return data;
  if ('workflow_runs' in data) {
    const page = data as RunsPage;
    return {
      total_count: page.total_count,
      workflow_runs: page.workflow_runs.map((run) => ({
        ...pick(run, ['id', 'event', 'head_branch', 'run_attempt']),
        repository: pick(run.repository, ['full_name', 'private', 'visibility']),
        head_repository: run.head_repository ? { full_name: run.head_repository.full_name } : null,
        actor: run.actor ? { login: run.actor.login } : null,
        triggering_actor: run.triggering_actor ? { login: run.triggering_actor.login } : null,
      })),
    };
  }
  if ('jobs' in data) {
    const page = data as JobsPage;
    return {
      total_count: page.total_count,
      jobs: page.jobs.map((job) =>
        pick(job, [
          'id',
          'run_id',
          'run_attempt',
          'status',
          'conclusion',
          'created_at',
          'started_at',
          'completed_at',
          'name',
          'labels',
          'runner_name',
        ]),
      ),
    };
  }
  return data;
}
