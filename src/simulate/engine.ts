import { buildClassifier, buildRunnerTrustCheck } from '../classes/matching.ts';
import { fitsQuota, runnerQuotaUsage } from '../classes/quota-usage.ts';
import type { RunnerClass, RunnerClasses } from '../classes/schema.ts';
import { isSandboxTier } from '../classes/schema.ts';
import type { Config } from '../config/schema.ts';
import { quotaLimits } from '../launcher/quota-headroom.ts';
import { Ledger, type LedgerChange } from '../ledger/ledger.ts';
import { meterLedgerChange } from '../metrics/cost-from-ledger.ts';
import { CostMeter } from '../metrics/cost-meter.ts';
import type { CreateRunnerAction, DeleteRunnerAction } from '../model/action.ts';
import type { EpochMillis, JobIdentity } from '../model/job.ts';
import type { LedgerSnapshot } from '../model/ledger-snapshot.ts';
import type { RunnerObservation } from '../model/runner-observation.ts';
import { plan } from '../planner/plan.ts';
import { runnerHealthRules } from '../planner/runner-health.ts';
import type { Trace, TraceJob } from '../trace/format.ts';
import { type Random, sample, seededRandom } from '../util/distribution.ts';
import { targetAt, withWarmPoolTargets } from '../warm-pool/schedule.ts';
import { EventQueue } from './event-queue.ts';
import { type SimulationModel, startupOf } from './model.ts';
import {
  type ClassResult,
  percentiles,
  type SeriesRecorder,
  type SimulationResult,
  seriesRecorder,
} from './result.ts';
import { classifyTraceJobs } from './trace-jobs.ts';

/**
 * Replays a trace through Gantry's own classifier, ledger, planner and cost meter under a virtual
 * clock. Around them the simulator plays what Gantry talks to:
 *
 * - GitHub: each job is queued at its recorded creation time and handed to ANY idle runner whose
 *   labels cover the job's and whose runner group admits its repository (and, repository runners,
 *   only jobs of their repository), not necessarily the runner Gantry planned for it; a runner that
 *   comes online takes the oldest queued job it can. Changes reach Gantry as webhooks after a delay.
 * - Kubernetes: a runner pod starts (model.startup), its runner comes online (model.registration),
 *   runs one job for its recorded duration (capped at the class's activeDeadlineSeconds), exits, and
 *   is deleted by Gantry; namespace quotas come from the model.
 * - The reconcile loop: a pass whenever something the plan depends on changed, and when time alone
 *   changes a decision (an idle timeout, the creation rate, a start timeout, a warm-pool hour).
 */

export interface WarmPoolPlan {
  /** Target by hour of week (see warm-pool/schedule.ts). */
  targets: readonly number[];
  leadMs: number;
}

export interface SimulationInput {
  config: Config;
  trace: Trace;
  model: SimulationModel;
  /** Per class with a warm-pool objective, the pool by hour of week; such a class without one keeps none. */
  warmPools?: ReadonlyMap<string, WarmPoolPlan>;
  /** Width of the time series' buckets; default: the span in about 600 buckets, at least a minute. */
  bucketMs?: number;
}

type GithubJobState = 'pending' | 'queued' | 'assigned' | 'running' | 'done';

interface SimJob {
  trace: TraceJob;
  identity: JobIdentity;
  labels: readonly string[];
  isPublic: boolean;
  /** Gantry's class for it, or undefined when it has none. */
  className: string | undefined;
  /** As GitHub reports it: whole seconds. */
  createdAt: EpochMillis;
  startedAt?: EpochMillis;
  /** When it ended on GitHub (ran, or left the queue), whole seconds. */
  completedAt?: EpochMillis;
  state: GithubJobState;
  runner?: SimRunner;
  /** Webhooks of one job reach Gantry in order. */
  lastNoticeAt: EpochMillis;
  cancelled: boolean;
}

type RunnerOnGithub = 'offline' | 'idle' | 'reserved' | 'busy' | 'done' | 'removed';

interface SimRunner {
  name: string;
  className: string;
  runnerClass: RunnerClass;
  namespace: string;
  repo?: string;
  plannedFor?: string;
  labels: ReadonlySet<string>;
  group: string;
  createdAt?: EpochMillis;
  runningAt?: EpochMillis;
  endedAt?: EpochMillis;
  github: RunnerOnGithub;
  idleSince: EpochMillis;
  job?: SimJob;
  deleting: boolean;
  gone: boolean;
}

