import { creationsAllowed } from '../classes/creation-budget.ts';
import { consumeQuota, fitsQuota, runnerQuotaUsage } from '../classes/quota-usage.ts';
import type { RunnerClass, RunnerClasses } from '../classes/schema.ts';
import type {
  Action,
  AdmitRunAction,
  CancelRunAction,
  CheckRunnerAction,
  CreateRunnerAction,
  DeleteRunnerAction,
} from '../model/action.ts';
import type { EpochMillis } from '../model/job.ts';
import type { ClassSnapshot, LedgerSnapshot, QueuedJob, RunnerView } from '../model/ledger-snapshot.ts';
import { DEFAULT_RUNNER_NAME_PREFIX, runnerNameFor } from '../model/runner-name.ts';
import { fairOrder, type Tenant } from './fair-order.ts';

/**
 * The scaling policy, as one pure function of the ledger snapshot, the classes and the clock. The
 * runners' states in the snapshot (starting, idle, busy, stuck, spent) follow the health rules of
 * runner-health.ts, which the ledger applies when it projects the snapshot.
 *
 * Per class:
 * - Demand is the queued jobs no runner is there for yet, plus `minIdle` warm runners (org scope).
 *   Idle and starting runners are supply; busy, terminating, failed, finished and stuck ones are not.
 * - New runners and admitted Tekton runs fit within `maxRunners` (every runner pod counts until it is
 *   gone, failed, stuck and terminating ones too, plus admitted runs), the creation rate, and the
 *   namespace's ResourceQuota (shared round-robin by the classes in that namespace).
 * - When demand exceeds that, repositories (and Tekton namespaces) share it max-min fairly, or oldest
 *   job first with fairness off.
 * - Failed, finished and stuck runners are deleted. Idle runners beyond demand are deleted once idle for
 *   `idleTimeout`, longest idle first. Busy runners are never deleted. Runners of a class no longer
 *   configured are deleted unless busy.
 * - Tekton runs queued longer than the class's `maxQueueAge` are cancelled instead of admitted.
 * - No runner is created while the class's registrations are held (they failed recently), nor while
 *   its runners fail to start (an image that does not pull); after such a hold, one runner starts at
 *   a time until one runs.
 * - A runner the scheduler finds no node for stays (an autoscaler may be adding one) until the ledger
 *   calls it stuck; a runner the cluster took away (its node lost, evicted) is removed.
 * - A runner that took a job it must not run (an untrusted job on a trusted runner) is deleted at once.
 * - While the class's runner group lets untrusted jobs reach it, no runner is created and idle and
 *   starting runners are deleted; while the group is not known yet, no runner is created.
 * - A starting or idle runner whose JIT Secret Gantry has not seen written (made before a restart or
 *   a takeover, or its create ended in an error) is checked once it is `CHECK_AFTER_MS` old (a
 *   predecessor's write may still be landing); one found without its Secret is deleted. It counts as
 *   supply for the second its check takes.
 *
 * The output is deterministic: the same input gives the same actions in the same order (classes by
 * name; per class deletions by runner name, cancellations by key, then creations and admissions in
 * priority order).
 */
export function plan(snapshot: LedgerSnapshot, classes: RunnerClasses, now: EpochMillis): Action[] {
  const names = [...new Set([...Object.keys(classes), ...Object.keys(snapshot.classes)])].sort();
  const plans: ClassPlan[] = [];
  for (const name of names) {
    const classSnapshot = snapshot.classes[name] ?? EMPTY_CLASS;
    const runnerClass = classes[name];
    plans.push(
      runnerClass
        ? planClass(name, runnerClass, classSnapshot, now)
        : {
            name,
            deletes: deleteUnconfigured(name, classSnapshot),
            checks: [],
            cancels: [],
            wanted: [],
            granted: [],
          },
    );
  }
  grantWithinQuotas(plans, classes, snapshot, now);
  return plans.flatMap((classPlan) => [
    ...classPlan.deletes,
    ...classPlan.checks,
    ...classPlan.cancels,
    ...toActions(classPlan, classes, snapshot),
  ]);
}

const EMPTY_CLASS: ClassSnapshot = { queued: [], runners: [], admittedRuns: [] };

/** How old an unconfirmed runner's pod is before its Secret is looked for: a create lands within it. */
export const CHECK_AFTER_MS = 5_000;

/** One runner to create or one run to admit, before quota and naming. */
type Unit =
  | {
      kind: 'runner';
      /** The job it is for; absent for a warm-pool runner. */
      job?: QueuedJob;
      /** The repository a repo-scoped runner registers to. */
      repo?: string;
    }
  | { kind: 'admit'; job: QueuedJob };

