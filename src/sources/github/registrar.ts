import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RunnerClass, RunnerClasses } from '../../classes/schema.ts';
import type { CreateRunnerAction } from '../../model/action.ts';
import type { PlacementHold } from '../../model/ledger-snapshot.ts';
import {
  type RegisteredRunner,
  RegistrationDeferredError,
  RegistrationExistsError,
  type RunnerRegistrar,
} from '../../ports.ts';
import { createAdaptiveGate } from '../../util/adaptive-gate.ts';
import type { RunnerScope } from './api.ts';
import { GithubApiError, GithubRateLimitedError, isStatus } from './errors.ts';
import type { JitRunnerService, RunnerPlacement } from './jit-runners.ts';
import { createPlacementGuard } from './placement-guard.ts';
import { createRegistrationForgetter } from './registration-forgetter.ts';
import type { PlacementProblem } from './runner-group-policy.ts';

export interface GithubRegistrarOptions {
  runners: JitRunnerService;
  classes: RunnerClasses;
  /** Names of the runner pods that exist now; registrations of other Gantry runners are stale. */
  livePods: () => ReadonlySet<string>;
  /** Repositories that repo-scoped runners may be registered in, for the clean-up sweep. */
  repositories: () => Iterable<string>;
  logger: Logger;
  metrics: Registry;
  cleanupIntervalMs: number;
  /** What an unsafe placement does: refuse (at start: exit; later: hold the class) or only warn. */
  unsafePlacement: 'warn' | 'refuse';
  /** How often the runner groups are read again after start. */
  placementCheckIntervalMs: number;
  /**
   * Told after every check which classes to hold on account of their runner groups: unsafe ones
   * (with `refuse`), and every org-scoped class while the groups cannot be read at all.
   */
  onPlacements?: (holds: ReadonlyMap<string, PlacementHold>) => void;
  /** Waits between reads of the runner groups while GitHub cannot be reached: doubling, first to max. */
  unreadableRetryMs?: readonly [first: number, max: number];
  /**
   * Registrations and removals sent to GitHub at once: the limit adapts between `min` and `max`
   * (see AdaptiveLimit), halving on 5xx, timeouts and rate limits.
   */
  concurrency?: { initial: number; min: number; max: number };
  /** Told of every change of that limit (metrics). */
  onConcurrencyLimit?: (limit: number) => void;
}

/**
 * Runner registrations on GitHub for the launcher: a JIT config per runner in its class's scope
 * (organisation runner group, or the job's repository), removal on request, a periodic sweep of
 * registrations whose pod is gone or that never came online, and the check that GitHub's side keeps
 * untrusted jobs away from trusted runners (at start, then every placement check interval).
 */
