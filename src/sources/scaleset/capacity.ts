import { consumeQuota, fitsQuota, runnerQuotaUsage } from '../../classes/quota-usage.ts';
import type { RunnerClass } from '../../classes/schema.ts';
import type { EpochMillis } from '../../model/job.ts';
import type { LedgerSnapshot } from '../../model/ledger-snapshot.ts';

/** Runners that hold, or will take, a job: the others are on their way out. */
const SERVING: ReadonlySet<string> = new Set(['starting', 'idle', 'busy']);

/**
 * How many jobs a class's scale set can take now, which Gantry sends as X-ScaleSetMaxCapacity so that
 * the service assigns no job that would wait for a runner Gantry cannot start (an assigned job no
 * runner takes in time is taken back, and cancelled after its third try). It is the class's runners
 * that serve jobs plus the runners its namespace's quota still admits, within `maxRunners`; while the
 * class's runner group is not known safe, or the quota refused a create moments ago, no more than it
 * has. Classes sharing a namespace each see its whole room: the planner shares it out.
 */
export function scaleSetCapacity(
  snapshot: LedgerSnapshot,
  className: string,
  runnerClass: RunnerClass,
  now: EpochMillis,
): number {
  const classSnapshot = snapshot.classes[className];
  const serving = (classSnapshot?.runners ?? []).filter((r) => SERVING.has(r.state)).length;
  const quota = snapshot.quotas[runnerClass.namespace];
  let room = runnerClass.maxRunners;
  if (classSnapshot?.placement !== undefined) room = 0;
  else if (quota?.backoffUntil !== undefined && now < quota.backoffUntil) room = 0;
  else if (quota) {
    const usage = runnerQuotaUsage(runnerClass);
    let remaining = quota.remaining;
    room = 0;
    while (room < runnerClass.maxRunners && fitsQuota(remaining, usage)) {
      remaining = consumeQuota(remaining, usage);
      room++;
    }
  }
  return Math.min(runnerClass.maxRunners, serving + room);
}