type SimEvent =
  | { kind: 'arrive'; job: SimJob }
  | { kind: 'notice'; job: SimJob; what: 'queued' | 'started' | 'completed' }
  | { kind: 'cancel'; job: SimJob }
  | { kind: 'start'; job: SimJob; runner: SimRunner }
  | { kind: 'complete'; job: SimJob }
  | { kind: 'pod-created'; runner: SimRunner }
  | { kind: 'pod-running'; runner: SimRunner }
  | { kind: 'online'; runner: SimRunner }
  | { kind: 'pod-exit'; runner: SimRunner }
  | { kind: 'delete'; runner: SimRunner; reason: DeleteRunnerAction['reason'] }
  | { kind: 'pod-gone'; runner: SimRunner }
  /** A pass due to time alone; with `runner`, only if that runner is still idle by then. */
  | { kind: 'pass'; runner?: SimRunner };

/**
 * How long the name of a runner that went is not given to a new one. Live, the ledger keeps it an hour
 * (GitHub may hold a registration that long); in the replay nothing refers to a runner minutes after
 * its pod went, and the planner looks through every retired name for each warm runner it names.
 */
const RETIRED_NAME_MS = 15 * 60_000;

/** How long before the trace's window the replay begins. */
const WARM_UP_MS = 15 * 60_000;

/** Cost is accounted this far behind the clock, so a job's start noticed late still splits busy from idle. */
const METER_SETTLE_MS = 30_000;
/** Well within the time before a runner's name may be given again. */
const METER_SETTLE_EVERY_MS = 5 * 60_000;

const ms = (seconds: number) => Math.max(0, Math.round(seconds * 1000));
const wholeSecond = (at: EpochMillis) => Math.floor(at / 1000) * 1000;

