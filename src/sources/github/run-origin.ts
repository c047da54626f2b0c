import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { GithubApiError } from './errors.ts';

/** The fields of a workflow run that tell where its code comes from. */
export interface RunOrigin {
  /** int64 in GitHub's description; octokit parses ids beyond 2^53 as bigint. */
  id: number | bigint;
  event: string;
  repository: { full_name: string };
  head_repository?: { full_name: string } | null;
}

/**
 * A run is untrusted when the code it runs comes from another repository: a pull request from a fork.
 * A pull-request run whose head repository is gone (deleted fork) is untrusted too.
 */
export function isUntrustedRun(run: RunOrigin): boolean {
  const head = run.head_repository?.full_name;
  if (!head) return run.event.startsWith('pull_request');
  return head.toLowerCase() !== run.repository.full_name.toLowerCase();
}

/** A 4xx other than a timeout or rate limit: asking again gives the same answer. */
function isRefusedForGood(err: unknown): err is GithubApiError {
  return (
    err instanceof GithubApiError && err.status >= 400 && err.status < 500 && ![408, 429].includes(err.status)
  );
}

export interface RunTrust {
  /**
   * Whether the run's jobs are untrusted; looks the run up once, then answers from the cache. Rejects
   * when the look-up failed for now (no answer, 5xx, rate limit): the verdict is unknown, and not
   * guessed here. A run GitHub refuses for good (gone, not readable) is untrusted: fail closed.
   */
  isUntrusted(repo: string, runId: number): Promise<boolean>;
  /** Seeds the cache from runs the poller listed anyway (no extra request). */
  remember(run: RunOrigin): void;
}

export function createRunTrust(options: {
  fetchRun: (repo: string, runId: number) => Promise<RunOrigin>;
  cacheSize: number;
  logger: Logger;
}): RunTrust {
  const cache = new LRUCache<number, boolean, { repo: string }>({
    max: options.cacheSize,
    // remember() may set a run while its own look-up is in flight (one listing answers for many runs);
    // the look-up still resolves with its verdict instead of being dropped.
    ignoreFetchAbort: true,
    // Concurrent look-ups of one run share one request; a failed one is not cached, so the next asks again.
    fetchMethod: async (runId, _stale, { context }) => {
      try {
        return isUntrustedRun(await options.fetchRun(context.repo, runId));
      } catch (err) {
        if (!isRefusedForGood(err)) throw err;
        options.logger.warn(
          { repo: context.repo, run: runId, err: err.message },
          'workflow run cannot be read; its jobs are treated as untrusted',
        );
        return true;
      }
    },
  });
  return {
    async isUntrusted(repo, runId) {
      const verdict = await cache.fetch(runId, { context: { repo } });
      if (verdict === undefined) throw new Error(`workflow run ${runId}: look-up gave no verdict`);
      return verdict;
    },
    remember(run) {
      cache.set(Number(run.id), isUntrustedRun(run));
    },
  };
}
