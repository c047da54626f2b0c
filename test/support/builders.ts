import { buildClassifier } from '../../src/classes/matching.ts';
import { classesSchema, type RunnerClasses } from '../../src/classes/schema.ts';
import { Ledger, type LedgerOptions } from '../../src/ledger/ledger.ts';
import type {
  Action,
  AdmitRunAction,
  CreateRunnerAction,
  DeleteRunnerAction,
} from '../../src/model/action.ts';
import type { JobEvent, JobIdentity } from '../../src/model/job.ts';
import type {
  ClassSnapshot,
  LedgerSnapshot,
  QueuedJob,
  RunnerState,
  RunnerView,
} from '../../src/model/ledger-snapshot.ts';
import type { RunnerObservation } from '../../src/model/runner-observation.ts';
import { type RunnerTimeouts, runnerHealthRules } from '../../src/planner/runner-health.ts';

/**
 * Small builders so each test states only what matters to it: the planner's snapshots, the sources'
 * job events, the pod watch's observations and a ledger to feed them to.
 */

export const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
export const seconds = (n: number) => n * 1000;

export function classes(input: Record<string, Record<string, unknown>>): RunnerClasses {
  const withMatch = Object.fromEntries(
    Object.entries(input).map(([name, value]) => [
      name,
      { match: { github: { labels: ['self-hosted', name] } }, ...value },
    ]),
  );
  return classesSchema.parse(withMatch);
}

export function job(key: string, options: Partial<QueuedJob> = {}): QueuedJob {
  return { key, source: 'github', repo: 'acme/app', queuedAt: NOW - seconds(60), ...options };
}

export function runner(name: string, state: RunnerState, options: Partial<RunnerView> = {}): RunnerView {
  return { name, namespace: 'gantry-runners', state, createdAt: NOW - seconds(600), ...options };
}

export function classSnapshot(options: Partial<ClassSnapshot> = {}): ClassSnapshot {
  return { queued: [], runners: [], admittedRuns: [], ...options };
}

export function snapshot(
  perClass: Record<string, Partial<ClassSnapshot>>,
  quotas: LedgerSnapshot['quotas'] = {},
): LedgerSnapshot {
  return {
    classes: Object.fromEntries(
      Object.entries(perClass).map(([name, value]) => [name, classSnapshot(value)]),
    ),
    quotas,
  };
}

export const creates = (actions: Action[]) =>
  actions.filter((action): action is CreateRunnerAction => action.kind === 'create-runner');
export const deletes = (actions: Action[]) =>
  actions.filter((action): action is DeleteRunnerAction => action.kind === 'delete-runner');
export const admits = (actions: Action[]) =>
  actions.filter((action): action is AdmitRunAction => action.kind === 'admit-run');

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** A GitHub job as the sources report it: job `id` of acme/app, labels self-hosted and lint. */
export function githubJob(id: number, overrides: Partial<JobIdentity> = {}): JobIdentity {
  return {
    source: 'github',
    key: `github:${id}`,
    repo: 'acme/app',
    labels: ['self-hosted', 'lint'],
    runId: '1',
    runAttempt: 1,
    untrusted: false,
    name: `job ${id}`,
    ...overrides,
  };
}

/** The job queued 30 s before NOW (or at `createdAt`), as a webhook said. */
export function queuedEvent(job: JobIdentity, createdAt = NOW - seconds(30)): JobEvent {
  return { kind: 'queued', job, via: 'webhook', createdAt };
}

/** The job started on `runnerName` 10 s before NOW (or at `startedAt`). */
export function startedEvent(job: JobIdentity, runnerName: string, startedAt = NOW - seconds(10)): JobEvent {
  return { kind: 'started', job, via: 'webhook', createdAt: NOW - seconds(30), startedAt, runnerName };
}

/** The job completed successfully on `runnerName` at NOW. */
export function completedEvent(job: JobIdentity, runnerName: string): JobEvent {
  return {
    kind: 'completed',
    job,
    via: 'webhook',
    createdAt: NOW - seconds(30),
    startedAt: NOW - seconds(10),
    completedAt: NOW,
    conclusion: 'success',
    runnerName,
  };
}

/** A runner pod of class lint as the pod watch reports it: Running since 15 s before NOW. */
export function runnerPod(name: string, overrides: Partial<RunnerObservation> = {}): RunnerObservation {
  return {
    name,
    namespace: 'gantry-runners',
    className: 'lint',
    phase: 'Running',
    createdAt: NOW - seconds(20),
    runningSince: NOW - seconds(15),
    deleting: false,
    ...overrides,
  };
}

/** A ledger classifying into `config`, with a 5 min start timeout and a 30 min capacity timeout. */
export function testLedger(
  config: RunnerClasses,
  options: Partial<LedgerOptions> & Partial<RunnerTimeouts> = {},
): Ledger {
  const { startTimeoutMs, capacityTimeoutMs, deadlineGraceMs, ...rest } = options;
  return new Ledger({
    classify: buildClassifier(config),
    health: runnerHealthRules({
      startTimeoutMs: startTimeoutMs ?? seconds(300),
      capacityTimeoutMs: capacityTimeoutMs ?? seconds(1800),
      deadlineGraceMs: deadlineGraceMs ?? seconds(60),
    }),
    ...rest,
  });
}