interface ClassPlan {
  name: string;
  deletes: DeleteRunnerAction[];
  checks: CheckRunnerAction[];
  cancels: CancelRunAction[];
  /** Units within the class's own limits, most urgent first. */
  wanted: Unit[];
  /** The prefix of `wanted` (minus runners the quota refused) that goes ahead. */
  granted: Unit[];
}

function planClass(name: string, runnerClass: RunnerClass, snap: ClassSnapshot, now: EpochMillis): ClassPlan {
  const repoScoped = runnerClass.scope === 'repo';
  const poolOf = (repo: string | undefined) => (repoScoped ? (repo ?? '') : '');

  const deletes: DeleteRunnerAction[] = [];
  const checks: CheckRunnerAction[] = [];
  const live: RunnerView[] = [];
  const spareByPool = new Map<string, RunnerView[]>();
  for (const runner of snap.runners) {
    if (runner.state === 'terminating') continue;
    live.push(runner);
    if (isSpent(runner)) {
      deletes.push(deleteAction(name, runner, spentReason(runner)));
    } else if (runner.state === 'idle' || runner.state === 'starting') {
      if (snap.placement === 'unsafe') {
        deletes.push(deleteAction(name, runner, 'placement-unsafe'));
        continue;
      }
      pushTo(spareByPool, poolOf(runner.repo), runner);
      if (runner.unconfirmed && runner.podUid !== undefined && now - runner.createdAt >= CHECK_AFTER_MS) {
        checks.push({
          kind: 'check-runner',
          className: name,
          namespace: runner.namespace,
          runnerName: runner.name,
          podUid: runner.podUid,
        });
      }
    }
  }
  checks.sort((a, b) => compareText(a.runnerName, b.runnerName));

  const githubByPool = new Map<string, QueuedJob[]>();
  const tektonByNamespace = new Map<string, QueuedJob[]>();
  const cancels: CancelRunAction[] = [];
  const maxQueueAgeMs = runnerClass.maxQueueAge !== undefined ? runnerClass.maxQueueAge * 1000 : undefined;
  for (const job of snap.queued) {
    if (job.source === 'github') pushTo(githubByPool, poolOf(job.repo), job);
    else if (maxQueueAgeMs !== undefined && job.queuedAt + maxQueueAgeMs <= now) {
      cancels.push({
        kind: 'cancel-run',
        className: name,
        runKey: job.key,
        repo: job.repo,
        reason: 'max-queue-age',
      });
    } else pushTo(tektonByNamespace, job.repo, job);
  }
  cancels.sort((a, b) => compareText(a.runKey, b.runKey));

  // Idle runners beyond what is waiting (and the warm pool) go once their idle timeout has passed.
  const idleTimeoutMs = runnerClass.idleTimeout * 1000;
  for (const [pool, spare] of spareByPool) {
    const warmPool = repoScoped || !runnerClass.match.github ? 0 : runnerClass.minIdle;
    const keep = (githubByPool.get(pool)?.length ?? 0) + warmPool;
    const expired = spare
      .filter((r) => r.state === 'idle' && (r.idleSince ?? r.createdAt) + idleTimeoutMs <= now)
      .sort(
        (a, b) => (a.idleSince ?? a.createdAt) - (b.idleSince ?? b.createdAt) || compareText(a.name, b.name),
      );
    for (const runner of expired.slice(0, Math.max(0, spare.length - keep))) {
      deletes.push(deleteAction(name, runner, 'idle-timeout'));
    }
  }
  deletes.sort((a, b) => compareText(a.runnerName, b.runnerName));

  const heldByRepo = new Map<string, number>();
  for (const runner of live) increment(heldByRepo, poolOf(runner.repo));
  const admittedByNamespace = new Map<string, number>();
  for (const run of snap.admittedRuns) increment(admittedByNamespace, run.repo);

  // A pod being deleted still exists until the apiserver removes it: it counts until then, so a
  // replacement never lands while the class would be above its max.
  const terminating = snap.runners.length - live.length;
  const occupied = live.length + terminating + snap.admittedRuns.length;
  // While its runners fail to start, the class tries one at a time: a fix shows on the first.
  const probing = snap.startsFailing
    ? Math.max(0, 1 - live.filter((r) => r.state === 'starting').length)
    : Infinity;
  const capacity = Math.min(
    Math.max(0, runnerClass.maxRunners - occupied),
    creationsAllowed(snap.budget, runnerClass.maxCreatePerSecond, now),
    probing,
  );
  // No tenant can be granted more than the whole capacity: build at most that many units each.
  const shareLimit = Math.max(1, Math.floor(runnerClass.fairness.maxShare * runnerClass.maxRunners));
  const tenants: Tenant<Unit>[] = [];
  const addTenant = (key: string, held: number, units: Unit[], oldest: number) => {
    if (units.length > 0) tenants.push({ key, held, units, oldest, withinShare: shareLimit - held });
  };

  // While registrations fail (the CI system refuses or is down), a runner made now is removed again.
  // An unsafe (or not yet known) runner group could hand a new runner to untrusted jobs.
  const runnersHeld =
    snap.placement !== undefined || (snap.creationsHeldUntil !== undefined && now < snap.creationsHeldUntil);
  for (const [pool, jobs] of runnersHeld ? [] : githubByPool) {
    jobs.sort(byQueueOrder);
    // A job whose own runner is starting or idle is served. Other spare runners (warm, or made for a
    // job another runner took) take the oldest jobs left; the rest need a runner each. Matching by
    // job, not by count alone, keeps a late-reported older job from hiding behind a served one.
    const spare = spareByPool.get(pool) ?? [];
    const waiting = new Set(jobs.map((job) => job.key));
    const served = new Set<string>();
    for (const runner of spare) {
      if (runner.plannedFor !== undefined && waiting.has(runner.plannedFor)) served.add(runner.plannedFor);
    }
    const otherSpare = spare.length - served.size;
    const units: Unit[] = jobs
      .filter((job) => !served.has(job.key))
      .slice(otherSpare, otherSpare + capacity)
      .map((job) => ({ kind: 'runner', job, ...(repoScoped ? { repo: pool } : {}) }));
    addTenant(`github:${pool}`, heldByRepo.get(pool) ?? 0, units, jobs[0]?.queuedAt ?? 0);
  }
  if (!runnersHeld && !repoScoped && runnerClass.minIdle > 0 && runnerClass.match.github) {
    const waiting = githubByPool.get('')?.length ?? 0;
    const spare = spareByPool.get('')?.length ?? 0;
    const warm = Math.max(0, runnerClass.minIdle - Math.max(0, spare - waiting));
    const units: Unit[] = Array.from({ length: warm }, () => ({ kind: 'runner' }));
    const existing = tenants.find((tenant) => tenant.key === 'github:');
    // Warm runners come after the jobs that wait now.
    if (existing) existing.units = [...existing.units, ...units];
    else addTenant('github:', heldByRepo.get('') ?? 0, units, Number.POSITIVE_INFINITY);
  }
  for (const [namespace, runs] of tektonByNamespace) {
    runs.sort(byQueueOrder);
    const units: Unit[] = runs.slice(0, capacity).map((job) => ({ kind: 'admit', job }));
    addTenant(`tekton:${namespace}`, admittedByNamespace.get(namespace) ?? 0, units, runs[0]?.queuedAt ?? 0);
  }

  const wanted = runnerClass.fairness.enabled ? fairOrder(tenants, capacity) : oldestFirst(tenants, capacity);
  return { name, deletes, checks, cancels, wanted, granted: [] };
}

