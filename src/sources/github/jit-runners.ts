import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../../util/retry.ts';
import { CALL_RETRIES } from '../../util/schedules.ts';
import { type GithubApi, type RunnerScope, scopeLabel } from './api.ts';
import type { Clock } from './clock.ts';
import { GithubApiError, GithubRateLimitedError, isStatus } from './errors.ts';
import type { GithubMetrics } from './metrics.ts';
import { decideRunnerCleanup } from './runner-cleanup.ts';
import type { RunnerGroupAccess } from './runner-group-policy.ts';

export interface JitRunner {
  id: number;
  name: string;
  /** Secret: the runner's whole identity. Hand it to the pod (ACTIONS_RUNNER_INPUT_JITCONFIG), never log it. */
  encodedJitConfig: string;
  scope: RunnerScope;
}

/** Where a runner registers: its organisation (in a runner group) or one repository. */
export type RunnerPlacement = { scope: 'org'; group: string } | { scope: 'repo'; repo: string };

export interface CreateRunnerRequest {
  /** Unique, and the name of its pod too, so either leads to the other. */
  name: string;
  /** The runner class's labels; a job runs on it when its runs-on labels are all among them. */
  labels: readonly string[];
  placement: RunnerPlacement;
  /**
   * A registration of the same name exists already: remove it and register anew (default), or
   * fail with GitHub's 409 (when it may belong to a runner that is still wanted).
   */
  replaceExisting?: boolean;
}

export interface CleanupReport {
  deleted: string[];
  /** Runners GitHub would not delete because they are running a job (422). */
  busy: string[];
  failed: string[];
}

export interface JitRunnerService {
  create(request: CreateRunnerRequest): Promise<JitRunner>;
  /** Removes one runner's registration; `busy` when GitHub refuses because it is running a job. */
  remove(name: string, placement: RunnerPlacement): Promise<'removed' | 'busy' | 'absent'>;
  /** Deletes owned runners whose pod is gone or that stayed offline past the grace, in these scopes. */
  cleanup(livePods: ReadonlySet<string>, scopes: readonly RunnerScope[]): Promise<CleanupReport>;
  /** The scope a placement registers in. */
  scopeOf(placement: RunnerPlacement): RunnerScope;
  /** The organisation's runner groups with their access settings (conditional: free when unchanged). */
  listGroups(): Promise<RunnerGroupAccess[]>;
}

export interface JitRunnerOptions {
  api: GithubApi;
  /** Organisation of org-scoped runners. */
  org?: string;
  namePrefix: string;
  offlineGraceMs: number;
  maxRetries: number;
  clock: Clock;
  logger: Logger;
  metrics: GithubMetrics;
}

/** Repositories have no runner groups of their own; GitHub's default group has id 1. */
const REPO_SCOPE_GROUP_ID = 1;
const MAX_NAME_LENGTH = 63;