export function simulate(input: SimulationInput): SimulationResult {
  const wallStart = performance.now();
  const { config, trace, model } = input;
  const baseClasses = config.classes;
  const random: Random = seededRandom(model.seed);
  const draw = (distribution: Parameters<typeof sample>[0]) => ms(sample(distribution, random));

  // The trace's window begins at its header's `from` (or its first job). The replay begins earlier, so
  // that Gantry's warm pools exist when the first jobs come, as they would in a Gantry already running;
  // what happens before the window is not reported.
  const headerFrom = trace.header?.from !== undefined ? Date.parse(trace.header.from) : undefined;
  const start = Math.min(headerFrom ?? Number.POSITIVE_INFINITY, trace.jobs[0]?.created ?? 0);
  const replayStart = start - WARM_UP_MS;
  let clock = replayStart;

  // The planner sees warm-pool classes with minIdle at their current target.
  const warmPools = input.warmPools ?? new Map<string, WarmPoolPlan>();
  const classes: RunnerClasses = withWarmPoolTargets(baseClasses, (name) => {
    const pool = warmPools.get(name);
    return pool ? targetAt(pool.targets, pool.leadMs, clock) : 0;
  });

  const ledger = new Ledger({
    classify: buildClassifier(baseClasses, config.github.trust),
    checkRunnerTrust: buildRunnerTrustCheck(baseClasses, config.github.trust),
    health: runnerHealthRules({
      startTimeoutMs: config.controller.startTimeoutSeconds * 1000,
      capacityTimeoutMs: config.controller.capacityTimeoutSeconds * 1000,
      deadlineGraceMs: config.controller.deadlineGraceSeconds * 1000,
    }),
  });
  for (const [namespace, hard] of Object.entries(model.quotas)) {
    ledger.setQuotaLimits(
      namespace,
      quotaLimits([
        {
          status: {
            hard: Object.fromEntries(Object.entries(hard).map(([k, v]) => [k, String(v)])),
            used: {},
          },
        },
      ]),
    );
  }

  const lastArrival = trace.jobs.at(-1)?.created ?? start;
  const span = Math.max(60_000, lastArrival - start);
  const bucketMs = input.bucketMs ?? Math.max(60_000, Math.ceil(span / 600 / 60_000) * 60_000);
  const classNames = Object.keys(baseClasses).sort();
  const series: SeriesRecorder = seriesRecorder(start, bucketMs, classNames);

  const stats = new Map<string, ClassStats>(classNames.map((name) => [name, newClassStats()]));
  const statsOf = (name: string) => stats.get(name) as ClassStats;
  const unclassified = new Map<string, number>();
  let notForGantry = 0;

  const meter = new CostMeter({
    startedAt: start,
    settleMs: METER_SETTLE_MS,
    onCost: (key, use, dollars) => {
      const s = stats.get(key.className);
      if (s) s.cost[use] += dollars;
    },
  });

  const queue = new EventQueue<SimEvent>();
  const runners = new Map<string, SimRunner>();
  /** GitHub's queue, oldest first; entries no longer queued are skipped and swept now and then. */
  let queued: SimJob[] = [];
  let queuedLive = 0;
  const idle: SimRunner[] = [];
  let passDue = false;
  let passes = 0;
  let events = 0;
  const wakes = new Set<number>();
  /** Runner name → when its pod went, oldest first. */
  const retired = new Map<string, EpochMillis>();

  // ── what Gantry observes ────────────────────────────────────────────────────────────────────────

  const observe = (changes: LedgerChange[]) => {
    for (const change of changes) {
      // Every runner of a replayed trace is a GitHub runner.
      meterLedgerChange(meter, change, baseClasses, () => 'github');
      switch (change.kind) {
        case 'job-started': {
          const { job } = change;
          if (job.classification.matched) {
            const s = stats.get(job.classification.className);
            s?.queueMs.push(change.queuedForMs);
            if (job.startedAt !== undefined)
              series.queueTime(job.classification.className, job.startedAt, change.queuedForMs);
          }
          break;
        }
        case 'job-unclassified':
          unclassified.set(change.reason, (unclassified.get(change.reason) ?? 0) + 1);
          break;
        case 'trust-violation':
          statsOf(change.className).trustViolations++;
          break;
        default:
          break;
      }
    }
  };

  // The apiserver reports a pod's times in whole seconds, and Gantry's ledger and cost meter see them so.
  const observation = (runner: SimRunner, phase: RunnerObservation['phase']): RunnerObservation => ({
    name: runner.name,
    namespace: runner.namespace,
    className: runner.className,
    ...(runner.repo !== undefined ? { repo: runner.repo } : {}),
    ...(runner.plannedFor !== undefined ? { plannedFor: runner.plannedFor } : {}),
    phase,
    createdAt: wholeSecond(runner.createdAt ?? clock),
    ...(runner.createdAt !== undefined ? { scheduledAt: wholeSecond(runner.createdAt) } : {}),
    ...(runner.runningAt !== undefined ? { runningSince: wholeSecond(runner.runningAt) } : {}),
    ...(runner.endedAt !== undefined ? { endedAt: wholeSecond(runner.endedAt) } : {}),
    deleting: runner.deleting,
  });

  const notice = (job: SimJob, what: 'queued' | 'started' | 'completed', at: EpochMillis) => {
    const when = Math.max(at + draw(model.webhook), job.lastNoticeAt + 1);
    job.lastNoticeAt = when;
    queue.schedule(when, { kind: 'notice', job, what });
  };

  // ── GitHub's side ───────────────────────────────────────────────────────────────────────────────

  const groupAdmits = groupAdmission(baseClasses, model, config.github.trust.publicRepositories);

  const canTake = (runner: SimRunner, job: SimJob): boolean => {
    if (runner.repo !== undefined) {
      if (runner.repo !== job.trace.repo) return false;
    } else if (!groupAdmits(runner.group, job)) {
      return false;
    }
    for (const label of job.labels) if (!runner.labels.has(label)) return false;
    return true;
  };

  /** GitHub hands `job` to `runner`; the job starts after the hand-off. */
  const assign = (job: SimJob, runner: SimRunner, at: EpochMillis) => {
    job.state = 'assigned';
    job.runner = runner;
    runner.github = 'reserved';
    runner.job = job;
    if (job.className) series.add(job.className, 'queued', -1, at);
    queuedLive--;
    series.add(runner.className, 'idle', -1, at);
    series.add(runner.className, 'busy', 1, at);
    queue.schedule(at + draw(model.assignment), { kind: 'start', job, runner });
  };

  const takeIdleRunnerFor = (job: SimJob, at: EpochMillis) => {
    const fitting: number[] = [];
    for (let i = 0; i < idle.length; i++) if (canTake(idle[i] as SimRunner, job)) fitting.push(i);
    if (fitting.length === 0) return;
    const index = fitting[Math.floor(random() * fitting.length)] as number;
    const [runner] = idle.splice(index, 1);
    if (runner) assign(job, runner, at);
  };

  const takeQueuedJobFor = (runner: SimRunner, at: EpochMillis) => {
    for (const job of queued) {
      if (job.state === 'queued' && canTake(runner, job)) {
        assign(job, runner, at);
        return;
      }
    }
    runner.github = 'idle';
    runner.idleSince = at;
    idle.push(runner);
  };

  const dropFromIdle = (runner: SimRunner) => {
    const index = idle.indexOf(runner);
    if (index >= 0) idle.splice(index, 1);
  };

  const sweepQueue = () => {
    if (queued.length > 64 && queuedLive < queued.length / 2)
      queued = queued.filter((j) => j.state === 'queued');
  };

  // ── the reconcile pass ──────────────────────────────────────────────────────────────────────────

  const wakeAt = (at: EpochMillis) => {
    if (wakes.has(at)) return;
    wakes.add(at);
    queue.schedule(at, { kind: 'pass' });
  };

  const pass = (at: EpochMillis) => {
    passes++;
    // Names of runners gone lately, on the virtual clock (the ledger's own list ages in real time,
    // which a replay outruns).
    for (const [name, retiredAt] of retired) {
      if (at - retiredAt < RETIRED_NAME_MS) break;
      retired.delete(name);
    }
    const snapshot: LedgerSnapshot = { ...ledger.snapshot(classes, at), retiredNames: retired };
    noteWaits(snapshot, at);
    const actions = plan(snapshot, classes, at);
    const created = new Map<string, number>();
    for (const action of actions) {
      if (action.kind === 'create-runner') {
        const runnerClass = classes[action.className];
        if (!runnerClass) continue;
        ledger.noteCreateRequested(action, runnerClass.maxCreatePerSecond, at);
        created.set(action.className, (created.get(action.className) ?? 0) + 1);
        launch(action, runnerClass, at);
      } else if (action.kind === 'delete-runner') {
        ledger.noteDeleteRequested(action.runnerName);
        const runner = runners.get(action.runnerName);
        if (runner)
          queue.schedule(at + draw(model.apiLatency), {
            kind: 'delete',
            runner,
            reason: action.kind === 'delete-runner' ? action.reason : 'idle-timeout',
          });
      }
    }
    for (const name of classNames) {
      const runnerClass = classes[name] as RunnerClass;
      const snap = snapshot.classes[name];
      if (!snap || !runnerClass.match.github) continue;
      let spare = 0;
      let idleSince = Number.POSITIVE_INFINITY;
      for (const r of snap.runners) {
        if (r.state === 'starting') spare++;
        else if (r.state === 'idle') {
          spare++;
          idleSince = Math.min(idleSince, r.idleSince ?? r.createdAt);
        }
      }
      // Demand the creation rate held back is planned again once the bucket has a token.
      const warm = runnerClass.scope === 'org' ? runnerClass.minIdle : 0;
      const wanted = snap.queued.length + warm - spare - (created.get(name) ?? 0);
      const occupied = snap.runners.length + (created.get(name) ?? 0);
      if (wanted > 0 && occupied < runnerClass.maxRunners && !quotaBlocked(snapshot, runnerClass, at)) {
        wakeAt(at + Math.max(1, Math.ceil(1000 / runnerClass.maxCreatePerSecond)));
      }
      // A runner idle while a job it could take waits is stuck after the start timeout (see the ledger).
      if (idleSince !== Number.POSITIVE_INFINITY && snap.queued.length > 0) {
        let queuedSince = Number.POSITIVE_INFINITY;
        for (const j of snap.queued) queuedSince = Math.min(queuedSince, j.queuedAt);
        const due = Math.max(idleSince, queuedSince) + config.controller.startTimeoutSeconds * 1000 + 1;
        if (due > at) wakeAt(due);
      }
    }
  };

  const quotaBlocked = (snapshot: LedgerSnapshot, runnerClass: RunnerClass, at: EpochMillis) => {
    const headroom = snapshot.quotas[runnerClass.namespace];
    if (!headroom) return false;
    if (headroom.backoffUntil !== undefined && at < headroom.backoffUntil) return true;
    return !fitsQuota(headroom.remaining, runnerQuotaUsage(runnerClass));
  };

  /** Jobs that wait with no runner coming for them, because of maxRunners or the namespace quota. */
  const noteWaits = (snapshot: LedgerSnapshot, at: EpochMillis) => {
    for (const name of classNames) {
      const snap = snapshot.classes[name];
      if (!snap || snap.queued.length === 0) continue;
      let spare = 0;
      for (const r of snap.runners) if (r.state === 'idle' || r.state === 'starting') spare++;
      if (snap.queued.length <= spare) continue;
      const runnerClass = classes[name] as RunnerClass;
      const full = snap.runners.length + snap.admittedRuns.length >= runnerClass.maxRunners;
      const reason = full ? 'maxRunners' : quotaBlocked(snapshot, runnerClass, at) ? 'quota' : undefined;
      if (!reason) continue;
      const waiting = [...snap.queued].sort((a, b) => a.queuedAt - b.queuedAt).slice(spare);
      const into = reason === 'maxRunners' ? statsOf(name).waitedOnMax : statsOf(name).waitedOnQuota;
      for (const job of waiting) into.add(job.key);
    }
  };

  const launch = (action: CreateRunnerAction, runnerClass: RunnerClass, at: EpochMillis) => {
    const runner: SimRunner = {
      name: action.runnerName,
      className: action.className,
      runnerClass,
      namespace: action.namespace,
      ...(action.repo !== undefined ? { repo: action.repo } : {}),
      ...(action.jobKey !== undefined ? { plannedFor: action.jobKey } : {}),
      labels: new Set((runnerClass.match.github?.labels ?? []).map((l) => l.toLowerCase())),
      group: runnerClass.runnerGroup.toLowerCase(),
      github: 'offline',
      idleSince: at,
      deleting: false,
      gone: false,
    };
    runners.set(runner.name, runner);
    const s = statsOf(action.className);
    s.created++;
    s.live++;
    s.peak = Math.max(s.peak, s.live);
    series.add(action.className, 'live', 1, at);
    queue.schedule(at + draw(model.apiLatency), { kind: 'pod-created', runner });
  };

  const removeRunner = (runner: SimRunner, at: EpochMillis) => {
    if (runner.github === 'idle') {
      dropFromIdle(runner);
      series.add(runner.className, 'idle', -1, at);
    }
    if (runner.github !== 'done') runner.github = 'removed';
    runner.deleting = true;
    if (runner.createdAt === undefined) {
      // Removed before its pod was stored: nothing for the watch to report.
      ledger.noteRequestedRunnerRemoved(runner.name);
      gone(runner, at);
      return;
    }
    if (runner.runningAt !== undefined) runner.endedAt ??= at;
    observe(
      ledger.observeRunner(observation(runner, runner.runningAt !== undefined ? 'Running' : 'Pending')),
    );
    queue.schedule(at + draw(model.deletion), { kind: 'pod-gone', runner });
  };

  const gone = (runner: SimRunner, at: EpochMillis) => {
    if (runner.gone) return;
    runner.gone = true;
    runners.delete(runner.name);
    retired.delete(runner.name);
    retired.set(runner.name, at);
    statsOf(runner.className).live--;
    series.add(runner.className, 'live', -1, at);
  };

  // ── events ──────────────────────────────────────────────────────────────────────────────────────

  const handle = (event: SimEvent, at: EpochMillis) => {
    switch (event.kind) {
      case 'arrive': {
        const { job } = event;
        job.state = 'queued';
        queued.push(job);
        queuedLive++;
        if (job.className) series.add(job.className, 'queued', 1, at);
        takeIdleRunnerFor(job, at);
        notice(job, 'queued', at);
        if (job.trace.cancelledAt !== undefined)
          queue.schedule(job.trace.cancelledAt, { kind: 'cancel', job });
        return;
      }
      case 'notice': {
        const { job } = event;
        if (event.what === 'queued') {
          observe(
            ledger.applyJobEvent({
              kind: 'queued',
              job: job.identity,
              via: 'webhook',
              createdAt: job.createdAt,
            }),
          );
          passDue = true;
        } else if (event.what === 'started') {
          observe(
            ledger.applyJobEvent({
              kind: 'started',
              job: job.identity,
              via: 'webhook',
              createdAt: job.createdAt,
              startedAt: job.startedAt ?? at,
              runnerName: job.runner?.name ?? null,
            }),
          );
          passDue = true;
        } else {
          observe(
            ledger.applyJobEvent({
              kind: 'completed',
              job: job.identity,
              via: 'webhook',
              createdAt: job.createdAt,
              startedAt: job.startedAt ?? null,
              completedAt: job.completedAt ?? wholeSecond(at),
              conclusion: job.cancelled ? 'cancelled' : 'success',
              runnerName: job.runner?.name ?? null,
            }),
          );
          // A job that left the queue unserved changes demand.
          if (job.startedAt === undefined) passDue = true;
        }
        return;
      }
      case 'cancel': {
        const { job } = event;
        job.cancelled = true;
        if (job.state === 'queued') {
          job.state = 'done';
          job.completedAt = Math.max(job.createdAt, wholeSecond(at));
          queuedLive--;
          if (job.className) series.add(job.className, 'queued', -1, at);
          sweepQueue();
          notice(job, 'completed', at);
        } else if (job.state === 'running') {
          queue.schedule(at, { kind: 'complete', job });
        }
        return;
      }
      case 'start': {
        const { job, runner } = event;
        // The hand-off was undone (the runner was removed and the job queued again for another).
        if (job.runner !== runner || job.state !== 'assigned') return;
        if (job.cancelled || runner.github !== 'reserved') {
          // Cancelled during the hand-off: the runner waits for another job.
          if (runner.github === 'reserved') {
            series.add(runner.className, 'busy', -1, at);
            series.add(runner.className, 'idle', 1, at);
            takeQueuedJobFor(runner, at);
          }
          job.state = 'done';
          job.completedAt = Math.max(job.createdAt, wholeSecond(at));
          notice(job, 'completed', at);
          return;
        }
        job.state = 'running';
        runner.github = 'busy';
        job.startedAt = Math.max(job.createdAt, wholeSecond(at));
        sweepQueue();
        if (job.className && job.className !== runner.className) {
          statsOf(job.className).servedByOther++;
          statsOf(runner.className).tookOther++;
        }
        notice(job, 'started', at);
        const deadline = (runner.runnerClass.activeDeadlineSeconds ?? Number.POSITIVE_INFINITY) * 1000;
        const runsFor = Math.min(
          job.trace.durationMs ?? 0,
          Math.max(0, deadline - (at - (runner.runningAt ?? at))),
        );
        queue.schedule(at + runsFor, { kind: 'complete', job });
        return;
      }
      case 'complete': {
        const { job } = event;
        if (job.state !== 'running') return;
        job.state = 'done';
        job.completedAt = Math.max(job.startedAt ?? job.createdAt, wholeSecond(at));
        const runner = job.runner as SimRunner;
        if (runner.github === 'busy') runner.github = 'done';
        series.add(runner.className, 'busy', -1, at);
        notice(job, 'completed', at);
        if (!runner.deleting) queue.schedule(at + draw(model.exit), { kind: 'pod-exit', runner });
        return;
      }
      case 'pod-created': {
        const { runner } = event;
        if (runner.deleting) return;
        runner.createdAt = at;
        observe(ledger.observeRunner(observation(runner, 'Pending')));
        const startupMs = draw(startupOf(model, runner.className));
        queue.schedule(at + startupMs, { kind: 'pod-running', runner });
        // A start slower than the start timeout makes the runner stuck: the plan must look then.
        const timeoutMs = config.controller.startTimeoutSeconds * 1000;
        if (startupMs > timeoutMs) wakeAt(at + timeoutMs + 1);
        return;
      }
      case 'pod-running': {
        const { runner } = event;
        if (runner.deleting || runner.gone) return;
        runner.runningAt = at;
        observe(ledger.observeRunner(observation(runner, 'Running')));
        queue.schedule(at + draw(model.registration), { kind: 'online', runner });
        // Idle from now as far as Gantry knows: its idle timeout may remove it.
        queue.schedule(at + runner.runnerClass.idleTimeout * 1000 + 1, { kind: 'pass', runner });
        return;
      }
      case 'online': {
        const { runner } = event;
        if (runner.deleting || runner.github !== 'offline') return;
        series.add(runner.className, 'idle', 1, at);
        takeQueuedJobFor(runner, at);
        return;
      }
      case 'pod-exit': {
        const { runner } = event;
        if (runner.deleting || runner.gone) return;
        runner.endedAt = at;
        observe(ledger.observeRunner(observation(runner, 'Succeeded')));
        passDue = true;
        return;
      }
      case 'delete': {
        const { runner, reason } = event;
        if (runner.gone || runner.deleting) return;
        const atWork = runner.github === 'reserved' || runner.github === 'busy';
        if (
          atWork &&
          (reason === 'idle-timeout' || reason === 'placement-unsafe' || reason === 'class-removed')
        ) {
          // GitHub refuses to remove a runner that just took a job: Gantry keeps it (see the registrar).
          ledger.noteKeptBusy(runner.name);
          return;
        }
        if (atWork && runner.job) {
          // Stopped with its job (a trust violation, a stuck runner): GitHub fails the job now.
          const job = runner.job;
          if (job.state === 'running') queue.schedule(at, { kind: 'complete', job });
          else if (job.state === 'assigned') {
            // Handed over but not started: GitHub queues it again for another runner.
            job.state = 'queued';
            delete job.runner;
            queuedLive++;
            if (job.className) series.add(job.className, 'queued', 1, at);
            series.add(runner.className, 'busy', -1, at);
            runner.github = 'removed';
            removeRunner(runner, at);
            takeIdleRunnerFor(job, at);
            return;
          }
        }
        removeRunner(runner, at);
        return;
      }
      case 'pod-gone': {
        const { runner } = event;
        observe(ledger.forgetRunner(runner.name, at));
        gone(runner, at);
        // Room for a runner matters only to jobs that wait.
        if (queuedLive > 0) passDue = true;
        return;
      }
      case 'pass':
        if (event.runner) {
          // Its idle timeout: moot once it took a job or went.
          if (event.runner.github === 'idle' || event.runner.github === 'offline') passDue = true;
          return;
        }
        wakes.delete(at);
        passDue = true;
        return;
    }
  };

  // ── the trace ───────────────────────────────────────────────────────────────────────────────────

  const sorted = classifyTraceJobs(config, trace.jobs);
  notForGantry = sorted.notForGantry;
  for (const { trace: traceJob, identity, className } of sorted.jobs) {
    const job: SimJob = {
      trace: traceJob,
      identity,
      labels: traceJob.labels.map((l) => l.toLowerCase()),
      isPublic: traceJob.visibility === 'public',
      className,
      createdAt: wholeSecond(traceJob.created),
      state: 'pending',
      lastNoticeAt: Number.NEGATIVE_INFINITY,
      cancelled: false,
    };
    if (className) {
      const s = statsOf(className);
      s.jobs++;
      if (traceJob.started !== undefined) s.recordedQueueMs.push(traceJob.started - traceJob.created);
    }
    queue.schedule(traceJob.created, { kind: 'arrive', job });
  }
  // Warm-pool targets change by the hour: the plan looks at each change (and a lead before it).
  if (warmPools.size > 0) {
    const lead = Math.max(...[...warmPools.values()].map((p) => p.leadMs));
    for (
      let hour = Math.floor(replayStart / 3_600_000) * 3_600_000;
      hour <= lastArrival + 3_600_000;
      hour += 3_600_000
    ) {
      if (hour >= replayStart) wakeAt(hour);
      if (hour - lead >= replayStart) wakeAt(hour - lead);
    }
  }

  // ── the loop ────────────────────────────────────────────────────────────────────────────────────

  wakeAt(replayStart);
  // The window ends at the header's `to` (or when its last job is done, if later): runners still up
  // then (a warm pool) are accounted until it.
  const headerTo = trace.header?.to !== undefined ? Date.parse(trace.header.to) : undefined;
  if (headerTo !== undefined && headerTo > start) wakeAt(headerTo);
  // The replay's end is its last job or runner event (or the window's end): a pass that only looked
  // (a timeout that changed nothing) does not make idle runners cost longer.
  let last = start;
  let settledAt = start;
  for (let next = queue.take(); next; next = queue.take()) {
    clock = next.at;
    events++;
    // As scrapes do live: runners that went are accounted and forgotten, before their names come back.
    if (next.at - settledAt >= METER_SETTLE_EVERY_MS) {
      meter.settle(next.at);
      settledAt = next.at;
    }
    handle(next.event, next.at);
    if (queue.peekTime() !== next.at && passDue) {
      passDue = false;
      pass(next.at);
    }
    if (next.event.kind !== 'pass') last = next.at;
  }
  if (headerTo !== undefined) last = Math.max(last, headerTo);
  meter.settle(last + METER_SETTLE_MS);

  const classResults: ClassResult[] = classNames.map((name) => {
    const s = statsOf(name);
    const runnerClass = baseClasses[name] as RunnerClass;
    return {
      name,
      jobs: s.jobs,
      started: s.queueMs.length,
      queueSeconds: percentiles(s.queueMs),
      recordedQueueSeconds: s.recordedQueueMs.length > 0 ? percentiles(s.recordedQueueMs) : null,
      peakRunners: s.peak,
      maxRunners: runnerClass.maxRunners,
      runnersCreated: s.created,
      cost: { busy: s.cost.busy, idle: s.cost.idle, total: s.cost.busy + s.cost.idle },
      waitedOnMaxRunners: s.waitedOnMax.size,
      waitedOnQuota: s.waitedOnQuota.size,
      servedByOtherClass: s.servedByOther,
      tookOtherClassJobs: s.tookOther,
      trustViolations: s.trustViolations,
      ...(runnerClass.warmPool
        ? {
            warmPool: {
              objective: runnerClass.warmPool.objective,
              targets: [...(warmPools.get(name)?.targets ?? [])],
            },
          }
        : { minIdle: runnerClass.minIdle }),
    };
  });
  return {
    from: start,
    to: last,
    jobs: trace.jobs.length,
    notForGantry,
    unclassified: Object.fromEntries(unclassified),
    classes: classResults,
    series: series.result((name, at) => {
      const pool = warmPools.get(name);
      return pool ? targetAt(pool.targets, pool.leadMs, at) : undefined;
    }),
    events,
    passes,
    wallMs: performance.now() - wallStart,
  };
}

