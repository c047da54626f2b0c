import { classesSchema, type RunnerClasses } from '../../../src/config/classes.ts';
import type {
  Action,
  AdmitRunAction,
  CreateRunnerAction,
  DeleteRunnerAction,
} from '../../../src/model/action.ts';
import type {
  ClassSnapshot,
  LedgerSnapshot,
  QueuedJob,
  RunnerState,
  RunnerView,
} from '../../../src/model/ledger-snapshot.ts';

/** Small builders so each test states only what matters to it. */

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
