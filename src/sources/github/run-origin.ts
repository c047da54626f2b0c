import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { JobOrigin, UntrustedReason } from '../../model/job.ts';
import type { TrustPolicy } from './config.ts';
import { isRefusedForGood } from './errors.ts';

/** The fields of a workflow run that tell where its code and its trigger come from. */
export interface RunFacts {
  /** int64 in GitHub's description; octokit parses ids beyond 2^53 as bigint. */
  id: number | bigint;
  event: string;
  head_branch?: string | null;
  repository: { full_name: string; private?: boolean; visibility?: string };
  head_repository?: { full_name: string } | null;
  actor?: { login: string } | null;
  triggering_actor?: { login: string } | null;
}

/**
 * Where a run comes from, judged by the trust policy. The first reason that applies makes its jobs
 * untrusted:
 * - fork: the code comes from another repository (a pull request from a fork; a pull-request run
 *   whose head repository is gone, a deleted fork, too);
 * - public-repository: anyone can open pull requests against a public repository, and a same-repo
 *   run of one shares its runners with them (policy `publicRepositories: untrusted`);
 * - untrusted-actor: the run was triggered by an actor the policy names (dependabot[bot]: GitHub
 *   itself runs its pull requests as if from a fork);
 * - untrusted-event: the run's event is one the policy names.
 */
export function judgeRun(run: RunFacts, policy: TrustPolicy): JobOrigin {
  const origin: JobOrigin = { event: run.event, headBranch: run.head_branch ?? null };
  const reason = untrustedReason(run, policy);
  return reason ? { ...origin, untrustedBecause: reason } : origin;
}

function untrustedReason(run: RunFacts, policy: TrustPolicy): UntrustedReason | undefined {
  const head = run.head_repository?.full_name;
  const fromFork = head
    ? head.toLowerCase() !== run.repository.full_name.toLowerCase()
    : run.event.startsWith('pull_request');
  if (fromFork) return 'fork';
  const isPublic = run.repository.private === false || run.repository.visibility === 'public';
  if (isPublic && policy.publicRepositories === 'untrusted') return 'public-repository';
  const actors = new Set(policy.untrustedActors.map((login) => login.toLowerCase()));
  for (const actor of [run.actor, run.triggering_actor]) {
    if (actor && actors.has(actor.login.toLowerCase())) return 'untrusted-actor';
  }
  if (policy.untrustedEvents.includes(run.event)) return 'untrusted-event';
  return undefined;
}

/** The origin of a run GitHub refuses to show for good: nothing about it can be vouched for. */
const UNKNOWN_RUN: JobOrigin = { event: 'unknown', headBranch: null, untrustedBecause: 'unknown-run' };

export interface RunOrigins {
  /**
   * The origin of the run's jobs; looks the run up once, then answers from the cache. Rejects when
   * the look-up failed for now (no answer, 5xx, rate limit): the origin is unknown, and not guessed
   * here. A run GitHub refuses for good (gone, not readable) is untrusted: fail closed.
   */
  originOf(repo: string, runId: number): Promise<JobOrigin>;
  /** Seeds the cache from runs read anyway (a poll's listing; no extra request). */
  remember(run: RunFacts): void;
}

export function createRunOrigins(options: {
  fetchRun: (repo: string, runId: number) => Promise<RunFacts>;
  policy: TrustPolicy;
  cacheSize: number;
  logger: Logger;
}): RunOrigins {
  const { policy } = options;
  const cache = new LRUCache<number, JobOrigin, { repo: string }>({
    max: options.cacheSize,
    // remember() may set a run while its own look-up is in flight (one listing answers for many runs);
    // the look-up still resolves with its verdict instead of being dropped.
    ignoreFetchAbort: true,
    // Concurrent look-ups of one run share one request; a failed one is not cached, so the next asks again.
    fetchMethod: async (runId, _stale, { context }) => {
      try {
        return judgeRun(await options.fetchRun(context.repo, runId), policy);
      } catch (err) {
        if (!isRefusedForGood(err)) throw err;
        options.logger.warn(
          { repo: context.repo, run: runId, err: err.message },
          'workflow run cannot be read; its jobs are treated as untrusted',
        );
        return UNKNOWN_RUN;
      }
    },
  });
  return {
    async originOf(repo, runId) {
      const origin = await cache.fetch(runId, { context: { repo } });
      if (origin === undefined) throw new Error(`workflow run ${runId}: look-up gave no verdict`);
      return origin;
    },
    remember(run) {
      cache.set(Number(run.id), judgeRun(run, policy));
    },
  };
}
