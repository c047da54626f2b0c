import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { creationsAllowed, spendCreationBudget } from '../../../src/classes/creation-budget.ts';
import { runnerQuotaUsage } from '../../../src/classes/quota-usage.ts';
import type { RunnerClasses } from '../../../src/classes/schema.ts';
import type { Action } from '../../../src/model/action.ts';
import { isDnsLabel } from '../../../src/model/kube-names.ts';
import type {
  ClassSnapshot,
  LedgerSnapshot,
  QueuedJob,
  QuotaResource,
  RunnerState,
  RunnerView,
} from '../../../src/model/ledger-snapshot.ts';
import { runnerNameFor } from '../../../src/model/runner-name.ts';
import { plan } from '../../../src/planner/plan.ts';
import { admits, classes, countBy, creates, deletes, NOW, seconds } from '../../support/builders.ts';

const CLASS_NAMES = ['build', 'lint', 'test'] as const;
const REPOS = ['acme/a', 'acme/b', 'acme/c', 'acme/d'];
const STATES: RunnerState[] = ['starting', 'idle', 'busy', 'terminating', 'failed', 'finished', 'stuck'];

// ── Generators ─────────────────────────────────────────────────────────────────────────────────────

const classConfig = fc
  .record({
    scope: fc.constantFrom('org', 'repo'),
    maxRunners: fc.integer({ min: 0, max: 12 }),
    minIdle: fc.integer({ min: 0, max: 4 }),
    maxCreatePerSecond: fc.constantFrom(0.5, 1, 3, 20),
    idleTimeout: fc.constantFrom(0, 60, 600),
    namespace: fc.constantFrom('ns-1', 'ns-2'),
    cpu: fc.constantFrom('250m', '1', '2'),
    fairness: fc.record({ enabled: fc.boolean(), maxShare: fc.constantFrom(0.25, 0.5, 1) }),
    tekton: fc.boolean(),
  })
  .map(({ scope, maxRunners, minIdle, cpu, tekton, ...rest }) => ({
    ...rest,
    scope,
    maxRunners,
    minIdle: scope === 'repo' ? 0 : Math.min(minIdle, maxRunners),
    resources: { requests: { cpu, memory: '1Gi' } },
    ...(tekton
      ? { match: { github: { labels: ['self-hosted'] }, tekton: { matchLabels: { ci: 'yes' } } } }
      : {}),
  }));

const configArb = fc
  .uniqueArray(fc.constantFrom(...CLASS_NAMES), { minLength: 1, maxLength: 3 })
  .chain((names) => fc.tuple(...names.map((name) => classConfig.map((config) => [name, config] as const))))
  .map((entries) => {
    // Distinct label sets per class so the config is valid whatever the class names are.
    const input = Object.fromEntries(
      entries.map(([name, config]) => [
        name,
        'match' in config
          ? {
              ...config,
              match: { github: { labels: ['self-hosted', name] }, tekton: { matchLabels: { ci: name } } },
            }
          : config,
      ]),
    );
    return classes(input);
  });

const runnerArb = fc.record({
  state: fc.constantFrom(...STATES),
  repo: fc.constantFrom(...REPOS),
  namespace: fc.constantFrom('ns-1', 'ns-2'),
  createdAgo: fc.integer({ min: 0, max: 3600 }),
  idleAgo: fc.option(fc.integer({ min: 0, max: 3600 }), { nil: undefined }),
  // Some runners carry the names the planner itself would pick, so reuse would show.
  seed: fc.option(fc.record({ org: fc.boolean(), index: fc.integer({ min: 0, max: 3 }) }), {
    nil: undefined,
  }),
});

const jobArb = fc.record({
  repo: fc.constantFrom(...REPOS),
  source: fc.constantFrom<QueuedJob['source']>('github', 'github', 'tekton'),
  ago: fc.integer({ min: 0, max: 3600 }),
});