export function createGithubRegistrar(options: GithubRegistrarOptions): RunnerRegistrar & {
  /** Checks every class's placement; with `refuse`, throws UnsafePlacementError naming the first problem. */
  checkPlacements(): Promise<PlacementProblem[]>;
  /** One sweep of stale registrations now (start() runs one at once, then every cleanup interval). */
  sweep(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
} {
  const { runners, classes } = options;
  const log = options.logger.child({ component: 'github-registrar' });
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;
  // Registrations are what a burst of jobs sends GitHub: as many at once as its answers allow.
  const gate = createAdaptiveGate({
    ...(options.concurrency ?? { initial: 8, min: 1, max: 16 }),
    judge: judgeGithubFailure,
    ...(options.onConcurrencyLimit ? { onLimit: options.onConcurrencyLimit } : {}),
  });
  const orgScoped = Object.keys(classes).filter(
    (name) => classes[name]?.match.github && classes[name]?.scope === 'org',
  );
  // Repo-scoped classes have no group: their repository is their placement (checked by the policy).
  const placement = createPlacementGuard({
    classes,
    listGroups: () => (orgScoped.length > 0 ? runners.listGroups() : Promise.resolve([])),
    placedInGroups: orgScoped,
    unsafePlacement: options.unsafePlacement,
    intervalMs: options.placementCheckIntervalMs,
    logger: options.logger,
    metrics: options.metrics,
    ...(options.onPlacements ? { onPlacements: options.onPlacements } : {}),
    ...(options.unreadableRetryMs ? { unreadableRetryMs: options.unreadableRetryMs } : {}),
  });

  const placementOf = (runner: RegisteredRunner, runnerClass: RunnerClass | undefined): RunnerPlacement => {
    if (runnerClass?.scope === 'repo') {
      if (!runner.repo)
        throw new Error(`runner ${runner.runnerName}: a repo-scoped class needs the job's repository`);
      return { scope: 'repo', repo: runner.repo };
    }
    return { scope: 'org', group: runnerClass?.runnerGroup ?? 'default' };
  };

  const forgetter = createRegistrationForgetter({
    remove: (runner) => runners.remove(runner.runnerName, placementOf(runner, classes[runner.className])),
    logger: log,
    leftTo: 'the runner sweep',
  });

  async function sweep(): Promise<void> {
    const scopes: RunnerScope[] = [];
    const classList = Object.values(classes);
    if (classList.some((c) => c.scope === 'org' && c.match.github)) {
      scopes.push(runners.scopeOf({ scope: 'org', group: 'default' }));
    }
    if (classList.some((c) => c.scope === 'repo' && c.match.github)) {
      for (const repo of new Set(options.repositories())) scopes.push({ kind: 'repo', repo });
    }
    const report = await runners.cleanup(options.livePods(), scopes);
    if (report.deleted.length || report.failed.length) log.info(report, 'stale runner registrations swept');
  }

  return {
    async register(action: CreateRunnerAction, runnerClass: RunnerClass, registerOptions) {
      const labels = runnerClass.match.github?.labels;
      if (!labels)
        throw new Error(`class ${action.className} has no GitHub labels to register a runner with`);
      const replaceExisting = registerOptions?.replaceExisting ?? true;
      forgetter.cancel(action.runnerName);
      try {
        const runner = await gate.run(() =>
          runners.create({
            name: action.runnerName,
            labels,
            placement: placementOf(action, runnerClass),
            replaceExisting,
          }),
        );
        return { encodedJitConfig: runner.encodedJitConfig };
      } catch (err) {
        if (!replaceExisting && isStatus(err, 409)) {
          throw new RegistrationExistsError(`runner ${action.runnerName} is registered already`, {
            cause: err,
          });
        }
        if (err instanceof GithubRateLimitedError) {
          throw new RegistrationDeferredError(err.message, err.untilMs, { cause: err });
        }
        throw err;
      }
    },
    unregister(runner: RegisteredRunner) {
      return gate.run(() =>
        runners.remove(runner.runnerName, placementOf(runner, classes[runner.className])),
      );
    },
    forget: forgetter.forget,
    sweep,
    checkPlacements: () => placement.checkPlacements(),
    start() {
      forgetter.start();
      placement.start();
      // At once (registrations a predecessor left), then on the interval, one sweep at a time.
      const sweepOnce = () => {
        sweeping ??= sweep()
          .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'runner sweep failed'))
          .finally(() => {
            sweeping = undefined;
          });
      };
      sweepOnce();
      clearInterval(sweepTimer);
      sweepTimer = setInterval(sweepOnce, options.cleanupIntervalMs);
      sweepTimer.unref();
    },
    async stop() {
      clearInterval(sweepTimer);
      forgetter.stop();
      await Promise.all([sweeping, placement.stop()]);
    },
  };
}

/**
 * 5xx, no answer and rate limits are GitHub asking for less. A request the client held back (its
 * rate limit is spent) says nothing; the class then waits for the limit's end (see the reconciler).
 */
function judgeGithubFailure(err: unknown): 'overload' | 'answer' | 'unsent' {
  if (err instanceof GithubRateLimitedError) return err.sent ? 'overload' : 'unsent';
  if (err instanceof GithubApiError) return err.status === 0 || err.status >= 500 ? 'overload' : 'answer';
  // Refused before any request (a name or labels GitHub would not take).
  return 'unsent';
}
