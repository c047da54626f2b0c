import { LRUCache } from 'lru-cache';
import { spendCreationBudget } from '../classes/creation-budget.ts';
import type { Classification, RunnerTrustCheck, RunnerTrustVerdict } from '../classes/matching.ts';
import { runnerQuotaUsage } from '../classes/quota-usage.ts';
import type { RunnerClasses } from '../classes/schema.ts';
import type { AdmitRunAction, CreateRunnerAction } from '../model/action.ts';
import type { EpochMillis, JobEvent, JobIdentity } from '../model/job.ts';
import type {
  AdmittedRun,
  ClassifiableJob,
  ClassSnapshot,
  CreationBudget,
  LedgerSnapshot,
  PlacementHold,
  QueuedJob,
  QuotaHeadroom,
  QuotaLimits,
  QuotaResource,
  RunnerHealth,
  RunnerNaming,
  RunnerView,
} from '../model/ledger-snapshot.ts';
import type {
  LostReason,
  RunnerFacts,
  RunnerObservation,
  StartFailure,
} from '../model/runner-observation.ts';
import { ClassIndexedMap } from './by-class.ts';

export interface LedgerOptions {
  classify: (job: ClassifiableJob) => Classification;
  /** Judges the runner that took a job (GitHub picks it, not Gantry); every runner is fine when absent. */
  checkRunnerTrust?: RunnerTrustCheck;
  /** When a runner is starting, idle, busy, stuck or spent (planner/runner-health.ts). */
  health: RunnerHealth;
  /** How new runners are named (the planner reads it from the snapshot). */
  naming?: RunnerNaming;
}

export interface JobRecord {
  identity: JobIdentity;
  classification: Classification;
  state: 'queued' | 'started';
  createdAt: EpochMillis;
  startedAt?: EpochMillis;
  runnerName?: string;
  /**
   * A queued Tekton run Gantry has asked to admit or cancel, until the watch reports the outcome:
   * an admitted run holds its slot from the request on, a cancelled one leaves the queue.
   */
  runAction?: 'admit' | 'cancel';
}

/** What the ledger knows of one runner: what the pod watch reported, or a create still in flight. */
interface RunnerRecord extends Omit<RunnerFacts, 'contain'> {
  /** It took a job it must not run (see checkRunnerTrust); `contain`: it is to be stopped at once. */
  violation?: Extract<RunnerTrustVerdict, { ok: false }>;
}

/**
 * Job times come from the CI system's clock in whole seconds, pod times from the apiserver's: a pod
 * created this long after a job started can still be the one that ran it.
 */
const CLOCK_TOLERANCE_MS = 2_000;

/**
 * Whether the runner could have run a job that started at `startedAt`. Runner names repeat (a runner
 * made for a job is named after it), so a late or redelivered event can name a pod created since,
 * under the same name, after the one that ran the job was gone; tying the job to it would keep an idle
 * runner counted as busy for good.
 */
function couldHaveRun(runner: RunnerObservation, startedAt: EpochMillis): boolean {
  return runner.createdAt <= startedAt + CLOCK_TOLERANCE_MS;
}

/** Pods count against a quota until they end or their deletion starts (Gantry deletes without grace). */
function holdsQuota(record: RunnerRecord): boolean {
  const { phase, deleting } = record.observation;
  return !record.deleteRequested && !deleting && phase !== 'Succeeded' && phase !== 'Failed';
}

/** Why a class's creations are held (see Ledger.holdCreations). */
export type CreationHoldCause = 'registration' | 'start-failure';

