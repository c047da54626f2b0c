import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { RunnerClass, RunnerClasses } from '../../classes/schema.ts';
import { ConfigError } from '../../errors.ts';
import type { CreateRunnerAction } from '../../model/action.ts';
import type { PlacementHold } from '../../model/ledger-snapshot.ts';
import {
  type RegisteredRunner,
  RegistrationDeferredError,
  RegistrationExistsError,
  type RunnerRegistrar,
} from '../../ports.ts';
import { createAdaptiveGate } from '../../util/adaptive-gate.ts';
import { backoffDelayMs } from '../../util/retry.ts';
import { BACKGROUND_RETRIES } from '../../util/schedules.ts';
import type { RunnerScope } from './api.ts';
import { GithubApiError, GithubRateLimitedError, isRefusedForGood, isStatus } from './errors.ts';
import type { JitRunnerService, RunnerPlacement } from './jit-runners.ts';
import { type PlacementProblem, placementProblems } from './runner-group-policy.ts';

/** A class whose runner group (or repository) GitHub would let untrusted jobs reach. */
export class UnsafePlacementError extends ConfigError {
  override name = 'UnsafePlacementError';
}

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
  const timers: NodeJS.Timeout[] = [];
  let sweeping: Promise<unknown> | undefined;
  let checking: Promise<unknown> | undefined;
  let stopped = false;
  /** Runner names whose registration is being removed in the background, and the wait timer. */
  const forgetting = new Map<string, NodeJS.Timeout | undefined>();
  const unsafeGauge = new Gauge({
    name: 'gantry_trust_placement_unsafe',
    help: '1 while the class’s runner group (or repository) lets untrusted jobs reach its runners, as last read from GitHub.',
    labelNames: ['class'] as const,
    registers: [options.metrics],
  });
  // Registrations are what a burst of jobs sends GitHub: as many at once as its answers allow.
  const gate = createAdaptiveGate({
    ...(options.concurrency ?? { initial: 8, min: 1, max: 16 }),
    judge: judgeGithubFailure,
    ...(options.onConcurrencyLimit ? { onLimit: options.onConcurrencyLimit } : {}),
  });
  const githubClasses = Object.keys(classes).filter((name) => classes[name]?.match.github);
  const orgScoped = githubClasses.filter((name) => classes[name]?.scope === 'org');
  for (const className of githubClasses) unsafeGauge.set({ class: className }, 0);

  const placementOf = (runner: RegisteredRunner, runnerClass: RunnerClass | undefined): RunnerPlacement => {
    if (runnerClass?.scope === 'repo') {
      if (!runner.repo)
        throw new Error(`runner ${runner.runnerName}: a repo-scoped class needs the job's repository`);
      return { scope: 'repo', repo: runner.repo };
    }
    return { scope: 'org', group: runnerClass?.runnerGroup ?? 'default' };
  };

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

  /** Whether the runner groups were read at least once. */
  let read = false;

  async function findProblems(): Promise<PlacementProblem[]> {
    const groups = orgScoped.length > 0 ? await runners.listGroups() : [];
    read = true;
    const problems = placementProblems(classes, groups);
    const unsafe = new Set(problems.map((p) => p.className));
    for (const className of githubClasses)
      unsafeGauge.set({ class: className }, unsafe.has(className) ? 1 : 0);
    return problems;
  }

  let unreadableRetry: NodeJS.Timeout | undefined;
  const [firstRetryMs, maxRetryMs] = options.unreadableRetryMs ?? [
    BACKGROUND_RETRIES.placementUnreadable.baseDelayMs,
    BACKGROUND_RETRIES.placementUnreadable.maxDelayMs,
  ];

  /** Holds what the problems ask for, logging each one. */
  function report(problems: readonly PlacementProblem[]): void {
    const refuse = options.unsafePlacement === 'refuse';
    for (const problem of problems) {
      log.error(
        { class: problem.className, runnerGroup: problem.group },
        refuse
          ? `${problem.message}; the class makes no runners and its idle ones go until this is fixed`
          : problem.message,
      );
    }
    const holds = new Map<string, PlacementHold>(
      refuse ? problems.map((p): [string, PlacementHold] => [p.className, 'unsafe']) : [],
    );
    options.onPlacements?.(holds);
  }

  async function recheck(): Promise<void> {
    report(await findProblems());
  }

  /**
   * GitHub could not be reached at start: rather than not start (every replica also answers Tekton's
   * admission reviews), hold the org-scoped classes and read the groups again, 5 s doubling to 60 s.
   */
  function holdUntilReadable(err: unknown, delayMs = firstRetryMs): void {
    clearTimeout(unreadableRetry);
    if (stopped) return;
    options.onPlacements?.(new Map(orgScoped.map((name): [string, PlacementHold] => [name, 'unknown'])));
    log.warn(
      { err: err instanceof Error ? err.message : String(err), retryInMs: delayMs },
      'runner groups cannot be read; org-scoped classes make no runners until they can',
    );
    unreadableRetry = setTimeout(() => {
      recheck().catch((again: unknown) => holdUntilReadable(again, Math.min(maxRetryMs, delayMs * 2)));
    }, delayMs);
    unreadableRetry.unref();
  }

  function forget(runner: RegisteredRunner, attempt = 0): void {
    if (stopped || (attempt === 0 && forgetting.has(runner.runnerName))) return;
    forgetting.set(runner.runnerName, undefined);
    const retry = (why: string) => {
      if (stopped || attempt + 1 >= BACKGROUND_RETRIES.forgetRegistration.attempts) {
        forgetting.delete(runner.runnerName);
        log.info({ pod: runner.runnerName, why }, 'registration left to the runner sweep');
        return;
      }
      const delay = backoffDelayMs(attempt, BACKGROUND_RETRIES.forgetRegistration);
      const timer = setTimeout(() => forget(runner, attempt + 1), delay);
      timer.unref();
      forgetting.set(runner.runnerName, timer);
    };
    runners
      .remove(runner.runnerName, placementOf(runner, classes[runner.className]))
      .then((result) => {
        if (result === 'busy') retry('GitHub still counts it busy');
        else forgetting.delete(runner.runnerName);
      })
      .catch((err: unknown) => retry(err instanceof Error ? err.message : String(err)));
  }

  /** Runs `task` every `everyMs`, one run at a time, logging its failures. */
  function every(everyMs: number, what: string, task: () => Promise<void>, slot: 'sweep' | 'check'): void {
    const timer = setInterval(() => {
      const running = slot === 'sweep' ? sweeping : checking;
      if (running) return;
      const run = task()
        .catch((err: unknown) =>
          log.warn({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`),
        )
        .finally(() => {
          if (slot === 'sweep') sweeping = undefined;
          else checking = undefined;
        });
      if (slot === 'sweep') sweeping = run;
      else checking = run;
    }, everyMs);
    timer.unref();
    timers.push(timer);
  }

  return {
    async register(action: CreateRunnerAction, runnerClass: RunnerClass, registerOptions) {
      const labels = runnerClass.match.github?.labels;
      if (!labels)
        throw new Error(`class ${action.className} has no GitHub labels to register a runner with`);
      const replaceExisting = registerOptions?.replaceExisting ?? true;
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
    forget: (runner) => forget(runner),
    sweep,
    async checkPlacements() {
      let problems: PlacementProblem[];
      try {
        problems = await findProblems();
      } catch (err) {
        if (isRefusedForGood(err)) {
          throw new UnsafePlacementError(`the runner groups cannot be read: ${err.message}`);
        }
        holdUntilReadable(err);
        return [];
      }
      const [first] = problems;
      if (first && options.unsafePlacement === 'refuse') {
        const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
        throw new UnsafePlacementError(
          `${first.message}${more}; fix it on GitHub, or set github.trust.unsafePlacement: warn`,
        );
      }
      for (const problem of problems) {
        log.error({ class: problem.className, runnerGroup: problem.group }, problem.message);
      }
      return problems;
    },
    start() {
      stopped = false;
      // A leader that never read the groups (GitHub was away when it started) reads them now.
      if (!read) {
        clearTimeout(unreadableRetry);
        recheck().catch((err: unknown) => holdUntilReadable(err));
      }
      // At once (registrations a predecessor left), then on the interval.
      sweeping ??= sweep()
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'runner sweep failed'))
        .finally(() => {
          sweeping = undefined;
        });
      every(options.cleanupIntervalMs, 'runner sweep', sweep, 'sweep');
      every(options.placementCheckIntervalMs, 'runner group check', recheck, 'check');
    },
    async stop() {
      stopped = true;
      clearTimeout(unreadableRetry);
      for (const timer of timers.splice(0)) clearInterval(timer);
      for (const timer of forgetting.values()) clearTimeout(timer);
      forgetting.clear();
      await Promise.all([sweeping, checking]);
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
