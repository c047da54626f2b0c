import type { Logger } from 'pino';
import type { RunnerClasses } from '../classes/schema.ts';
import type { Ledger, LedgerChange } from '../ledger/ledger.ts';
import type { Action, CreateRunnerAction } from '../model/action.ts';
import type { EpochMillis } from '../model/job.ts';
import { plan } from '../planner/plan.ts';
import type { CheckOutcome, CreateOutcome, RunActuator, RunnerActuator } from '../ports.ts';

export interface ReconcilerOptions {
  ledger: Ledger;
  classes: RunnerClasses;
  /** Absent when no class launches runners (GitHub disabled). */
  actuator?: RunnerActuator;
  /** Absent when no source queues runs (Tekton disabled). */
  runs?: RunActuator;
  logger: Logger;
  now?: () => EpochMillis;
  /** Actions carried out at once; the rest wait their turn. */
  concurrency?: number;
  /** How long a namespace makes no new runners after its quota refused one. */
  quotaBackoffMs?: number;
  /**
   * How long a class makes no new runners after a registration failed: doubling from the first to
   * the second value while failures repeat, unless the CI system said when it takes them again.
   */
  registrationBackoffMs?: readonly [first: number, max: number];
  /**
   * How long a class makes no new runners after one failed to start (an image that does not pull, a
   * pod the apiserver refuses): doubling from the first to the second value while failures repeat.
   */
  startFailureBackoffMs?: readonly [first: number, max: number];
  /** Told of the ledger changes the loop itself makes (a refused create); they must not throw. */
  onChange?: (change: LedgerChange) => void;
  /**
   * Waits before sending again a create whose pod may have been stored (no answer came): it stays
   * counted meanwhile, so a pod the watch has not reported yet never lets the class exceed its max.
   */
  createRetryDelaysMs?: readonly number[];
  /**
   * Whether the ledger is current (every watch feeding it open). A pass waits until it is: a replica
   * that takes over while its watches are still reconnecting would plan on an outdated picture.
   */
  ready?: () => boolean;
  /** Passes also run on this period, for decisions that only time changes (idle and start timeouts). */
  periodMs?: number;
  onPass?: (pass: { actions: Action[]; durationMs: number }) => void;
}

/**
 * The loop: snapshot the ledger, plan, hand the actions to a bounded pool of workers, repeat
 * whenever something changed (`trigger`) or the period passed. Passes never overlap; triggers during
 * a pass coalesce into one more pass after it. What the actions change comes back through the
 * watches, not from here, except what the ledger must know at once (the intent, recorded before an
 * action is handed out) so that no later plan repeats an action waiting or in flight.
 */