export function createJitRunnerService(options: JitRunnerOptions): JitRunnerService {
  const { api, clock, metrics } = options;
  const log = options.logger.child({ component: 'github-runners' });
  const createdAt = new Map<string, number>();
  /** Runner ids by name, from their registration: removing one then needs no look-up by name. */
  const ids = new LRUCache<string, number>({ max: 50_000 });
  let offlineSince = new Map<string, number>();
  const groupIds = new Map<string, Promise<number>>();

  const scopeOf = (placement: RunnerPlacement): RunnerScope => {
    if (placement.scope === 'repo') return { kind: 'repo', repo: placement.repo };
    if (!options.org) throw new Error('github.runners.org is required for org-scoped runners');
    return { kind: 'org', org: options.org };
  };

  /** Each group name is resolved once per process; a failed look-up is retried by the next caller. */
  const resolveGroupId = (scope: RunnerScope, placement: RunnerPlacement): Promise<number> => {
    if (scope.kind === 'repo' || placement.scope === 'repo') return Promise.resolve(REPO_SCOPE_GROUP_ID);
    const wanted = placement.group.toLowerCase();
    let id = groupIds.get(wanted);
    if (!id) {
      id = (async () => {
        const { items } = await api.listRunnerGroups(scope.org);
        const group = items.find((g) => g.name.toLowerCase() === wanted);
        if (!group) {
          throw new Error(
            `runner group "${placement.group}" not found in ${scopeLabel(scope)} (groups: ${items.map((g) => g.name).join(', ') || 'none'})`,
          );
        }
        log.info({ group: group.name, groupId: group.id }, 'runner group resolved');
        return group.id;
      })().catch((err: unknown) => {
        groupIds.delete(wanted);
        throw err;
      });
      groupIds.set(wanted, id);
    }
    return id;
  };

  const deleteByName = async (scope: RunnerScope, name: string) => {
    const { items } = await api.listRunners(scope, name);
    for (const runner of items.filter((r) => r.name === name)) {
      try {
        await api.deleteRunner(scope, runner.id);
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
    }
  };

  return {
    scopeOf,

    async listGroups() {
      const scope = scopeOf({ scope: 'org', group: 'default' });
      if (scope.kind !== 'org') return [];
      const { items } = await api.listRunnerGroups(scope.org);
      return items;
    },

    async create(request) {
      if (!request.name.startsWith(`${options.namePrefix}-`) || request.name.length > MAX_NAME_LENGTH) {
        throw new Error(
          `runner name "${request.name}" must start with "${options.namePrefix}-" and have at most ${MAX_NAME_LENGTH} characters`,
        );
      }
      if (request.labels.length < 1 || request.labels.length > 100 || request.labels.some((l) => !l.trim())) {
        throw new Error(
          `runner labels must be 1 to 100 non-empty strings, got ${JSON.stringify(request.labels)}`,
        );
      }
      const scope = scopeOf(request.placement);
      const runnerGroupId = await resolveGroupId(scope, request.placement);
      const body = {
        name: request.name,
        runner_group_id: runnerGroupId,
        labels: [...request.labels],
        work_folder: '_work',
      };
      let staleRemoved = false;
      for (let attempt = 0; ; attempt++) {
        try {
          const data = await api.generateJitConfig(scope, body);
          createdAt.set(request.name, clock.now());
          ids.set(request.name, data.runner.id);
          metrics.runnersCreated.inc();
          log.info(
            { pod: request.name, runner: data.runner.id, scope: scopeLabel(scope) },
            'JIT runner registered',
          );
          return {
            id: data.runner.id,
            name: data.runner.name,
            encodedJitConfig: data.encoded_jit_config,
            scope,
          };
        } catch (err) {
          if (err instanceof GithubRateLimitedError || attempt >= options.maxRetries) throw err;
          if (isStatus(err, 409) && !staleRemoved && request.replaceExisting !== false) {
            // The name is registered already: by an attempt whose answer was lost, or by an earlier
            // runner of the same name whose pod is gone (the caller made this runner's pod just now).
            // Either registration is stale: remove it and register anew, once.
            staleRemoved = true;
            await deleteByName(scope, request.name);
            continue;
          }
          const status = err instanceof GithubApiError ? err.status : -1;
          if (!(status === 0 || status >= 500)) throw err;
          await clock.sleep(backoffDelayMs(attempt, CALL_RETRIES.github));
        }
      }
    },

    async remove(name, placement) {
      const scope = scopeOf(placement);
      // The id from its registration when this process made it; else it is looked up by name.
      const known = ids.get(name);
      const matching =
        known !== undefined
          ? [known]
          : (await api.listRunners(scope, name)).items.filter((r) => r.name === name).map((r) => r.id);
      if (matching.length === 0) return 'absent';
      let removed = false;
      for (const id of matching) {
        try {
          await api.deleteRunner(scope, id);
          metrics.runnersDeleted.inc({ reason: 'unneeded' });
          removed = true;
        } catch (err) {
          if (isStatus(err, 422)) return 'busy';
          if (!isStatus(err, 404)) throw err;
        }
      }
      createdAt.delete(name);
      ids.delete(name);
      return removed ? 'removed' : 'absent';
    },

    async cleanup(livePods, scopes) {
      const report: CleanupReport = { deleted: [], busy: [], failed: [] };
      const now = clock.now();
      const nextOffline = new Map<string, number>();
      for (const scope of scopes) {
        const { items } = await api.listRunners(scope);
        const owned = items.filter((r) => r.name.startsWith(`${options.namePrefix}-`));
        const decision = decideRunnerCleanup({
          runners: owned,
          livePods,
          offlineSince,
          createdAt,
          nowMs: now,
          offlineGraceMs: options.offlineGraceMs,
        });
        for (const [name, since] of decision.offlineSince) nextOffline.set(name, since);
        for (const { runner, reason } of decision.remove) {
          try {
            await api.deleteRunner(scope, runner.id);
            report.deleted.push(runner.name);
            metrics.runnersDeleted.inc({ reason });
            createdAt.delete(runner.name);
            ids.delete(runner.name);
            nextOffline.delete(runner.name);
            log.info({ pod: runner.name, runner: runner.id, reason }, 'runner deleted');
          } catch (err) {
            if (isStatus(err, 422)) {
              report.busy.push(runner.name);
              log.info({ pod: runner.name, runner: runner.id }, 'runner busy with a job; left in place');
            } else if (isStatus(err, 404)) {
              report.deleted.push(runner.name);
            } else if (err instanceof GithubRateLimitedError) {
              throw err;
            } else {
              report.failed.push(runner.name);
              log.warn(
                { pod: runner.name, runner: runner.id, err: (err as Error).message },
                'runner delete failed',
              );
            }
          }
        }
      }
      offlineSince = nextOffline;
      // Forget creation times once past the grace; the pod check covers those runners from then on.
      for (const [name, at] of createdAt) if (now - at >= options.offlineGraceMs) createdAt.delete(name);
      return report;
    },
  };
}
