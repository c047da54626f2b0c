import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RunnerClasses } from '../../classes/schema.ts';
import { ConfigError } from '../../errors.ts';
import type { PlacementHold } from '../../model/ledger-snapshot.ts';
import { BACKGROUND_RETRIES } from '../../util/schedules.ts';
import { isRefusedForGood } from './errors.ts';
import { placementUnsafeGauge } from './metrics.ts';
import { type PlacementProblem, placementProblems, type RunnerGroupAccess } from './runner-group-policy.ts';

/** A class whose runner group (or repository) GitHub would let untrusted jobs reach. */
export class UnsafePlacementError extends ConfigError {
  override name = 'UnsafePlacementError';
}

/**
 * The runner groups' side of trust: GitHub gives a job to any idle runner whose labels fit and whose
 * group admits the repository, so a trusted class's group must admit no public repository, and a
 * trusted-only class's only selected workflows, whether its runners are JIT runners or a scale set's.
 * Read at start (refusing to start, or warning) and every check interval after (conditional: free
 * while unchanged); a class whose group is unsafe, or cannot be read yet, is held.
 */

export interface PlacementGuardOptions {
  classes: RunnerClasses;
  /** The organisation's runner groups with their access settings. */
  listGroups: () => Promise<RunnerGroupAccess[]>;
  /** The classes held while the groups cannot be read (those placed in a group); every GitHub class by default. */
  placedInGroups?: readonly string[];
  unsafePlacement: 'warn' | 'refuse';
  intervalMs: number;
  onPlacements?: (holds: ReadonlyMap<string, PlacementHold>) => void;
  logger: Logger;
  metrics: Registry;
  unreadableRetryMs?: readonly [first: number, max: number];
}

export interface PlacementGuard {
  /** At start: with `refuse`, throws UnsafePlacementError naming the first problem. */
  checkPlacements(): Promise<PlacementProblem[]>;
  start(): void;
  stop(): Promise<void>;
}

export function createPlacementGuard(options: PlacementGuardOptions): PlacementGuard {
  const { classes } = options;
  const log = options.logger.child({ component: 'runner-placement' });
  const classNames = Object.keys(classes).filter((name) => classes[name]?.match.github);
  const placedInGroups = options.placedInGroups ?? classNames;
  const gauge = placementUnsafeGauge(options.metrics);
  for (const name of classNames) gauge.set({ class: name }, 0);
  const [firstRetryMs, maxRetryMs] = options.unreadableRetryMs ?? [
    BACKGROUND_RETRIES.placementUnreadable.baseDelayMs,
    BACKGROUND_RETRIES.placementUnreadable.maxDelayMs,
  ];
  let read = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;

  async function findProblems(): Promise<PlacementProblem[]> {
    const problems = placementProblems(classes, await options.listGroups());
    read = true;
    const unsafe = new Set(problems.map((p) => p.className));
    for (const name of classNames) gauge.set({ class: name }, unsafe.has(name) ? 1 : 0);
    return problems;
  }

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
    options.onPlacements?.(
      new Map(refuse ? problems.map((p): [string, PlacementHold] => [p.className, 'unsafe']) : []),
    );
  }

  const recheck = async () => report(await findProblems());

  /**
   * GitHub could not be reached: rather than not start (every replica also answers Tekton's admission
   * reviews), hold the classes placed in groups and read the groups again, doubling the wait.
   */
  function holdUntilReadable(err: unknown, delayMs = firstRetryMs): void {
    clearTimeout(retry);
    if (stopped) return;
    options.onPlacements?.(new Map(placedInGroups.map((name): [string, PlacementHold] => [name, 'unknown'])));
    log.warn(
      { err: err instanceof Error ? err.message : String(err), retryInMs: delayMs },
      'runner groups cannot be read; the classes placed in them make no runners until they can',
    );
    retry = setTimeout(() => {
      recheck().catch((again: unknown) => holdUntilReadable(again, Math.min(maxRetryMs, delayMs * 2)));
    }, delayMs);
    retry.unref();
  }

  return {
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
      for (const problem of problems)
        log.error({ class: problem.className, runnerGroup: problem.group }, problem.message);
      return problems;
    },
    start() {
      stopped = false;
      // A leader that never read the groups (GitHub was away when it started) reads them now.
      if (!read) {
        clearTimeout(retry);
        recheck().catch((err: unknown) => holdUntilReadable(err));
      }
      clearInterval(timer);
      timer = setInterval(() => {
        checking ??= recheck()
          .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'runner group check failed'))
          .finally(() => {
            checking = undefined;
          });
      }, options.intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(retry);
      await checking;
    },
  };
}
