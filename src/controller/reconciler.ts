import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { RunnerClasses } from '../classes/schema.ts';
import type { Ledger, LedgerChange } from '../ledger/ledger.ts';
import type { Action, CreateRunnerAction } from '../model/action.ts';
import type { EpochMillis } from '../model/job.ts';
import type { LedgerSnapshot } from '../model/ledger-snapshot.ts';
import { plan } from '../planner/plan.ts';
import { quotaSlack } from '../planner/quota-slack.ts';
import type { CheckOutcome, CreateOutcome, RunActuator, RunnerActuator } from '../ports.ts';
import { AdaptiveLimit, type LimitChange } from '../util/adaptive-limit.ts';
import { CREATION_HOLDS } from '../util/schedules.ts';

/** Bounds of the runner actions under way at once; the limit adapts between `min` and `max`. */
export interface ConcurrencyBounds {
  initial: number;
  min: number;
  max: number;
}

/** One answer (or none) of the apiserver to a write, for the adaptive limit. */
export type KubeCallSample =
  | { kind: 'answer'; latencyMs: number }
  | { kind: 'overload'; retryAfterMs?: number };

export interface ReconcilerOptions {
  ledger: Ledger;
  classes: RunnerClasses;
  /** Absent when no class launches runners (GitHub disabled). */
  actuator?: RunnerActuator;
  /** Absent when no source queues runs (Tekton disabled). */
  runs?: RunActuator;
  logger: Logger;
  now?: () => EpochMillis;
  /**
   * Actions carried out at once; the rest wait their turn. A number is a fixed limit; bounds let it
   * adapt to the apiserver's answers (see observeKubeCall).
   */
  concurrency?: number | ConcurrencyBounds;
  /** Told of every change of the concurrency limit (metrics). */
  onLimit?: (limit: number) => void;
  /**
   * Share of the event loop passes may take under a stream of changes: with passes taking d ms (on
   * average), the next waits (1 / share - 1) * d, at most 250 ms, so a large queue planned per event
   * cannot starve the rest.
   */
  planningShare?: number;
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
 * The loop: snapshot the ledger, plan, hand the actions to the classes' queues, repeat whenever
 * something changed (`trigger`) or the period passed. Passes never overlap; triggers during a pass
 * coalesce into one more pass after it, which plans only the classes something changed for (every
 * class on the period). What the actions change comes back through the watches, not from here, except
 * what the ledger must know at once (the intent, recorded before an action is queued) so that no
 * later plan repeats an action waiting or in flight.
 *
 * Actions wait in one queue per class (removals ahead of creations) and are started from the queues
 * in turn, the class with the fewest under way first, within a limit that adapts to the apiserver's
 * answers. A class below its share of the limit may start one even when the others hold the whole
 * limit, so a class whose calls hang (a slow namespace) or fail cannot hold back another's.
 */
export function createReconciler(options: ReconcilerOptions) {
  const { ledger, classes, actuator } = options;
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'reconciler' });
  const bounds: ConcurrencyBounds =
    typeof options.concurrency === 'number'
      ? { initial: options.concurrency, min: options.concurrency, max: options.concurrency }
      : (options.concurrency ?? { initial: 8, min: 1, max: 64 });
  const limiter = new AdaptiveLimit(bounds);
  const quotaBackoffMs = options.quotaBackoffMs ?? CREATION_HOLDS.quotaRefusalMs;
  const [firstHoldMs, maxHoldMs] = options.registrationBackoffMs ?? [
    CREATION_HOLDS.registrationFailure.baseDelayMs,
    CREATION_HOLDS.registrationFailure.maxDelayMs,
  ];
  const registrationFailures = new Map<string, number>();
  const [firstStartHoldMs, maxStartHoldMs] = options.startFailureBackoffMs ?? [
    CREATION_HOLDS.startFailure.baseDelayMs,
    CREATION_HOLDS.startFailure.maxDelayMs,
  ];
  /** Per class: start failures counted in a row, when the current hold began, and its length. */
  const startFailures = new Map<string, { count: number; since: EpochMillis; holdMs: number }>();
  const createRetryDelaysMs = options.createRetryDelaysMs ?? CREATION_HOLDS.createRetryDelaysMs;
  /** Creates waiting to be sent again, by runner name: how many times so far, and the timer. */
  const createRetries = new Map<string, { attempts: number; timer?: NodeJS.Timeout }>();
  /** Runner names whose create call is under way. */
  const creating = new Set<string>();
  const planningShare = options.planningShare ?? 0.1;
  let running: Promise<void> | null = null;
  let again = false;
  /** Classes to plan on the next pass; `all` after the period or a change of unknown reach. */
  let dirty: Set<string> | 'all' = 'all';
  let passCostMs = 0;
  let passEndedAt = 0;
  const lanes = new Map<string, Lane>();
  /** Where the turn-taking among classes goes on from. */
  let turn = 0;
  let inFlight = 0;
  let queued = 0;
  let pauseTimer: NodeJS.Timeout | undefined;
  const idleWaiters: (() => void)[] = [];
  // Only while active does the loop act: a replica that does not lead keeps its ledger, not its hands.
  let active = false;
  let timer: NodeJS.Timeout | undefined;

  let waitingForLedger = false;

  function laneOf(className: string): Lane {
    let lane = lanes.get(className);
    if (!lane) {
      lane = { className, removals: [], additions: [], inFlight: 0 };
      lanes.set(className, lane);
    }
    return lane;
  }

  /** The classes to plan: those marked, with every class sharing a namespace quota with one of them. */
  function planningSet(): { only?: ReadonlySet<string>; snapshot: LedgerSnapshot } {
    const at = now();
    if (dirty === 'all') return { snapshot: ledger.snapshot(classes, at) };
    const only = new Set(dirty);
    let snapshot = ledger.snapshot(classes, at, only);
    // Classes in one namespace share its quota by turns: they are planned together.
    const quotaNamespaces = new Set(
      Object.entries(snapshot.quotas)
        .filter(([, quota]) => Object.keys(quota.remaining).length > 0 || quota.backoffUntil !== undefined)
        .map(([namespace]) => namespace),
    );
    const siblings = Object.entries(classes)
      .filter(([name, c]) => !only.has(name) && quotaNamespaces.has(c.namespace))
      .map(([name]) => name);
    if (siblings.length > 0) {
      for (const name of siblings) only.add(name);
      snapshot = ledger.snapshot(classes, at, only);
    }
    return { only, snapshot };
  }

  async function pass(): Promise<void> {
    const ready = options.ready?.() ?? true;
    if (ready !== !waitingForLedger) {
      waitingForLedger = !ready;
      if (ready) log.info('watches open again: planning resumes');
      else log.warn('a watch is reconnecting: planning waits for an up-to-date picture');
    }
    if (!ready) return;
    const started = performance.now();
    const { only, snapshot } = planningSet();
    dirty = new Set();
    const planned = only
      ? Object.fromEntries([...only].flatMap((n) => (classes[n] ? [[n, classes[n]]] : [])))
      : classes;
    const actions = plan(snapshot, planned, now());
    const creates = actions.filter((a): a is CreateRunnerAction => a.kind === 'create-runner');
    const slack = quotaSlack(snapshot, creates, classes, now());
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
    for (const action of actions) {
      enqueue(action, action.kind === 'create-runner' && slack.has(action.namespace));
    }
    dispatch();
    options.onPass?.({ actions, durationMs: performance.now() - started });
  }

  function enqueue(action: Action, overlapRegistration = false): void {
    const lane = laneOf(action.className);
    const removal = action.kind === 'delete-runner' || action.kind === 'cancel-run';
    (removal ? lane.removals : lane.additions).push({ action, overlapRegistration });
    queued += 1;
  }

  /**
   * Starts queued actions while the limit allows: the class with the fewest under way first, taking
   * turns among equals. A class below its share (the limit over the classes with work) may start one
   * beyond the limit, so classes whose calls hang cannot take every slot from the others.
   */
  function dispatch(): void {
    const at = now();
    if (active && queued > 0 && at < limiter.pausedUntil) {
      // The apiserver asked for a pause (Retry-After): nothing new until it ends.
      if (!pauseTimer) {
        pauseTimer = setTimeout(() => {
          pauseTimer = undefined;
          dispatch();
        }, limiter.pausedUntil - at);
        pauseTimer.unref();
      }
      return;
    }
    while (queued > 0) {
      const lane = nextLane();
      if (!lane) break;
      const item = (lane.removals.shift() ?? lane.additions.shift()) as Queued;
      queued -= 1;
      lane.inFlight += 1;
      inFlight += 1;
      void (active ? execute(item.action, item.overlapRegistration) : abandon(item.action))
        .catch((err: unknown) => log.error({ err, action: item.action.kind }, 'action failed'))
        .finally(() => {
          lane.inFlight -= 1;
          inFlight -= 1;
          dispatch();
        });
    }
    if (inFlight === 0 && queued === 0) for (const resolve of idleWaiters.splice(0)) resolve();
  }

  function nextLane(): Lane | undefined {
    const limit = active ? limiter.limit : Number.POSITIVE_INFINITY;
    const list = [...lanes.values()];
    const busy = list.filter((lane) => lane.inFlight > 0 || lane.removals.length + lane.additions.length > 0);
    const share = Math.max(1, Math.floor(limit / Math.max(1, busy.length)));
    let chosen: Lane | undefined;
    let chosenAt = 0;
    for (let i = 0; i < list.length; i++) {
      const index = (turn + i) % list.length;
      const lane = list[index] as Lane;
      if (lane.removals.length + lane.additions.length === 0) continue;
      if (inFlight >= limit && lane.inFlight >= share) continue;
      if (!chosen || lane.inFlight < chosen.inFlight) {
        chosen = lane;
        chosenAt = index;
      }
    }
    if (chosen) turn = (chosenAt + 1) % list.length;
    return chosen;
  }

  /** Queued creates that will not be sent now: forgotten by the ledger, so a later pass plans them anew. */
  function dropQueuedCreates(keep: (action: CreateRunnerAction) => boolean): void {
    for (const lane of lanes.values()) {
      lane.additions = lane.additions.filter(({ action }) => {
        // A retry's pod may exist: it stays counted until its create finds out.
        if (action.kind !== 'create-runner' || keep(action) || createRetries.has(action.runnerName))
          return true;
        queued -= 1;
        ledger.noteCreateFailed(action.runnerName);
        return false;
      });
    }
  }

  function whenIdle(): Promise<void> {
    if (inFlight === 0 && queued === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  /** Feeds the limit one answer of the apiserver to a write, telling it whether work is waiting. */
  function observeKubeCall(sample: KubeCallSample): void {
    const limited = queued > 0 || inFlight >= limiter.limit;
    const change: LimitChange = limiter.sample(
      sample.kind === 'answer' ? { ...sample, limited } : sample,
      now(),
    );
    if (change === 'unchanged') return;
    options.onLimit?.(limiter.limit);
    if (change === 'grew') dispatch();
  }

  /** Stopped (leadership lost, shutdown): planned actions not yet begun are not carried out. */
  function abandon(action: Action): Promise<void> {
    if (action.kind === 'create-runner') ledger.noteCreateFailed(action.runnerName);
    else if (action.kind === 'delete-runner') ledger.noteDeleteAbandoned(action.runnerName);
    else if (action.kind === 'check-runner') ledger.noteCheckResult(action.runnerName, 'failed');
    else ledger.noteRunActionFailed(action.runKey);
    return Promise.resolve();
  }

  async function execute(action: Action, overlapRegistration: boolean): Promise<void> {
    if (action.kind === 'create-runner') {
      const runnerClass = classes[action.className];
      if (!runnerClass) return;
      // Its removal was planned while it waited in the queue (and found no pod): nothing to make.
      if (!ledger.isCreateWanted(action.runnerName)) {
        createRetries.delete(action.runnerName);
        ledger.noteRequestedRunnerRemoved(action.runnerName);
        return;
      }
      creating.add(action.runnerName);
      const earlierAttempts = createRetries.get(action.runnerName)?.attempts ?? 0;
      const outcome: CreateOutcome = await (actuator
        ? actuator.create(action, runnerClass, {
            overlapRegistration: overlapRegistration && earlierAttempts === 0,
          })
        : Promise.resolve({ kind: 'failed', error: new Error('no source registers runners') } as const)
      ).finally(() => creating.delete(action.runnerName));
      createRetries.delete(action.runnerName);
      if (outcome.kind === 'quota-exceeded') {
        ledger.noteCreateFailed(action.runnerName);
        ledger.noteQuotaExceeded(action.namespace, now() + (outcome.retryAfterMs ?? quotaBackoffMs));
        // The others queued for that namespace would be refused too: planned again after the wait.
        dropQueuedCreates((queuedCreate) => queuedCreate.namespace !== action.namespace);
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
        dropQueuedCreates((queuedCreate) => queuedCreate.className !== action.className);
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
    dropQueuedCreates((queuedCreate) => queuedCreate.className !== runner.className);
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
      enqueue(action);
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
          // Under a stream of changes, passes take at most their share of the event loop: the
          // changes meanwhile are planned together, and the calls and events in between get their turn.
          const gapMs = Math.min(MAX_PASS_GAP_MS, passCostMs * (1 / planningShare - 1));
          const waitMs = passEndedAt + gapMs - performance.now();
          if (waitMs >= 1) await sleep(waitMs);
          else await setImmediate();
          if (!active) break;
          const started = performance.now();
          await pass().catch((err: unknown) => log.error({ err }, 'reconcile pass failed'));
          passEndedAt = performance.now();
          // Smoothed, so that one slow pass (a cold start, a collection) does not hold the next back.
          passCostMs += 0.25 * (passEndedAt - started - passCostMs);
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
    /** One answer (or none) of the apiserver to a write Gantry sent: the concurrency limit adapts. */
    observeKubeCall,
    /** The number of actions that may be under way now. */
    limit: () => limiter.limit,
    /**
     * Something changed: plan again soon (coalesced with a pass already running). `classNames`: the
     * classes it concerns; every class when absent.
     */
    trigger(classNames?: Iterable<string>): void {
      if (!active) return;
      if (classNames === undefined) dirty = 'all';
      else if (dirty !== 'all') for (const name of classNames) dirty.add(name);
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
      clearTimeout(pauseTimer);
      pauseTimer = undefined;
      for (const [runnerName, retry] of createRetries) {
        // One already queued is dropped there.
        if (retry.timer !== undefined) {
          clearTimeout(retry.timer);
          ledger.noteCreateFailed(runnerName);
        }
      }
      createRetries.clear();
      dispatch();
      await running;
      await whenIdle();
    },
  };
}

/** The longest wait between passes, however long they take: changes are never planned later than this. */
const MAX_PASS_GAP_MS = 250;

interface Queued {
  action: Action;
  /** See CreateOptions.overlapRegistration. */
  overlapRegistration: boolean;
}

/** One class's actions waiting to start, and how many of its actions are under way. */
interface Lane {
  className: string;
  /** Deletions and cancellations: they free room, so they go first. */
  removals: Queued[];
  /** Creations and admissions. */
  additions: Queued[];
  inFlight: number;
}

export type Reconciler = ReturnType<typeof createReconciler>;
