import type { RunnerClasses } from '../classes/schema.ts';
import type { LedgerChange } from '../ledger/ledger.ts';
import { runnerHourlyRate } from './cost.ts';
import type { CostMeter } from './cost-meter.ts';

/**
 * Feeds the cost meter one ledger change: the one way runner lives and their jobs become cost, for
 * the metrics and for the simulator alike. `sourceOf` names the source a class's cost is counted under.
 */
export function meterLedgerChange(
  meter: CostMeter,
  change: LedgerChange,
  classes: RunnerClasses,
  sourceOf: (className: string) => string,
): void {
  switch (change.kind) {
    case 'job-started': {
      const { job } = change;
      if (job.runnerName && job.startedAt !== undefined) meter.jobStarted(job.runnerName, job.startedAt);
      break;
    }
    case 'job-completed':
      if (change.runnerName) meter.jobCompleted(change.runnerName, change.startedAt, change.completedAt);
      break;
    case 'runner-running': {
      const { runner } = change;
      const runnerClass = classes[runner.className];
      if (!runnerClass) break;
      meter.running(
        runner.name,
        { className: runner.className, source: sourceOf(runner.className) },
        runnerHourlyRate(runnerClass),
        runner.runningSince,
      );
      break;
    }
    case 'runner-ended':
      meter.ended(change.runner.name, change.endedAt);
      break;
    case 'runner-gone':
      meter.gone(change.runner.name, change.at, change.runner.endedAt);
      break;
    default:
      break;
  }
}