const classSnapshotArb = (className: string) =>
  fc
    .record({
      runners: fc.array(runnerArb, { maxLength: 14 }),
      queued: fc.array(jobArb, { maxLength: 25 }),
      admitted: fc.array(fc.constantFrom(...REPOS), { maxLength: 4 }),
      budget: fc.option(
        fc.record({
          tokens: fc.double({ min: -2, max: 20, noNaN: true }),
          ago: fc.integer({ min: 0, max: 5000 }),
        }),
        { nil: undefined },
      ),
    })
    .map(
      ({ runners, queued, admitted, budget }): ClassSnapshot => ({
        runners: uniqueByName(
          runners.map(
            (r, i): RunnerView => ({
              name: r.seed
                ? runnerNameFor(className, `${r.seed.org ? '*' : r.repo}#${r.seed.index}`)
                : `${className}-r${i}`,
              namespace: r.namespace,
              state: r.state,
              createdAt: NOW - seconds(r.createdAgo),
              ...(r.idleAgo !== undefined ? { idleSince: NOW - seconds(r.idleAgo) } : {}),
              repo: r.repo,
            }),
          ),
        ),
        queued: queued.map((j, i) => ({
          key: `${j.source}:${className}-${i}`,
          source: j.source,
          repo: j.repo,
          queuedAt: NOW - seconds(j.ago),
        })),
        admittedRuns: admitted.map((repo, i) => ({ key: `tekton:${className}-admitted-${i}`, repo })),
        ...(budget ? { budget: { tokens: budget.tokens, at: NOW - budget.ago } } : {}),
      }),
    );

const quotaArb = fc.option(
  fc.record({
    remaining: fc.record(
      { pods: fc.integer({ min: 0, max: 10 }), 'requests.cpu': fc.integer({ min: 0, max: 12_000 }) },
      { requiredKeys: [] },
    ),
    backoff: fc.boolean(),
  }),
  { nil: undefined },
);

/** A config and a snapshot that covers its classes and, sometimes, a class no longer configured. */
const scenarioArb = configArb.chain((config) =>
  fc
    .record({
      perClass: fc.tuple(...CLASS_NAMES.map((name) => fc.option(classSnapshotArb(name), { nil: undefined }))),
      quotas: fc.tuple(quotaArb, quotaArb),
    })
    .map(({ perClass, quotas }) => {
      const snapshot: LedgerSnapshot = {
        classes: Object.fromEntries(
          CLASS_NAMES.flatMap((name, i) => (perClass[i] ? [[name, perClass[i]] as const] : [])),
        ),
        quotas: Object.fromEntries(
          (['ns-1', 'ns-2'] as const).flatMap((namespace, i) => {
            const quota = quotas[i];
            if (!quota) return [];
            return [
              [
                namespace,
                { remaining: quota.remaining, ...(quota.backoff ? { backoffUntil: NOW + 1 } : {}) },
              ],
            ];
          }),
        ),
      };
      return { config, snapshot };
    }),
);

function uniqueByName(runners: RunnerView[]): RunnerView[] {
  const seen = new Set<string>();
  return runners.filter((r) => !seen.has(r.name) && seen.add(r.name));
}

const newSlots = (actions: Action[], className: string) =>
  actions.filter((a) => (a.kind === 'create-runner' || a.kind === 'admit-run') && a.className === className)
    .length;

// ── Safety ─────────────────────────────────────────────────────────────────────────────────────────