/** What changed in the ledger, for observers (metrics, logs); the ledger itself does no I/O. */
export type LedgerChange =
  | { kind: 'job-queued'; job: JobRecord }
  | { kind: 'job-unclassified'; job: JobIdentity; reason: string }
  | { kind: 'job-started'; job: JobRecord; queuedForMs: number }
  | {
      kind: 'job-completed';
      job: JobIdentity;
      className?: string;
      startedAt: EpochMillis | null;
      completedAt: EpochMillis;
      /** The runner that ran it, when known. */
      runnerName?: string;
    }
  /** A runner's container started (first seen with `runningSince`). */
  | { kind: 'runner-running'; runner: RunnerObservation & { runningSince: EpochMillis } }
  /** A runner's pod ended or its deletion began, at `endedAt`. */
  | { kind: 'runner-ended'; runner: RunnerObservation; endedAt: EpochMillis }
  /**
   * The pod watch saw a runner's pod disappear at `at`. `deleteRequested`: Gantry asked for it; else
   * something else removed it (the pod garbage collector, a person) and its registration is left.
   */
  | { kind: 'runner-gone'; runner: RunnerObservation; at: EpochMillis; deleteRequested: boolean }
  /** The cluster took a runner's pod away (see LostReason); `midJob`: it held a job, which is lost. */
  | { kind: 'runner-lost'; runner: RunnerObservation; reason: LostReason; midJob: boolean; jobKey?: string }
  /** A runner will never start: a container of its pod cannot, or the apiserver refused the pod. */
  | { kind: 'runner-start-failed'; runner: RunnerObservation; failure: StartFailure }
  /**
   * GitHub gave a runner a job of another trust than its class's (it hands a job to any idle runner
   * whose labels and group fit). `contained`: the runner is stopped at once.
   */
  | {
      kind: 'trust-violation';
      className: string;
      runnerName: string;
      job: JobIdentity;
      violation: Extract<RunnerTrustVerdict, { ok: false }>['kind'];
      contained: boolean;
    };

/**
 * The one in-memory picture of demand and supply: jobs from the sources, runner pods from the
 * watch, and what Gantry has asked for but not yet seen. It changes only through these methods,
 * never through I/O, and `snapshot` turns it into the planner's input.
 */