/** Fairness off: the oldest job first across all tenants; warm-pool runners last. */
function oldestFirst(tenants: readonly Tenant<Unit>[], limit: number): Unit[] {
  const units = tenants.flatMap((tenant) => tenant.units);
  const queuedAt = (unit: Unit) => unit.job?.queuedAt ?? Number.POSITIVE_INFINITY;
  units.sort((a, b) => {
    const byTime = queuedAt(a) - queuedAt(b);
    if (byTime !== 0 && !Number.isNaN(byTime)) return byTime;
    return compareText(a.job?.key ?? '', b.job?.key ?? '');
  });
  return units.slice(0, limit);
}

/**
 * Classes sharing a namespace share its quota: they take turns, one unit each, so none starves the
 * others. Admissions use no quota of the runner namespace; runners stop at the first that does not fit.
 */
function grantWithinQuotas(
  plans: ClassPlan[],
  classes: RunnerClasses,
  snapshot: LedgerSnapshot,
  now: EpochMillis,
) {
  const byNamespace = new Map<string, ClassPlan[]>();
  for (const classPlan of plans) {
    const runnerClass = classes[classPlan.name];
    if (runnerClass) pushTo(byNamespace, runnerClass.namespace, classPlan);
  }
  for (const [namespace, sharing] of byNamespace) {
    const quota = snapshot.quotas[namespace];
    const backedOff = quota?.backoffUntil !== undefined && now < quota.backoffUntil;
    let remaining = quota?.remaining;
    const turns = sharing.map((classPlan) => {
      const runnerClass = classes[classPlan.name];
      return {
        classPlan,
        next: 0,
        runnersBlocked: backedOff,
        usage: runnerClass ? runnerQuotaUsage(runnerClass) : {},
      };
    });
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const turn of turns) {
        const { wanted, granted } = turn.classPlan;
        while (turn.next < wanted.length) {
          const unit = wanted[turn.next++];
          if (!unit) break;
          if (unit.kind === 'admit') {
            granted.push(unit);
            progressed = true;
            break;
          }
          if (turn.runnersBlocked) continue;
          if (remaining && !fitsQuota(remaining, turn.usage)) {
            turn.runnersBlocked = true;
            continue;
          }
          if (remaining) remaining = consumeQuota(remaining, turn.usage);
          granted.push(unit);
          progressed = true;
          break;
        }
      }
    }
  }
}