describe('plan properties', () => {
  it('never goes above maxRunners, counting every runner that is not terminating and admitted runs', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const actions = plan(snapshot, config, NOW);
        for (const [name, runnerClass] of Object.entries(config)) {
          const classSnapshot = snapshot.classes[name];
          const occupied =
            (classSnapshot?.runners.filter((r) => r.state !== 'terminating').length ?? 0) +
            (classSnapshot?.admittedRuns.length ?? 0);
          const added = newSlots(actions, name);
          if (added > 0) expect(occupied + added).toBeLessThanOrEqual(runnerClass.maxRunners);
        }
      }),
    );
  });

  it('never deletes a busy or terminating runner, nor one that does not exist', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const actions = deletes(plan(snapshot, config, NOW));
        const byName = new Map(
          Object.values(snapshot.classes).flatMap((c) => c.runners.map((r) => [r.name, r] as const)),
        );
        for (const action of actions) {
          const target = byName.get(action.runnerName);
          expect(target).toBeDefined();
          expect(target?.state).not.toBe('busy');
          expect(target?.state).not.toBe('terminating');
          expect(action.namespace).toBe(target?.namespace);
        }
        expect(new Set(actions.map((a) => a.runnerName)).size).toBe(actions.length);
      }),
    );
  });

  it('deletes every failed and stuck runner', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const deleted = new Set(deletes(plan(snapshot, config, NOW)).map((a) => a.runnerName));
        for (const classSnapshot of Object.values(snapshot.classes)) {
          for (const r of classSnapshot.runners) {
            if (r.state === 'failed' || r.state === 'finished' || r.state === 'stuck')
              expect(deleted.has(r.name)).toBe(true);
          }
        }
      }),
    );
  });

  it('stays within each class’s creation rate and each namespace’s quota', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const actions = plan(snapshot, config, NOW);
        for (const [name, runnerClass] of Object.entries(config)) {
          const allowed = creationsAllowed(
            snapshot.classes[name]?.budget,
            runnerClass.maxCreatePerSecond,
            NOW,
          );
          expect(newSlots(actions, name)).toBeLessThanOrEqual(allowed);
        }
        for (const [namespace, quota] of Object.entries(snapshot.quotas)) {
          const inNamespace = creates(actions).filter((a) => a.namespace === namespace);
          if (quota.backoffUntil !== undefined) expect(inNamespace).toEqual([]);
          for (const [resource, left] of Object.entries(quota.remaining) as [QuotaResource, number][]) {
            const used = inNamespace.reduce((sum, a) => {
              const runnerClass = config[a.className];
              return sum + (runnerClass ? (runnerQuotaUsage(runnerClass)[resource] ?? 0) : 0);
            }, 0);
            expect(used).toBeLessThanOrEqual(left);
          }
        }
      }),
    );
  });

  it('names every new runner by its seed, uniquely, as a DNS label that no existing runner has', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const created = creates(plan(snapshot, config, NOW));
        const existing = new Set(
          Object.values(snapshot.classes).flatMap((c) => c.runners.map((r) => r.name)),
        );
        for (const action of created) {
          expect(action.runnerName).toBe(runnerNameFor(action.className, action.nameSeed));
          expect(isDnsLabel(action.runnerName)).toBe(true);
          expect(existing.has(action.runnerName)).toBe(false);
        }
        expect(new Set(created.map((a) => a.runnerName)).size).toBe(created.length);
      }),
    );
  });

  it('is deterministic: the same snapshot, in any order, gives the same actions', () => {
    fc.assert(
      fc.property(scenarioArb, ({ config, snapshot }) => {
        const actions = plan(snapshot, config, NOW);
        expect(plan(structuredClone(snapshot), structuredClone(config), NOW)).toEqual(actions);
        const reordered: LedgerSnapshot = {
          quotas: snapshot.quotas,
          classes: Object.fromEntries(
            Object.entries(snapshot.classes)
              .reverse()
              .map(([name, c]) => [
                name,
                {
                  ...c,
                  runners: [...c.runners].reverse(),
                  queued: [...c.queued].reverse(),
                  admittedRuns: [...c.admittedRuns].reverse(),
                },
              ]),
          ),
        };
        expect(plan(reordered, config, NOW)).toEqual(actions);
      }),
    );
  });

  // ── Fairness ───────────────────────────────────────────────────────────────────────────────────

  it('gives every waiting repository at least min(its demand, floor(capacity / repositories)) when saturated', () => {
    const saturated = fc.record({
      maxRunners: fc.integer({ min: 1, max: 30 }),
      demand: fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 8 }),
      busy: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
    });
    fc.assert(
      fc.property(saturated, ({ maxRunners, demand, busy }) => {
        const config = classes({
          build: { scope: 'repo', maxRunners: maxRunners + 24, maxCreatePerSecond: 1000 },
        });
        const repos = demand.map((_, i) => `acme/r${i}`);
        const queued = repos.flatMap((repo, i) =>
          Array.from({ length: demand[i] ?? 0 }, (_, k) => ({
            key: `github:${repo}-${k}`,
            source: 'github' as const,
            repo,
            queuedAt: NOW - seconds(100 * i + k),
          })),
        );
        // Busy runners shift who gets the odd slot but may not break the bound.
        const runners = repos.flatMap((repo, i) =>
          Array.from({ length: busy[i] ?? 0 }, (_, k) => ({
            name: `busy-${i}-${k}`,
            namespace: 'gantry-runners',
            state: 'busy' as const,
            createdAt: NOW,
            repo,
          })),
        );
        // Pad with busy runners in another repository so exactly maxRunners slots remain.
        const padding = Array.from({ length: 24 - runners.length }, (_, k) => ({
          name: `pad-${k}`,
          namespace: 'gantry-runners',
          state: 'busy' as const,
          createdAt: NOW,
          repo: 'acme/elsewhere',
        }));
        const snapshot = {
          classes: { build: { queued, runners: [...runners, ...padding], admittedRuns: [] } },
          quotas: {},
        };
        const created = creates(plan(snapshot, config, NOW));
        const total = demand.reduce((a, b) => a + b, 0);
        expect(created).toHaveLength(Math.min(total, maxRunners));
        const perRepo = countBy(created, (a) => a.repo ?? '');
        const floor = Math.floor(created.length / repos.length);
        repos.forEach((repo, i) => {
          expect(perRepo[repo] ?? 0).toBeGreaterThanOrEqual(Math.min(demand[i] ?? 0, floor));
        });
      }),
    );
  });

  // ── Liveness ───────────────────────────────────────────────────────────────────────────────────

  it('converges to demand when unconstrained: every job served, exactly minIdle idle, nothing more to do', () => {
    const unconstrained = fc.record({
      scope: fc.constantFrom('org', 'repo'),
      minIdle: fc.integer({ min: 0, max: 3 }),
      fairness: fc.boolean(),
      start: classSnapshotArb('build'),
    });
    fc.assert(
      fc.property(unconstrained, ({ scope, minIdle, fairness, start }) => {
        const config = classes({
          build: {
            scope,
            minIdle: scope === 'repo' ? 0 : minIdle,
            maxRunners: 1000,
            maxCreatePerSecond: 1000,
            idleTimeout: 60,
            fairness: { enabled: fairness },
            match: { github: { labels: ['build'] }, tekton: { matchLabels: { ci: 'yes' } } },
          },
        });
        let state: LedgerSnapshot = { classes: { build: start }, quotas: {} };
        let now = NOW;
        for (let pass = 0; pass < 4; pass++) {
          const actions = plan(state, config, now);
          state = simulate(state, actions, config, now);
          now += seconds(61);
        }
        const build = state.classes.build;
        expect(build?.queued).toEqual([]);
        const idle = build?.runners.filter((r) => r.state === 'idle' || r.state === 'starting') ?? [];
        expect(idle).toHaveLength(scope === 'repo' ? 0 : minIdle);
        expect(build?.runners.every((r) => r.state === 'idle' || r.state === 'busy')).toBe(true);
        expect(plan(state, config, now)).toEqual([]);
      }),
    );
  });
});