export class Ledger {
  readonly #options: LedgerOptions;
  readonly #jobs = new ClassIndexedMap<JobRecord>((job) =>
    job.classification.matched ? job.classification.className : undefined,
  );
  readonly #runners = new ClassIndexedMap<RunnerRecord>((runner) => runner.observation.className);
  /** Runner name → the job it took, for runners whose pod the watch has not reported yet. */
  readonly #jobByRunner = new Map<string, string>();
  /** Jobs that ended recently: a late `queued` for one of them (a stale poll) must not revive it. */
  readonly #ended = new LRUCache<string, true>({ max: 50_000 });
  /** Names of runners whose pods are gone, not to be given to new runners for a while. */
  readonly #retiredNames = new LRUCache<string, true>({ max: 50_000, ttl: 60 * 60_000 });
  readonly #quotaLimits = new Map<string, QuotaLimits>();
  readonly #quotaBackoff = new Map<string, EpochMillis>();
  readonly #budgets = new Map<string, CreationBudget>();
  /** Per class, why its creations are held and until when. */
  readonly #creationHolds = new Map<string, Map<CreationHoldCause, EpochMillis>>();
  /** Classes held on account of their runner group (see PlacementHold). */
  readonly #placementHolds = new Map<string, PlacementHold>();

  constructor(options: LedgerOptions) {
    this.#options = options;
  }

  /** Applies a source's event. Events are idempotent: a repeated or stale one changes nothing. */
  applyJobEvent(event: JobEvent): LedgerChange[] {
    const { key } = event.job;
    if (this.#ended.has(key)) return [];
    const existing = this.#jobs.get(key);
    switch (event.kind) {
      case 'queued': {
        if (existing) return [];
        const classification = this.#options.classify(event.job);
        const record: JobRecord = {
          identity: event.job,
          classification,
          state: 'queued',
          createdAt: event.createdAt,
        };
        this.#jobs.set(key, record);
        return classification.matched
          ? [{ kind: 'job-queued', job: record }]
          : [{ kind: 'job-unclassified', job: event.job, reason: classification.reason }];
      }
      case 'started': {
        const record =
          existing ??
          ({
            identity: event.job,
            classification: this.#options.classify(event.job),
            state: 'queued',
            createdAt: event.createdAt,
          } satisfies JobRecord);
        if (record.state === 'started') return [];
        record.state = 'started';
        delete record.runAction;
        record.startedAt = event.startedAt;
        if (event.runnerName) {
          record.runnerName = event.runnerName;
          this.#jobByRunner.set(event.runnerName, key);
        }
        this.#jobs.set(key, record);
        const runner = event.runnerName ? this.#runners.get(event.runnerName) : undefined;
        const changes: LedgerChange[] = [
          { kind: 'job-started', job: record, queuedForMs: Math.max(0, event.startedAt - record.createdAt) },
        ];
        if (runner && couldHaveRun(runner.observation, event.startedAt)) {
          runner.jobKey = key;
          changes.push(...this.#judgeRunner(runner, record.identity));
        }
        return changes;
      }
      case 'completed': {
        this.#jobs.delete(key);
        if (existing?.runnerName) this.#jobByRunner.delete(existing.runnerName);
        this.#ended.set(key, true);
        const runnerName = event.runnerName ?? existing?.runnerName;
        const runner = runnerName ? this.#runners.get(runnerName) : undefined;
        const changes: LedgerChange[] = [
          {
            kind: 'job-completed',
            job: event.job,
            ...(existing?.classification.matched ? { className: existing.classification.className } : {}),
            startedAt: event.startedAt,
            completedAt: event.completedAt,
            ...(runnerName ? { runnerName } : {}),
          },
        ];
        if (runner && couldHaveRun(runner.observation, event.startedAt ?? event.completedAt)) {
          runner.jobKey = key;
          // Its start was never reported (a lost webhook): the runner is judged all the same.
          changes.push(...this.#judgeRunner(runner, event.job));
        }
        return changes;
      }
    }
  }

  /** The pod watch saw a runner pod (added or changed). */
  observeRunner(observation: RunnerObservation): LedgerChange[] {
    const record = this.#runners.get(observation.name);
    const judged: LedgerChange[] = [];
    const before = record?.observation;
    if (record) {
      record.observation = observation;
    } else {
      // A runner whose job started before its pod was seen (e.g. after a restart) is linked here.
      const linked = this.#jobByRunner.get(observation.name);
      const startedAt = linked !== undefined ? this.#jobs.get(linked)?.startedAt : undefined;
      const jobKey = startedAt !== undefined && couldHaveRun(observation, startedAt) ? linked : undefined;
      const added: RunnerRecord = {
        observation,
        // Not this run's create: whether its Secret was ever written is unknown.
        secret: 'unknown',
        deleteRequested: false,
        ...(jobKey !== undefined ? { jobKey } : {}),
      };
      this.#runners.set(observation.name, added);
      const job = jobKey !== undefined ? this.#jobs.get(jobKey) : undefined;
      if (job) judged.push(...this.#judgeRunner(added, job.identity));
    }
    const changes: LedgerChange[] = judged;
    const { runningSince, endedAt } = observation;
    if (runningSince !== undefined && before?.runningSince === undefined) {
      changes.push({ kind: 'runner-running', runner: { ...observation, runningSince } });
    }
    if (endedAt !== undefined && before?.endedAt === undefined) {
      changes.push({ kind: 'runner-ended', runner: observation, endedAt });
    }
    if (observation.startFailure && !before?.startFailure) {
      changes.push({ kind: 'runner-start-failed', runner: observation, failure: observation.startFailure });
    }
    const current = this.#runners.get(observation.name);
    if (observation.lost && !before?.lost && current) {
      const jobKey = current.jobKey;
      changes.push({
        kind: 'runner-lost',
        runner: observation,
        reason: observation.lost,
        midJob: jobKey !== undefined || current.tookUnnamedJob === true,
        ...(jobKey !== undefined ? { jobKey } : {}),
      });
    }
    return changes;
  }

  /** Whether the runner may run the job it took; a violation is recorded once, and reported. */
  #judgeRunner(runner: RunnerRecord, job: JobIdentity): LedgerChange[] {
    if (runner.violation || !this.#options.checkRunnerTrust) return [];
    const verdict = this.#options.checkRunnerTrust(job, runner.observation.className);
    if (verdict.ok) return [];
    runner.violation = verdict;
    return [
      {
        kind: 'trust-violation',
        className: runner.observation.className,
        runnerName: runner.observation.name,
        job,
        violation: verdict.kind,
        contained: verdict.contain,
      },
    ];
  }

  /** Whether the class's runner group is unsafe or unknown, as last read from GitHub; undefined: safe. */
  setPlacementHold(className: string, hold: PlacementHold | undefined): void {
    if (hold) this.#placementHolds.set(className, hold);
    else this.#placementHolds.delete(className);
  }

  /** The pod watch saw a runner pod disappear at `now`. */
  forgetRunner(name: string, now: EpochMillis = Date.now()): LedgerChange[] {
    const record = this.#runners.get(name);
    if (!record) return [];
    this.#runners.delete(name);
    this.#jobByRunner.delete(name);
    this.#retiredNames.set(name, true);
    return [
      { kind: 'runner-gone', runner: record.observation, at: now, deleteRequested: record.deleteRequested },
    ];
  }

  /**
   * The planner's create is on its way: count the runner as starting from now, so the next plan
   * does not create it again, and spend the class's creation budget.
   */
  noteCreateRequested(action: CreateRunnerAction, ratePerSecond: number, now: EpochMillis): void {
    if (!this.#runners.has(action.runnerName)) {
      this.#runners.set(action.runnerName, {
        observation: {
          name: action.runnerName,
          namespace: action.namespace,
          className: action.className,
          ...(action.repo !== undefined ? { repo: action.repo } : {}),
          ...(action.jobKey !== undefined ? { plannedFor: action.jobKey } : {}),
          phase: 'Requested',
          createdAt: now,
          deleting: false,
        },
        secret: 'creating',
        deleteRequested: false,
      });
    }
    this.#budgets.set(
      action.className,
      spendCreationBudget(this.#budgets.get(action.className), ratePerSecond, now, 1),
    );
  }

  /**
   * The create failed. Before any pod was seen: forget the placeholder so it can be planned again.
   * A pod that exists may lack its Secret: it is checked.
   */
  noteCreateFailed(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record?.observation.phase === 'Requested') this.#runners.delete(runnerName);
    else if (record?.secret === 'creating') record.secret = 'unknown';
  }

  /** The create went through: pod, registration and Secret. */
  noteCreateSucceeded(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record) record.secret = 'written';
  }

  /** A check of the runner's JIT Secret is on its way. */
  noteCheckRequested(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record?.secret === 'unknown') record.secret = 'checking';
  }

  /** What the check found; `failed`: it could not tell, and is tried again. */
  noteCheckResult(runnerName: string, result: 'written' | 'missing' | 'failed'): void {
    const record = this.#runners.get(runnerName);
    if (record?.secret !== 'checking') return;
    record.secret = result === 'failed' ? 'unknown' : result;
  }

  /** The apiserver refused the runner's pod (`detail`: its reason, `message` its words): reported. */
  noteCreateRefused(runnerName: string, detail: string, message: string): LedgerChange[] {
    const record = this.#runners.get(runnerName);
    if (record?.observation.phase !== 'Requested') return [];
    this.#runners.delete(runnerName);
    return [
      {
        kind: 'runner-start-failed',
        runner: record.observation,
        failure: { reason: 'refused', detail, message },
      },
    ];
  }

  /** The planner's admission is on its way: the run holds a slot from now and spends creation budget. */
  noteAdmitRequested(action: AdmitRunAction, ratePerSecond: number, now: EpochMillis): void {
    const record = this.#jobs.get(action.runKey);
    if (record?.state !== 'queued') return;
    record.runAction = 'admit';
    this.#budgets.set(
      action.className,
      spendCreationBudget(this.#budgets.get(action.className), ratePerSecond, now, 1),
    );
  }

  /** The planner's cancellation is on its way: the run leaves the queue. */
  noteCancelRequested(runKey: string): void {
    const record = this.#jobs.get(runKey);
    if (record?.state === 'queued') record.runAction = 'cancel';
  }

  /** An admission or cancellation that failed or was never sent: the run waits in the queue again. */
  noteRunActionFailed(runKey: string): void {
    const record = this.#jobs.get(runKey);
    if (record) delete record.runAction;
  }

  /**
   * A runner was removed whose pod the watch never reported: forget its placeholder, which no watch
   * event will ever clear. A pod that did exist is reported (and forgotten) by the watch as usual.
   */
  noteRequestedRunnerRemoved(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record?.observation.phase !== 'Requested') return;
    this.#runners.delete(runnerName);
    this.#retiredNames.set(runnerName, true);
  }

  /** Whether a runner the planner asked for is still wanted: known, and no deletion asked for since. */
  isCreateWanted(runnerName: string): boolean {
    const record = this.#runners.get(runnerName);
    return record !== undefined && !record.deleteRequested;
  }

  noteDeleteRequested(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record) record.deleteRequested = true;
  }

  /**
   * The CI system refused to remove an idle runner because it had just taken a job: it is busy, and
   * is removed once its pod finishes, like any runner that ran its job.
   */
  noteKeptBusy(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (!record) return;
    record.deleteRequested = false;
    record.tookUnnamedJob = true;
  }

  /** A delete that was planned but never sent: the runner is what it was before. */
  noteDeleteAbandoned(runnerName: string): void {
    const record = this.#runners.get(runnerName);
    if (record) record.deleteRequested = false;
  }

  /** The namespace's ResourceQuota limits and usage, from the quotas' status. */
  setQuotaLimits(namespace: string, limits: QuotaLimits): void {
    this.#quotaLimits.set(namespace, limits);
  }

  /** The apiserver refused a create for quota: hold creations in that namespace until `until`. */
  noteQuotaExceeded(namespace: string, until: EpochMillis): void {
    this.#quotaBackoff.set(namespace, until);
  }

  /**
   * Make no runner of the class until `until`: registering one failed (`registration`), or its
   * runners failed to start (`start-failure`, which also keeps the class to one runner starting at
   * a time after the hold, until one runs). A later hold of the same cause replaces the earlier one.
   */
  holdCreations(className: string, until: EpochMillis, cause: CreationHoldCause = 'registration'): void {
    const holds = this.#creationHolds.get(className) ?? new Map<CreationHoldCause, EpochMillis>();
    holds.set(cause, until);
    this.#creationHolds.set(className, holds);
  }

  /** What held the class's creations works again: a runner was registered, or one got running. */
  releaseCreations(className: string, cause: CreationHoldCause = 'registration'): void {
    const holds = this.#creationHolds.get(className);
    holds?.delete(cause);
    if (holds?.size === 0) this.#creationHolds.delete(className);
  }

  isQuotaLimited(namespace: string, now: EpochMillis): boolean {
    const until = this.#quotaBackoff.get(namespace);
    return until !== undefined && now < until;
  }

  job(key: string): JobRecord | undefined {
    return this.#jobs.get(key);
  }

  jobs(): IterableIterator<JobRecord> {
    return this.#jobs.values();
  }

  /** Names of every runner known: pods that exist and creates in flight. */
  runnerNames(): IterableIterator<string> {
    return this.#runners.keys();
  }

  runnerObservation(name: string): RunnerObservation | undefined {
    return this.#runners.get(name)?.observation;
  }

  /**
   * The planner's input: per class its waiting jobs and its runners, with states derived at `now`.
   * `only`: just these classes (and the quotas of their namespaces), read without going through the
   * others.
   */
  snapshot(classes: RunnerClasses, now: EpochMillis, only?: ReadonlySet<string>): LedgerSnapshot {
    const byClass: Record<
      string,
      { queued: QueuedJob[]; runners: RunnerView[]; admittedRuns: AdmittedRun[] }
    > = {};
    const entry = (className: string) => {
      let found = byClass[className];
      if (!found) {
        found = { queued: [], runners: [], admittedRuns: [] };
        byClass[className] = found;
      }
      return found;
    };
    for (const job of only ? inClasses(this.#jobs, only) : this.#jobs.values()) {
      if (!job.classification.matched) continue;
      const { source, key, repo } = job.identity;
      if (source === 'tekton' && (job.state === 'started' || job.runAction === 'admit')) {
        entry(job.classification.className).admittedRuns.push({ key, repo });
        continue;
      }
      if (job.state !== 'queued' || job.runAction === 'cancel') continue;
      entry(job.classification.className).queued.push({
        key: job.identity.key,
        source: job.identity.source,
        repo: job.identity.repo,
        queuedAt: job.createdAt,
      });
    }
    for (const record of only ? inClasses(this.#runners, only) : this.#runners.values()) {
      const { observation } = record;
      const view = this.#options.health.of(
        { ...record, contain: record.violation?.contain === true },
        classes[observation.className]?.activeDeadlineSeconds,
        now,
      );
      entry(observation.className).runners.push({
        name: observation.name,
        namespace: observation.namespace,
        createdAt: observation.createdAt,
        ...(observation.repo !== undefined ? { repo: observation.repo } : {}),
        ...(observation.plannedFor !== undefined ? { plannedFor: observation.plannedFor } : {}),
        ...view,
      });
    }
    for (const found of Object.values(byClass)) this.#options.health.markIdleWhileJobsWait(found, now);
    const classesOut: Record<string, ClassSnapshot> = {};
    for (const className of new Set([
      ...Object.keys(byClass),
      ...this.#budgets.keys(),
      ...this.#creationHolds.keys(),
      ...this.#placementHolds.keys(),
    ])) {
      if (only && !only.has(className)) continue;
      const budget = this.#budgets.get(className);
      const holds = this.#creationHolds.get(className);
      const held = Math.max(0, ...(holds?.values() ?? []));
      classesOut[className] = {
        ...(byClass[className] ?? { queued: [], runners: [], admittedRuns: [] }),
        ...(budget ? { budget } : {}),
        ...(now < held ? { creationsHeldUntil: held } : {}),
        ...(holds?.has('start-failure') ? { startsFailing: true } : {}),
        ...(this.#placementHolds.has(className) ? { placement: this.#placementHolds.get(className) } : {}),
      };
    }
    return {
      classes: classesOut,
      quotas: this.#quotaHeadroom(classes, only),
      retiredNames: this.#retiredNames,
      ...(this.#options.naming ? { naming: this.#options.naming } : {}),
    };
  }

  /**
   * What each namespace's quota still allows. The quota controller's `used` lags behind (and can be
   * recomputed low while pods come and go), so Gantry also counts its own runners that hold quota —
   * creates in flight included — and takes whichever usage is higher.
   */
  #quotaHeadroom(classes: RunnerClasses, only?: ReadonlySet<string>): Record<string, QuotaHeadroom> {
    // With `only`, the namespaces of those classes. Own usage counts where a quota limits something:
    // every configured class's runners in such a namespace.
    const namespaces = only
      ? new Set([...only].flatMap((name) => (classes[name] ? [classes[name].namespace] : [])))
      : undefined;
    const limited = new Set(
      [...this.#quotaLimits]
        .filter(
          ([namespace, limits]) => Object.keys(limits).length > 0 && (namespaces?.has(namespace) ?? true),
        )
        .map(([namespace]) => namespace),
    );
    const counted = new Set(
      Object.keys(classes).filter((name) => limited.has(classes[name]?.namespace ?? '')),
    );
    const own = new Map<string, Partial<Record<QuotaResource, number>>>();
    for (const record of inClasses(this.#runners, counted)) {
      const { observation } = record;
      const runnerClass = classes[observation.className];
      if (!runnerClass || !holdsQuota(record) || !limited.has(observation.namespace)) continue;
      const usage = own.get(observation.namespace) ?? {};
      for (const [resource, amount] of Object.entries(runnerQuotaUsage(runnerClass)) as [
        QuotaResource,
        number,
      ][]) {
        usage[resource] = (usage[resource] ?? 0) + amount;
      }
      own.set(observation.namespace, usage);
    }
    const headroom: Record<string, QuotaHeadroom> = {};
    for (const namespace of new Set([...this.#quotaLimits.keys(), ...this.#quotaBackoff.keys()])) {
      if (namespaces && !namespaces.has(namespace)) continue;
      const remaining: QuotaHeadroom['remaining'] = {};
      for (const [resource, limit] of Object.entries(this.#quotaLimits.get(namespace) ?? {}) as [
        QuotaResource,
        { hard: number; used: number },
      ][]) {
        const used = Math.max(limit.used, own.get(namespace)?.[resource] ?? 0);
        remaining[resource] = Math.max(0, limit.hard - used);
      }
      const backoffUntil = this.#quotaBackoff.get(namespace);
      headroom[namespace] = { remaining, ...(backoffUntil !== undefined ? { backoffUntil } : {}) };
    }
    return headroom;
  }
}

/** The entries of the given classes. */
function* inClasses<V>(map: ClassIndexedMap<V>, classNames: ReadonlySet<string>): Generator<V> {
  for (const className of classNames) yield* map.inClass(className);
}