function toActions(classPlan: ClassPlan, classes: RunnerClasses, snapshot: LedgerSnapshot): Action[] {
  const runnerClass = classes[classPlan.name];
  if (!runnerClass) return [];
  const taken = new Set((snapshot.classes[classPlan.name]?.runners ?? []).map((runner) => runner.name));
  const nextIndex = new Map<string, number>();
  const prefix = snapshot.naming?.prefix ?? DEFAULT_RUNNER_NAME_PREFIX;
  const generation = snapshot.naming?.generation ?? '';
  const nameOf = (seed: string) => runnerNameFor(classPlan.name, seed, prefix);
  return classPlan.granted.map((unit): CreateRunnerAction | AdmitRunAction => {
    if (unit.kind === 'admit') {
      return { kind: 'admit-run', className: classPlan.name, runKey: unit.job.key, repo: unit.job.repo };
    }
    // A runner planned for a job is named after it, so the same need planned again (before the
    // watch reports the pod) gives the same name and collides with itself, while runners for other
    // jobs, now or later, get names of their own. Warm-pool runners count up per scope. A name in
    // use, or used recently, moves on to the next suffix; the generation keeps a restarted Gantry,
    // which has forgotten the names it retired, off them.
    const base = unit.job ? unit.job.key : `warm:${unit.repo ?? '*'}`;
    let index = unit.job ? 0 : (nextIndex.get(base) ?? 0);
    let nameSeed = seedOf(base, index, generation);
    let runnerName = nameOf(nameSeed);
    while (taken.has(runnerName) || snapshot.retiredNames?.has(runnerName)) {
      index += 1;
      nameSeed = seedOf(base, index, generation);
      runnerName = nameOf(nameSeed);
    }
    if (!unit.job) nextIndex.set(base, index + 1);
    taken.add(runnerName);
    return {
      kind: 'create-runner',
      className: classPlan.name,
      namespace: runnerClass.namespace,
      nameSeed,
      runnerName,
      ...(snapshot.naming ? { namePrefix: prefix } : {}),
      ...(unit.repo !== undefined ? { repo: unit.repo } : {}),
      ...(unit.job ? { jobKey: unit.job.key } : {}),
      reason: unit.job ? 'queued-jobs' : 'warm-pool',
    };
  });
}

function seedOf(base: string, index: number, generation: string): string {
  const seed = generation ? `${base}@${generation}` : base;
  return index === 0 ? seed : `${seed}#${index}`;
}

function deleteUnconfigured(name: string, snap: ClassSnapshot): DeleteRunnerAction[] {
  return snap.runners
    .filter((runner) => runner.state !== 'busy' && runner.state !== 'terminating')
    .map((runner) => deleteAction(name, runner, isSpent(runner) ? spentReason(runner) : 'class-removed'))
    .sort((a, b) => compareText(a.runnerName, b.runnerName));
}

type SpentState = 'failed' | 'finished' | 'stuck' | 'compromised';

/** A runner that will never take a job again (or must not go on with its own): only its removal is left. */
function isSpent(runner: RunnerView): runner is RunnerView & { state: SpentState } {
  return (
    runner.state === 'failed' ||
    runner.state === 'finished' ||
    runner.state === 'stuck' ||
    runner.state === 'compromised'
  );
}

function spentReason(runner: RunnerView & { state: SpentState }): DeleteRunnerAction['reason'] {
  if (runner.lost) return 'lost';
  if (runner.halfMade) return 'half-made';
  return runner.state === 'compromised' ? 'trust-violation' : runner.state;
}

function deleteAction(
  className: string,
  runner: RunnerView,
  reason: DeleteRunnerAction['reason'],
): DeleteRunnerAction {
  return {
    kind: 'delete-runner',
    className,
    namespace: runner.namespace,
    runnerName: runner.name,
    ...(runner.repo !== undefined ? { repo: runner.repo } : {}),
    reason,
  };
}

function byQueueOrder(a: QueuedJob, b: QueuedJob): number {
  return a.queuedAt - b.queuedAt || compareText(a.key, b.key);
}

/** Code-unit order, independent of the locale the process runs in. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function increment<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
