import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';

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

export interface RunTrust {
  /** Whether the run's jobs are untrusted; looks the run up once, then answers from the cache. */
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
    fetchMethod: async (runId, _stale, { context }) =>
      isUntrustedRun(await options.fetchRun(context.repo, runId)),
  });
  return {
    async isUntrusted(repo, runId) {
      try {
        const verdict = await cache.fetch(runId, { context: { repo } });
        if (verdict !== undefined) return verdict;
      } catch (err) {
        options.logger.warn(
          { repo, run: runId, err: (err as Error).message },
          'cannot look up workflow run; treating its jobs as untrusted',
        );
      }
      // Fail closed: a job whose origin is unknown goes to the stricter class. Not cached, so the next
      // job of the run asks again.
      return true;
    },
    remember(run) {
      cache.set(Number(run.id), isUntrustedRun(run));
    },
  };
}
