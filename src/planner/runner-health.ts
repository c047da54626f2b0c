import type { EpochMillis } from '../model/job.ts';
import type { QueuedJob, RunnerHealth, RunnerView } from '../model/ledger-snapshot.ts';
import type { RunnerFacts } from '../model/runner-observation.ts';

/**
 * When a runner is starting, idle, busy, stuck or spent: the health rules, pure, from what the ledger
 * observed and the clock. The ledger applies them when it projects its snapshot; the planner acts on
 * the states they give.
 */

export interface RunnerTimeouts {
  /** A runner not Running this long after it was scheduled (or created) is stuck (image pull, …). */
  startTimeoutMs: number;
  /**
   * A runner the scheduler found no node for waits this long from its creation before it is stuck:
   * a node autoscaler may be adding the node it needs.
   */
  capacityTimeoutMs: number;
  /** Grace beyond a class's activeDeadlineSeconds before a busy runner counts as stuck. */
  deadlineGraceMs: number;
}

export function runnerHealthRules(timeouts: RunnerTimeouts): RunnerHealth {
  return {
    of: (facts, activeDeadlineSeconds, now) => stateOf(facts, activeDeadlineSeconds, now, timeouts),
    markIdleWhileJobsWait: (found, now) => markIdleWhileJobsWait(found, now - timeouts.startTimeoutMs),
  };
}

type HealthView = ReturnType<RunnerHealth['of']>;

function stateOf(
  facts: RunnerFacts,
  activeDeadlineSeconds: number | undefined,
  now: EpochMillis,
  timeouts: RunnerTimeouts,
): HealthView {
  const view = lifecycleState(facts, activeDeadlineSeconds, now, timeouts);
  const { secret, observation } = facts;
  if (view.state !== 'starting' && view.state !== 'idle') return view;
  // A pod without its JIT Secret never becomes a runner; one not seen written is checked.
  if (secret === 'missing') return { state: 'failed', halfMade: true };
  if (secret === 'unknown' && observation.uid !== undefined) {
    return { ...view, unconfirmed: true, podUid: observation.uid };
  }
  return view;
}

function lifecycleState(
  facts: RunnerFacts,
  activeDeadlineSeconds: number | undefined,
  now: EpochMillis,
  timeouts: RunnerTimeouts,
): HealthView {
  const { observation: pod, jobKey } = facts;
  const withJob = jobKey !== undefined ? { jobKey } : {};
  if (facts.deleteRequested) return { state: 'terminating', ...withJob };
  // A pod the cluster took away may hang in its deletion for good (its node is gone): it is spent.
  if (pod.lost) return { state: 'failed', lost: pod.lost, ...withJob };
  if (pod.deleting) return { state: 'terminating', ...withJob };
  if (facts.contain) return { state: 'compromised', ...withJob };
  if (pod.phase === 'Failed' || pod.startFailure) return { state: 'failed', ...withJob };
  if (pod.phase === 'Succeeded') return { state: 'finished', ...withJob };
  if (pod.phase !== 'Running') {
    if (pod.unschedulable && pod.scheduledAt === undefined) {
      // No node fits it yet: an autoscaler may be adding one. It waits longer than a start.
      const waited = now - pod.createdAt > timeouts.capacityTimeoutMs;
      return { state: waited ? 'stuck' : 'starting', waitingForCapacity: true, ...withJob };
    }
    const since = Math.max(pod.createdAt, pod.scheduledAt ?? pod.createdAt);
    return { state: now - since > timeouts.startTimeoutMs ? 'stuck' : 'starting', ...withJob };
  }
  const runningSince = pod.runningSince ?? pod.createdAt;
  if (jobKey !== undefined || facts.tookUnnamedJob) {
    // A one-shot runner whose job ended only waits for its pod to exit: it is not supply.
    const deadline =
      activeDeadlineSeconds !== undefined
        ? runningSince + activeDeadlineSeconds * 1000 + timeouts.deadlineGraceMs
        : Number.POSITIVE_INFINITY;
    return { state: now > deadline ? 'stuck' : 'busy', ...withJob };
  }
  return { state: 'idle', idleSince: runningSince };
}

/**
 * GitHub hands a queued job to an idle runner with matching labels within seconds. A runner that has
 * been idle since before `since` while a job it could take has waited since before `since` is not
 * really there (its process never connected, or hung): it is stuck, not supply, so it is replaced
 * rather than holding the job back for ever.
 */
function markIdleWhileJobsWait(
  found: { queued: QueuedJob[]; runners: RunnerView[] },
  since: EpochMillis,
): void {
  const waiting = found.queued.filter((job) => job.source === 'github' && job.queuedAt < since);
  if (waiting.length === 0) return;
  for (const runner of found.runners) {
    if (runner.state !== 'idle' || (runner.idleSince ?? runner.createdAt) >= since) continue;
    if (waiting.some((job) => runner.repo === undefined || runner.repo === job.repo)) runner.state = 'stuck';
  }
}
