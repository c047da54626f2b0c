/** Pure decision of which Gantry-owned runners to delete from GitHub. */

export interface ObservedRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
}

export type DeleteReason = 'pod_gone' | 'offline';

export interface CleanupInput {
  runners: readonly ObservedRunner[];
  /** Names of the runner pods that exist (a runner is named after its pod). */
  livePods: ReadonlySet<string>;
  /** When each runner was first seen offline, from earlier cleanups. */
  offlineSince: ReadonlyMap<string, number>;
  /** When this process created each runner; a runner younger than the grace may not have its pod yet. */
  createdAt: ReadonlyMap<string, number>;
  nowMs: number;
  offlineGraceMs: number;
}

export interface CleanupDecision {
  remove: { runner: ObservedRunner; reason: DeleteReason }[];
  offlineSince: Map<string, number>;
}

/**
 * A runner whose pod is gone will never run a job: delete it (GitHub refuses with 422 while it is busy,
 * which leaves it). A runner that stays offline past the grace never connected or lost its pod: delete it.
 * Runners created moments ago are left alone: their pods may still be on the way.
 */
export function decideRunnerCleanup(input: CleanupInput): CleanupDecision {
  const offlineSince = new Map<string, number>();
  const remove: CleanupDecision['remove'] = [];
  for (const runner of input.runners) {
    const offline = runner.status === 'offline';
    const since = offline ? (input.offlineSince.get(runner.name) ?? input.nowMs) : undefined;
    if (since !== undefined) offlineSince.set(runner.name, since);
    const created = input.createdAt.get(runner.name);
    const young = created !== undefined && input.nowMs - created < input.offlineGraceMs;
    if (young) continue;
    if (!input.livePods.has(runner.name)) {
      remove.push({ runner, reason: 'pod_gone' });
    } else if (since !== undefined && input.nowMs - since >= input.offlineGraceMs) {
      remove.push({ runner, reason: 'offline' });
    }
  }
  return { remove, offlineSince };
}