export function createReconciler(options: ReconcilerOptions) {
  const { ledger, classes, actuator } = options;
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'reconciler' });
  const concurrency = options.concurrency ?? 8;
  const quotaBackoffMs = options.quotaBackoffMs ?? 10_000;
  const [firstHoldMs, maxHoldMs] = options.registrationBackoffMs ?? [1_000, 30_000];
  const registrationFailures = new Map<string, number>();
  const [firstStartHoldMs, maxStartHoldMs] = options.startFailureBackoffMs ?? [5_000, 120_000];
  /** Per class: start failures counted in a row, when the current hold began, and its length. */
  const startFailures = new Map<string, { count: number; since: EpochMillis; holdMs: number }>();
  const createRetryDelaysMs = options.createRetryDelaysMs ?? [1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
  /** Creates waiting to be sent again, by runner name: how many times so far, and the timer. */
  const createRetries = new Map<string, { attempts: number; timer?: NodeJS.Timeout }>();
  /** Runner names whose create call is under way. */
  const creating = new Set<string>();
  let running: Promise<void> | null = null;
  let again = false;
  // Planned actions wait here for one of `concurrency` workers. Passes do not wait for their actions
  // to finish (the ledger already counts them), only for the backlog to be handed out, so a job that
  // arrives while creates are in flight is planned, and its create sent, at once.
  const backlog: Action[] = [];
  let inFlight = 0;
  const waiters: { ready: () => boolean; resolve: () => void }[] = [];
  // Only while active does the loop act: a replica that does not lead keeps its ledger, not its hands.
  let active = false;
  let timer: NodeJS.Timeout | undefined;

  let waitingForLedger = false;

  async function pass(): Promise<void> {
    const ready = options.ready?.() ?? true;
    if (ready !== !waitingForLedger) {
      waitingForLedger = !ready;
      if (ready) log.info('watches open again: planning resumes');
      else log.warn('a watch is reconnecting: planning waits for an up-to-date picture');
    }
    if (!ready) return;
    const started = performance.now();
    const actions = plan(ledger.snapshot(classes, now()), classes, now());
    // Record intent first, so a create in flight is supply to the next plan and never made twice.
    for (const action of actions) {
      const runnerClass = classes[action.className];
      if (action.kind === 'create-runner' && runnerClass) {
        ledger.noteCreateRequested(action, runnerClass.maxCreatePerSecond, now());
      } else if (action.kind === 'delete-runner') {
        ledger.noteDeleteRequested(action.runnerName);
      } else if (action.kind === 'check-runner') {
        ledger.noteCheckRequested(action.runnerName);
      } else if (action.kind === 'admit-run' && runnerClass) {
        ledger.noteAdmitRequested(action, runnerClass.maxCreatePerSecond, now());
      } else if (action.kind === 'cancel-run') {
        ledger.noteCancelRequested(action.runKey);
      }
    }
    backlog.push(...actions);
    dispatch();
    options.onPass?.({ actions, durationMs: performance.now() - started });
  }

  /** Hands backlog to free workers; a worker that ends hands out the next. */
  function dispatch(): void {
    while (inFlight < concurrency && backlog.length > 0) {
      const action = backlog.shift() as Action;
      inFlight += 1;
      void (active ? execute(action) : abandon(action))
        .catch((err: unknown) => log.error({ err, action: action.kind }, 'action failed'))
        .finally(() => {
          inFlight -= 1;
          dispatch();
        });
    }
    for (const waiter of waiters.splice(0)) {
      if (waiter.ready()) waiter.resolve();
      else waiters.push(waiter);
    }
  }

  function when(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => waiters.push({ ready, resolve }));
  }

  /** Stopped (leadership lost, shutdown): planned actions not yet begun are not carried out. */
  function abandon(action: Action): Promise<void> {
    if (action.kind === 'create-runner') ledger.noteCreateFailed(action.runnerName);
    else if (action.kind === 'delete-runner') ledger.noteDeleteAbandoned(action.runnerName);
    else if (action.kind === 'check-runner') ledger.noteCheckResult(action.runnerName, 'failed');
    else ledger.noteRunActionFailed(action.runKey);
    return Promise.resolve();
  }

  async function execute(action: Action): Promise<void> {
    if (action.kind === 'create-runner') {
      const runnerClass = classes[action.className];
      if (!runnerClass) return;
      creating.add(action.runnerName);
      const outcome: CreateOutcome = await (actuator
        ? actuator.create(action, runnerClass)
        : Promise.resolve({ kind: 'failed', error: new Error('no source registers runners') } as const)
      ).finally(() => creating.delete(action.runnerName));
      const earlierAttempts = createRetries.get(action.runnerName)?.attempts ?? 0;
      createRetries.delete(action.runnerName);
      if (outcome.kind === 'quota-exceeded') {
        ledger.noteCreateFailed(action.runnerName);
        ledger.noteQuotaExceeded(action.namespace, now() + (outcome.retryAfterMs ?? quotaBackoffMs));
        log.warn(
          { class: action.className, namespace: action.namespace, reason: outcome.message },
          'quota reached; creations held',
        );
      } else if (outcome.kind === 'registration-failed') {
        ledger.noteCreateFailed(action.runnerName);
        const failures = (registrationFailures.get(action.className) ?? 0) + 1;
        registrationFailures.set(action.className, failures);
        const holdMs =
          outcome.retryAt !== undefined
            ? Math.max(0, outcome.retryAt - now())
            : Math.min(maxHoldMs, firstHoldMs * 2 ** (failures - 1));
        ledger.holdCreations(action.className, now() + holdMs);
        log.warn(
          { class: action.className, pod: action.runnerName, holdMs, err: outcome.error.message },
          'runner registration failed; creations of the class held',
        );
      } else if (outcome.kind === 'refused') {
        for (const change of ledger.noteCreateRefused(action.runnerName, outcome.detail, outcome.message)) {
          observe(change);
          options.onChange?.(change);
        }
      } else if (outcome.kind === 'failed') {
        const retry = outcome.podMayExist ? scheduleCreateRetry(action, earlierAttempts) : undefined;
        if (retry === undefined) ledger.noteCreateFailed(action.runnerName);
        log.error(
          { class: action.className, pod: action.runnerName, err: outcome.error.message, retryInMs: retry },
          'runner create failed',
        );
      } else {
        ledger.noteCreateSucceeded(action.runnerName);
        if (registrationFailures.delete(action.className)) ledger.releaseCreations(action.className);
        // Its removal was planned while the create was under way (too slow to start) and found no
        // pod then: plan it again now that the pod exists.
        if (!ledger.isCreateWanted(action.runnerName)) ledger.noteDeleteAbandoned(action.runnerName);
      }
    } else if (action.kind === 'delete-runner') {
      const outcome = actuator
        ? await actuator.remove(action)
        : ({ kind: 'failed', error: new Error('no source registers runners') } as const);
      if (
        outcome.kind === 'deleted' &&
        !creating.has(action.runnerName) &&
        !createRetries.has(action.runnerName)
      ) {
        // A runner no pod was ever reported for (its create failed or its pod went unseen) is gone.
        ledger.noteRequestedRunnerRemoved(action.runnerName);
      } else if (outcome.kind === 'kept-busy') {
        ledger.noteKeptBusy(action.runnerName);
      } else if (outcome.kind === 'failed') {
        // Planned again on a later pass, rather than counted as terminating for ever.
        ledger.noteDeleteAbandoned(action.runnerName);
        log.error(
          { class: action.className, pod: action.runnerName, err: outcome.error.message },
          'runner delete failed',
        );
      }
    } else if (action.kind === 'check-runner') {
      const outcome: CheckOutcome = actuator
        ? await actuator.check(action)
        : { kind: 'failed', error: new Error('no source registers runners') };
      ledger.noteCheckResult(action.runnerName, outcome.kind);
      if (outcome.kind === 'failed') {
        log.warn(
          { class: action.className, pod: action.runnerName, err: outcome.error.message },
          'runner check failed',
        );
      }
    } else {
      const outcome = options.runs
        ? await (action.kind === 'admit-run' ? options.runs.admit(action) : options.runs.cancel(action))
        : ({ kind: 'failed', error: new Error('no source handles queued runs') } as const);
      if (outcome.kind === 'failed') {
        ledger.noteRunActionFailed(action.runKey);
        log.error(
          { class: action.className, run: action.runKey, err: outcome.error.message },
          `${action.kind} failed`,
        );
      }
    }
  }

  /**
   * A runner of the class will never start: make no more for a while (5 s doubling to 2 min while
   * it repeats), so a broken image or pod spec costs a pod per hold rather than one per pass. A runner
   * made before the current hold began failed for what was counted already: the hold is renewed at its
   * length, not doubled, so a burst of doomed pods counts once.
   */
  function noteStartFailure(change: Extract<LedgerChange, { kind: 'runner-start-failed' }>): void {
    const { runner, failure } = change;
    const at = now();
    const streak = startFailures.get(runner.className);
    const escalate = streak === undefined || runner.createdAt > streak.since;
    const count = (streak?.count ?? 0) + (escalate ? 1 : 0);
    const holdMs =
      escalate || streak === undefined
        ? Math.min(maxStartHoldMs, firstStartHoldMs * 2 ** (count - 1))
        : streak.holdMs;
    startFailures.set(runner.className, { count, since: escalate ? at : (streak?.since ?? at), holdMs });
    ledger.holdCreations(runner.className, at + holdMs, 'start-failure');
    log.warn(
      {
        class: runner.className,
        pod: runner.name,
        reason: failure.reason,
        detail: failure.detail,
        container: failure.container,
        err: failure.message,
        holdMs,
      },
      'runner cannot start; creations of the class held',
    );
  }

  /** Ledger changes the loop reacts to: start failures hold the class, a runner running lifts that. */
  function observe(change: LedgerChange): void {
    if (change.kind === 'runner-start-failed') noteStartFailure(change);
    else if (change.kind === 'runner-running' && startFailures.delete(change.runner.className)) {
      ledger.releaseCreations(change.runner.className, 'start-failure');
      log.info(
        { class: change.runner.className, pod: change.runner.name },
        'runners of the class start again',
      );
    }
  }

  /** Sends the create again later, unless its retries are spent; returns the wait. */
  function scheduleCreateRetry(action: CreateRunnerAction, earlierAttempts: number): number | undefined {
    const delayMs = createRetryDelaysMs[earlierAttempts];
    if (delayMs === undefined || !active) return undefined;
    const retry: { attempts: number; timer?: NodeJS.Timeout } = { attempts: earlierAttempts + 1 };
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      // Planned for removal meanwhile (stuck while it waited): the create is no longer wanted.
      if (!active || !ledger.isCreateWanted(action.runnerName)) {
        createRetries.delete(action.runnerName);
        ledger.noteCreateFailed(action.runnerName);
        return;
      }
      backlog.push(action);
      dispatch();
    }, delayMs);
    retry.timer.unref();
    createRetries.set(action.runnerName, retry);
    return delayMs;
  }

  function runPass(): Promise<void> {
    running ??= (async () => {
      try {
        do {
          again = false;
          // Under a burst, plan again once the last plan's actions are all under way, not before.
          await when(() => backlog.length === 0);
          if (!active) break;
          await pass().catch((err: unknown) => log.error({ err }, 'reconcile pass failed'));
        } while (again && active);
      } finally {
        running = null;
      }
    })();
    return running;
  }

  return {
    /** A ledger change from the watches or the sources: start failures and recoveries are acted on. */
    observe,
    /** Something changed: plan again soon (coalesced with a pass already running). */
    trigger(): void {
      if (!active) return;
      if (running) again = true;
      else void runPass();
    },
    /** Starts (or resumes) acting: a pass now and on every period. */
    start(): void {
      if (active) return;
      active = true;
      const period = options.periodMs ?? 1_000;
      timer = setInterval(() => this.trigger(), period);
      timer.unref();
      this.trigger();
    },
    /**
     * Stops acting at once: no new pass, and planned actions not yet begun are dropped. Resolves
     * when the calls already made have returned (each is bounded by its timeout).
     */
    async stop(): Promise<void> {
      active = false;
      clearInterval(timer);
      for (const [runnerName, retry] of createRetries) {
        // One already handed to the backlog is dropped there.
        if (retry.timer !== undefined) {
          clearTimeout(retry.timer);
          ledger.noteCreateFailed(runnerName);
        }
      }
      createRetries.clear();
      dispatch();
      await running;
      await when(() => backlog.length === 0 && inFlight === 0);
    },
  };
}

export type Reconciler = ReturnType<typeof createReconciler>;