/**
 * What the world does with the planner's actions between two passes: deleted runners vanish, created
 * ones start and register, idle runners take queued jobs of their scope, admitted runs start.
 */
function simulate(
  snapshot: LedgerSnapshot,
  actions: Action[],
  config: RunnerClasses,
  now: number,
): LedgerSnapshot {
  const classesAfter: Record<string, ClassSnapshot> = {};
  for (const [name, before] of Object.entries(snapshot.classes)) {
    const runnerClass = config[name];
    const deleted = new Set(
      deletes(actions)
        .filter((a) => a.className === name)
        .map((a) => a.runnerName),
    );
    const admitted = new Set(
      admits(actions)
        .filter((a) => a.className === name)
        .map((a) => a.runKey),
    );
    const created = creates(actions).filter((a) => a.className === name);
    let queued = before.queued.filter((j) => !admitted.has(j.key));
    const runners: RunnerView[] = [
      ...before.runners.filter((r) => !deleted.has(r.name) && r.state !== 'terminating'),
      ...created.map((a) => ({
        name: a.runnerName,
        namespace: a.namespace,
        state: 'starting' as const,
        createdAt: now,
        ...(a.repo !== undefined ? { repo: a.repo } : {}),
      })),
    ].map((r) => (r.state === 'starting' ? { ...r, state: 'idle' as const, idleSince: now } : r));
    for (const r of runners) {
      if (r.state !== 'idle') continue;
      const taken = queued.find(
        (j) => j.source === 'github' && (runnerClass?.scope !== 'repo' || j.repo === r.repo),
      );
      if (!taken) continue;
      queued = queued.filter((j) => j !== taken);
      Object.assign(r, { state: 'busy', jobKey: taken.key });
    }
    classesAfter[name] = {
      queued,
      runners,
      admittedRuns: [
        ...before.admittedRuns,
        ...before.queued.filter((j) => admitted.has(j.key)).map((j) => ({ key: j.key, repo: j.repo })),
      ],
      budget: spendCreationBudget(
        before.budget,
        runnerClass?.maxCreatePerSecond ?? 1,
        now,
        created.length + admitted.size,
      ),
    };
  }
  return { classes: classesAfter, quotas: snapshot.quotas };
}