interface ClassStats {
  jobs: number;
  live: number;
  queueMs: number[];
  recordedQueueMs: number[];
  peak: number;
  created: number;
  cost: { busy: number; idle: number };
  waitedOnMax: Set<string>;
  waitedOnQuota: Set<string>;
  servedByOther: number;
  tookOther: number;
  trustViolations: number;
}

function newClassStats(): ClassStats {
  return {
    jobs: 0,
    live: 0,
    queueMs: [],
    recordedQueueMs: [],
    peak: 0,
    created: 0,
    cost: { busy: 0, idle: 0 },
    waitedOnMax: new Set(),
    waitedOnQuota: new Set(),
    servedByOther: 0,
    tookOther: 0,
    trustViolations: 0,
  };
}

/**
 * Which repositories a runner group admits, as GitHub judges it. A group the model does not describe
 * admits every private (and internal) repository, and public ones only when an untrusted or
 * sandboxed class uses it or the trust policy counts public repositories as trusted: the placement
 * Gantry checks at start.
 */
function groupAdmission(
  classes: RunnerClasses,
  model: SimulationModel,
  publicRepositories: 'trusted' | 'untrusted',
): (group: string, job: { isPublic: boolean; trace: TraceJob }) => boolean {
  const described = new Map(
    Object.entries(model.runnerGroups).map(([name, group]) => [name.toLowerCase(), group]),
  );
  const sandboxGroups = new Set(
    Object.values(classes)
      .filter((c) => isSandboxTier(c))
      .map((c) => c.runnerGroup.toLowerCase()),
  );
  return (group, job) => {
    const settings = described.get(group);
    if (!settings) return !job.isPublic || sandboxGroups.has(group) || publicRepositories === 'trusted';
    if (job.isPublic && !settings.allowsPublicRepositories) return false;
    if (settings.visibility === 'private' && job.isPublic) return false;
    if (settings.visibility === 'selected') {
      return settings.repositories.some((r) => r.toLowerCase() === job.trace.repo.toLowerCase());
    }
    return true;
  };
}
