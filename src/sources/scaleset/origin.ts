import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { JobOrigin, UntrustedReason } from '../../model/job.ts';
import type { TrustPolicy } from '../github/config.ts';
import { isRefusedForGood } from '../github/errors.ts';
import { createRunOrigins, type RunFacts } from '../github/run-origin.ts';
import type { JobMessage } from './wire.ts';

/**
 * Where a scale-set job comes from, judged by the trust policy from what its job message says
 * (repository, event, workflow ref) wherever that suffices, and from its workflow run (one
 * conditional REST request per run) only where it does not:
 *
 * - pull-request events (`pull_request`, `pull_request_target`, `pull_request_review…`): only the run
 *   says whether the code comes from a fork;
 * - `workflow_run`: the run carries the actor of the run that triggered it;
 * - branches of Dependabot (`dependabot…`) while `dependabot[bot]` is an untrusted actor, and every
 *   run while `untrustedActors` names anyone else: messages do not name the actor;
 * - jobs of trusted-only classes: their ref must be the run's own, and a message names the ref of the
 *   workflow file, which a called (reusable) workflow sets to its own.
 *
 * A repository's visibility (public repositories are untrusted by default) is read once per
 * repository and revalidated with conditional requests, which cost no quota while it is unchanged.
 */

const PULL_REQUEST_EVENTS: ReadonlySet<string> = new Set([
  'pull_request',
  'pull_request_target',
  'pull_request_review',
  'pull_request_review_comment',
]);
const INHERITED_ACTOR_EVENTS: ReadonlySet<string> = new Set(['workflow_run']);
const DEPENDABOT = 'dependabot[bot]';

export interface RepoFacts {
  full_name: string;
  private?: boolean;
  visibility?: string;
}

export interface OriginNeeds {
  /** The job's class takes trusted jobs of allowed events and refs only. */
  trustedOnly: boolean;
}

/** The branch or tag name of a workflow ref (`owner/repo/path@refs/heads/main` → main), when it is the job's repository's. */
export function refNameOf(message: Pick<JobMessage, 'workflowRef' | 'repo'>): string | null {
  const at = message.workflowRef.lastIndexOf('@');
  if (at < 0) return null;
  const file = message.workflowRef.slice(0, at);
  if (!file.toLowerCase().startsWith(`${message.repo.toLowerCase()}/`)) return null;
  const ref = message.workflowRef.slice(at + 1);
  const name = /^refs\/(?:heads|tags)\/(.+)$/.exec(ref)?.[1];
  return name ?? null;
}

/** Whether the message alone cannot tell the job's origin under the policy: its run must be read. */
export function needsRun(message: JobMessage, policy: TrustPolicy, needs: OriginNeeds): boolean {
  if (needs.trustedOnly) return true;
  if (!message.eventName) return true;
  if (PULL_REQUEST_EVENTS.has(message.eventName)) return true;
  const actors = policy.untrustedActors.map((login) => login.toLowerCase());
  if (actors.length === 0) return false;
  if (INHERITED_ACTOR_EVENTS.has(message.eventName)) return true;
  if (actors.some((login) => login !== DEPENDABOT)) return true;
  return refNameOf(message)?.toLowerCase().startsWith('dependabot') ?? false;
}

/** The origin from the message and the repository's visibility, for a job that needs no run. */
export function judgeMessage(message: JobMessage, isPublic: boolean, policy: TrustPolicy): JobOrigin {
  const origin: JobOrigin = { event: message.eventName, headBranch: refNameOf(message) };
  let reason: UntrustedReason | undefined;
  if (isPublic && policy.publicRepositories === 'untrusted') reason = 'public-repository';
  else if (policy.untrustedEvents.includes(message.eventName)) reason = 'untrusted-event';
  return reason ? { ...origin, untrustedBecause: reason } : origin;
}

export interface ScaleSetOriginsOptions {
  fetchRun: (repo: string, runId: number) => Promise<RunFacts>;
  fetchRepo: (repo: string) => Promise<RepoFacts>;
  policy: TrustPolicy;
  cacheSize: number;
  /** How long a repository's visibility is used before it is revalidated (conditional: free if unchanged). */
  visibilityTtlMs: number;
  logger: Logger;
}

export interface ScaleSetOrigins {
  /** The origin now, if it is known without waiting (cached run, or judged from the message). */
  peek(message: JobMessage, needs: OriginNeeds): JobOrigin | undefined;
  /** The origin, looking up what is missing; rejects while GitHub cannot answer (the origin is not guessed). */
  resolve(message: JobMessage, needs: OriginNeeds): Promise<JobOrigin>;
}

/** A repository GitHub will not show: nothing about its jobs can be vouched for. */
const UNKNOWN: JobOrigin = { event: 'unknown', headBranch: null, untrustedBecause: 'unknown-run' };

export function createScaleSetOrigins(options: ScaleSetOriginsOptions): ScaleSetOrigins {
  const { policy } = options;
  const runs = createRunOrigins({
    fetchRun: async (repo, runId) => {
      const run = await options.fetchRun(repo, runId);
      // The run says the repository's visibility too: no separate look-up for it later.
      visibility.set(repo.toLowerCase(), isPublicRepo(run.repository) ? 'public' : 'private');
      return run;
    },
    policy,
    cacheSize: options.cacheSize,
    logger: options.logger,
  });
  /** Run ids whose origin is cached, for `peek` (the run cache itself only answers asynchronously). */
  const known = new LRUCache<number, JobOrigin>({ max: options.cacheSize });
  const visibility = new LRUCache<string, 'public' | 'private' | 'unknown'>({
    max: options.cacheSize,
    ttl: options.visibilityTtlMs,
    allowStale: true,
    // A stale visibility is used while it is read again; a failed read keeps it.
    fetchMethod: async (repo, stale) => {
      try {
        return isPublicRepo(await options.fetchRepo(repo)) ? 'public' : 'private';
      } catch (err) {
        if (isRefusedForGood(err)) {
          options.logger.warn(
            { repo, err: err.message },
            'repository cannot be read; its jobs are treated as untrusted',
          );
          return 'unknown';
        }
        if (stale !== undefined) return stale;
        throw err;
      }
    },
  });

  const fromMessage = (message: JobMessage, seen: 'public' | 'private' | 'unknown'): JobOrigin =>
    seen === 'unknown' ? UNKNOWN : judgeMessage(message, seen === 'public', policy);

  return {
    peek(message, needs) {
      if (needsRun(message, policy, needs)) return known.get(message.workflowRunId);
      if (policy.publicRepositories === 'trusted') return judgeMessage(message, false, policy);
      const seen = visibility.get(message.repo.toLowerCase(), { allowStale: true });
      if (seen !== undefined && visibility.getRemainingTTL(message.repo.toLowerCase()) <= 0) {
        void visibility.fetch(message.repo.toLowerCase()).catch(() => {});
      }
      return seen === undefined ? undefined : fromMessage(message, seen);
    },
    async resolve(message, needs) {
      if (needsRun(message, policy, needs)) {
        const origin = await runs.originOf(message.repo, message.workflowRunId);
        known.set(message.workflowRunId, origin);
        return origin;
      }
      if (policy.publicRepositories === 'trusted') return judgeMessage(message, false, policy);
      const seen = await visibility.fetch(message.repo.toLowerCase());
      if (seen === undefined) throw new Error(`repository ${message.repo}: look-up gave no verdict`);
      return fromMessage(message, seen);
    },
  };
}

function isPublicRepo(repo: { private?: boolean; visibility?: string }): boolean {
  return repo.private === false || repo.visibility === 'public';
}
