import { describe, expect, it } from 'vitest';
import { creationsAllowed, spendCreationBudget } from '../../../src/classes/creation-budget.ts';
import { isDnsLabel } from '../../../src/model/kube-names.ts';
import { runnerNameFor } from '../../../src/model/runner-name.ts';
import { CHECK_AFTER_MS, plan } from '../../../src/planner/plan.ts';
import {
  admits,
  classes,
  countBy,
  creates,
  deletes,
  job,
  NOW,
  runner,
  seconds,
  snapshot,
} from '../../support/builders.ts';

describe('plan: supply for queued jobs', () => {
  it('creates one runner per queued job plus the warm pool', () => {
    const config = classes({ lint: { minIdle: 2 } });
    const actions = plan(snapshot({ lint: { queued: [job('github:1'), job('github:2')] } }), config, NOW);
    expect(creates(actions).map((a) => a.reason)).toEqual([
      'queued-jobs',
      'queued-jobs',
      'warm-pool',
      'warm-pool',
    ]);
    expect(creates(actions).map((a) => a.jobKey)).toEqual(['github:1', 'github:2', undefined, undefined]);
    for (const create of creates(actions)) {
      expect(create).toMatchObject({ className: 'lint', namespace: 'gantry-runners' });
      expect(create.runnerName).toBe(runnerNameFor('lint', create.nameSeed));
      expect(isDnsLabel(create.runnerName)).toBe(true);
      expect(create.repo).toBeUndefined();
    }
    expect(new Set(creates(actions).map((a) => a.runnerName)).size).toBe(4);
  });

  it('gives a job reported late, older than a job already served, a runner of its own', () => {
    const config = classes({ lint: {} });
    const late = job('github:1', { queuedAt: NOW - seconds(60) });
    const served = job('github:2', { queuedAt: NOW - seconds(30) });
    const actions = plan(
      snapshot({
        lint: {
          queued: [late, served],
          runners: [runner(runnerNameFor('lint', 'github:2'), 'starting', { plannedFor: 'github:2' })],
        },
      }),
      config,
      NOW,
    );
    expect(creates(actions).map((a) => a.jobKey)).toEqual(['github:1']);
  });

  it('counts a runner waiting for a node as supply: it is not replaced while it waits', () => {
    const config = classes({ lint: { maxRunners: 10 } });
    const waiting = runner('r1', 'starting', { plannedFor: 'github:1', waitingForCapacity: true });
    const actions = plan(snapshot({ lint: { queued: [job('github:1')], runners: [waiting] } }), config, NOW);
    expect(actions).toEqual([]);
  });

  it('removes a runner the cluster took away as lost, and replaces it for a job still queued', () => {
    const config = classes({ lint: { maxRunners: 2 } });
    const lost = runner('r1', 'failed', { plannedFor: 'github:1', lost: 'node-lost' });
    const actions = plan(snapshot({ lint: { queued: [job('github:1')], runners: [lost] } }), config, NOW);
    expect(deletes(actions)).toMatchObject([{ runnerName: 'r1', reason: 'lost' }]);
    expect(creates(actions)).toMatchObject([{ jobKey: 'github:1' }]);
  });

  it('counts idle and starting runners as supply, busy ones not', () => {
    const config = classes({ lint: { minIdle: 1 } });
    const runners = [runner('a', 'idle'), runner('b', 'starting'), runner('c', 'busy')];
    const queued = [job('github:1'), job('github:2')];
    expect(creates(plan(snapshot({ lint: { queued, runners } }), config, NOW))).toHaveLength(1);
  });

  it('does nothing for a class with neither demand nor runners', () => {
    expect(plan(snapshot({}), classes({ lint: {}, build: {} }), NOW)).toEqual([]);
  });

  it('stays within maxRunners, counting every runner pod until it is gone, terminating ones too', () => {
    const config = classes({ lint: { maxRunners: 8 } });
    const runners = [
      runner('busy', 'busy'),
      runner('failed', 'failed'),
      runner('finished', 'finished'),
      runner('stuck', 'stuck'),
      runner('gone-1', 'terminating'),
      runner('gone-2', 'terminating'),
    ];
    const queued = Array.from({ length: 10 }, (_, i) => job(`github:${i}`));
    const actions = plan(snapshot({ lint: { queued, runners } }), config, NOW);
    expect(creates(actions)).toHaveLength(2);
    expect(deletes(actions).map((a) => [a.runnerName, a.reason])).toEqual([
      ['failed', 'failed'],
      ['finished', 'finished'],
      ['stuck', 'stuck'],
    ]);
  });

  it('creates nothing when the class is already above maxRunners after a config change', () => {
    const config = classes({ lint: { maxRunners: 1 } });
    const runners = [runner('a', 'busy'), runner('b', 'busy')];
    expect(creates(plan(snapshot({ lint: { queued: [job('github:1')], runners } }), config, NOW))).toEqual(
      [],
    );
  });
});

describe('plan: creation rate', () => {
  it('creates no more than the token bucket holds, and the bucket refills', () => {
    const config = classes({ lint: { maxCreatePerSecond: 2, maxRunners: 100 } });
    const queued = Array.from({ length: 10 }, (_, i) => job(`github:${i}`));
    expect(creates(plan(snapshot({ lint: { queued } }), config, NOW))).toHaveLength(2);
    const spent = spendCreationBudget(undefined, 2, NOW, 2);
    expect(creates(plan(snapshot({ lint: { queued, budget: spent } }), config, NOW))).toHaveLength(0);
    expect(creates(plan(snapshot({ lint: { queued, budget: spent } }), config, NOW + 500))).toHaveLength(1);
    expect(
      creates(plan(snapshot({ lint: { queued, budget: spent } }), config, NOW + seconds(60))),
    ).toHaveLength(2);
  });

  it('lets a rate below one per second create one runner at a time', () => {
    expect(creationsAllowed(undefined, 0.2, NOW)).toBe(1);
    const spent = spendCreationBudget(undefined, 0.2, NOW, 1);
    expect(creationsAllowed(spent, 0.2, NOW + seconds(4))).toBe(0);
    expect(creationsAllowed(spent, 0.2, NOW + seconds(5))).toBe(1);
    // A clock that steps back neither refills nor drains the bucket.
    expect(creationsAllowed(spent, 0.2, NOW - seconds(100))).toBe(0);
  });
});

describe('plan: namespace quota', () => {
  const queued = Array.from({ length: 10 }, (_, i) => job(`github:${i}`));

  it('fits new runners into what the ResourceQuota has left', () => {
    const config = classes({ lint: { maxRunners: 100, maxCreatePerSecond: 100 } });
    const bySize = { 'requests.cpu': 3500, 'requests.memory': 100 * 2 ** 30, pods: 50 };
    expect(
      creates(plan(snapshot({ lint: { queued } }, { 'gantry-runners': { remaining: bySize } }), config, NOW)),
    ).toHaveLength(3);
    const byPods = { remaining: { pods: 4 } };
    expect(
      creates(plan(snapshot({ lint: { queued } }, { 'gantry-runners': byPods }), config, NOW)),
    ).toHaveLength(4);
    const elsewhere = { other: { remaining: { pods: 0 } } };
    expect(creates(plan(snapshot({ lint: { queued } }, elsewhere), config, NOW))).toHaveLength(10);
  });

  it('creates nothing in a namespace backed off after a quota refusal, until the back-off ends', () => {
    const config = classes({ lint: { maxRunners: 100, maxCreatePerSecond: 100 } });
    const quotas = { 'gantry-runners': { remaining: {}, backoffUntil: NOW + seconds(30) } };
    expect(creates(plan(snapshot({ lint: { queued } }, quotas), config, NOW))).toHaveLength(0);
    expect(creates(plan(snapshot({ lint: { queued } }, quotas), config, NOW + seconds(30)))).toHaveLength(10);
  });

  it('creates no runner of a class whose registrations are held, until the hold ends; other classes go on', () => {
    const config = classes({
      lint: { maxRunners: 100, maxCreatePerSecond: 100, minIdle: 2 },
      build: { maxRunners: 100, maxCreatePerSecond: 100 },
    });
    const held = { lint: { queued, creationsHeldUntil: NOW + seconds(5) }, build: { queued } };
    expect(countBy(creates(plan(snapshot(held), config, NOW)), (a) => a.className)).toEqual({ build: 10 });
    expect(countBy(creates(plan(snapshot(held), config, NOW + seconds(5))), (a) => a.className)).toEqual({
      build: 10,
      lint: 12,
    });
  });

  it('starts one runner at a time, once the hold is over, while the class’s runners fail to start', () => {
    const config = classes({ lint: { maxRunners: 100, maxCreatePerSecond: 100, minIdle: 2 } });
    const failing = { queued, creationsHeldUntil: NOW + seconds(5), startsFailing: true };
    expect(creates(plan(snapshot({ lint: failing }), config, NOW))).toHaveLength(0);
    expect(creates(plan(snapshot({ lint: failing }), config, NOW + seconds(5)))).toHaveLength(1);
    // The one that started is the probe: nothing more until it runs (or fails, and the hold doubles).
    const probing = { ...failing, runners: [runner('probe', 'starting', { plannedFor: 'github:0' })] };
    expect(creates(plan(snapshot({ lint: probing }), config, NOW + seconds(5)))).toHaveLength(0);
  });

  it('shares one namespace quota between its classes by turns', () => {
    const config = classes({
      big: { maxRunners: 100, maxCreatePerSecond: 100, resources: { requests: { cpu: '2' } } },
      small: { maxRunners: 100, maxCreatePerSecond: 100, resources: { requests: { cpu: '500m' } } },
      other: { namespace: 'elsewhere', maxRunners: 100, maxCreatePerSecond: 100 },
    });
    const quotas = { 'gantry-runners': { remaining: { 'requests.cpu': 5000 } } };
    const actions = plan(
      snapshot({ big: { queued }, small: { queued }, other: { queued } }, quotas),
      config,
      NOW,
    );
    // Turns: big 2000, small 500, big 2000, small 500 → 5000 used; big cannot fit again, small has none left.
    expect(countBy(creates(actions), (a) => a.className)).toEqual({ big: 2, small: 2, other: 10 });
  });
});

describe('plan: scale-down', () => {
  const config = classes({ lint: { minIdle: 1, idleTimeout: 300 } });
  const idle = (name: string, idleFor: number) => runner(name, 'idle', { idleSince: NOW - seconds(idleFor) });

  it('removes idle runners above minIdle once idle for idleTimeout, longest idle first', () => {
    const runners = [idle('a', 400), idle('b', 900), idle('c', 301), idle('d', 100), runner('e', 'busy')];
    const actions = plan(snapshot({ lint: { runners } }), config, NOW);
    expect(deletes(actions).map((a) => [a.runnerName, a.reason])).toEqual([
      ['a', 'idle-timeout'],
      ['b', 'idle-timeout'],
      ['c', 'idle-timeout'],
    ]);
    const fewer = plan(
      snapshot({ lint: { runners: [idle('a', 400), idle('b', 900), idle('c', 200)] } }),
      config,
      NOW,
    );
    // Three idle, one to keep: the two longest idle go.
    expect(deletes(fewer).map((a) => a.runnerName)).toEqual(['a', 'b']);
  });

  it('keeps idle runners that queued jobs are about to take', () => {
    const runners = [idle('a', 900), idle('b', 900)];
    expect(deletes(plan(snapshot({ lint: { runners, queued: [job('github:1')] } }), config, NOW))).toEqual(
      [],
    );
  });

  it('never deletes a busy runner, even of a class that is gone', () => {
    const runners = [
      runner('a', 'busy'),
      runner('b', 'idle'),
      runner('c', 'starting'),
      runner('d', 'failed'),
    ];
    const actions = plan(snapshot({ retired: { runners, queued: [job('github:1')] } }), config, NOW);
    expect(actions.filter((action) => action.className === 'retired')).toEqual([
      {
        kind: 'delete-runner',
        className: 'retired',
        namespace: 'gantry-runners',
        runnerName: 'b',
        reason: 'class-removed',
      },
      {
        kind: 'delete-runner',
        className: 'retired',
        namespace: 'gantry-runners',
        runnerName: 'c',
        reason: 'class-removed',
      },
      {
        kind: 'delete-runner',
        className: 'retired',
        namespace: 'gantry-runners',
        runnerName: 'd',
        reason: 'failed',
      },
    ]);
  });
});

describe('plan: repo-scoped runners and fairness', () => {
  it('creates repo-scoped runners for their repository; another repository’s idle runner does not count', () => {
    const config = classes({ build: { scope: 'repo' } });
    const runners = [runner('a', 'idle', { repo: 'acme/api' })];
    const queued = [job('github:1', { repo: 'acme/app' }), job('github:2', { repo: 'acme/api' })];
    const actions = plan(snapshot({ build: { queued, runners } }), config, NOW);
    expect(creates(actions).map((a) => a.repo)).toEqual(['acme/app']);
  });

  it('shares a saturated class max-min fairly across repositories', () => {
    const config = classes({ build: { scope: 'repo', maxRunners: 6, maxCreatePerSecond: 100 } });
    const queued = [
      ...Array.from({ length: 20 }, (_, i) =>
        job(`github:big-${i}`, { repo: 'acme/big', queuedAt: NOW - seconds(900) }),
      ),
      job('github:one', { repo: 'acme/one' }),
      job('github:two-1', { repo: 'acme/two' }),
      job('github:two-2', { repo: 'acme/two' }),
    ];
    const counts = countBy(creates(plan(snapshot({ build: { queued } }), config, NOW)), (a) => a.repo ?? '');
    expect(counts).toEqual({ 'acme/big': 3, 'acme/one': 1, 'acme/two': 2 });
  });

  it('gives a repository that holds fewer runners the odd slot', () => {
    const config = classes({ build: { scope: 'repo', maxRunners: 4, maxCreatePerSecond: 100 } });
    const runners = [runner('x', 'busy', { repo: 'acme/a' })];
    const queued = [
      ...Array.from({ length: 5 }, (_, i) =>
        job(`github:a-${i}`, { repo: 'acme/a', queuedAt: NOW - seconds(900) }),
      ),
      ...Array.from({ length: 5 }, (_, i) => job(`github:b-${i}`, { repo: 'acme/b' })),
    ];
    const counts = countBy(
      creates(plan(snapshot({ build: { queued, runners } }), config, NOW)),
      (a) => a.repo ?? '',
    );
    expect(counts).toEqual({ 'acme/a': 1, 'acme/b': 2 });
  });

  it('serves the oldest jobs first when fairness is off', () => {
    const config = classes({ build: { scope: 'repo', maxRunners: 3, fairness: { enabled: false } } });
    const queued = [
      job('github:new', { repo: 'acme/b', queuedAt: NOW - seconds(1) }),
      ...Array.from({ length: 5 }, (_, i) =>
        job(`github:old-${i}`, { repo: 'acme/a', queuedAt: NOW - seconds(100 - i) }),
      ),
    ];
    const actions = creates(plan(snapshot({ build: { queued } }), config, NOW));
    expect(actions.map((a) => a.jobKey)).toEqual(['github:old-0', 'github:old-1', 'github:old-2']);
  });

  it('caps a repository at maxShare while others wait, but not when nobody else does', () => {
    const config = classes({
      build: { scope: 'repo', maxRunners: 10, maxCreatePerSecond: 100, fairness: { maxShare: 0.3 } },
    });
    const runners = [runner('a1', 'busy', { repo: 'acme/a' }), runner('a2', 'busy', { repo: 'acme/a' })];
    const many = (repo: string, n: number) =>
      Array.from({ length: n }, (_, i) => job(`github:${repo}-${i}`, { repo }));
    const contended = plan(
      snapshot({ build: { runners, queued: [...many('acme/a', 8), ...many('acme/b', 5)] } }),
      config,
      NOW,
    );
    // Eight slots left and a share of 3: a (holding 2) gets 1 and b 3 within it; the other 4 go by turns.
    expect(countBy(creates(contended), (a) => a.repo ?? '')).toEqual({ 'acme/a': 3, 'acme/b': 5 });
    const tight = classes({
      build: { scope: 'repo', maxRunners: 6, maxCreatePerSecond: 100, fairness: { maxShare: 0.5 } },
    });
    const saturated = plan(
      snapshot({ build: { runners, queued: [...many('acme/a', 8), ...many('acme/b', 8)] } }),
      tight,
      NOW,
    );
    expect(countBy(creates(saturated), (a) => a.repo ?? '')).toEqual({ 'acme/a': 1, 'acme/b': 3 });
    const alone = plan(snapshot({ build: { runners, queued: many('acme/a', 8) } }), config, NOW);
    expect(creates(alone)).toHaveLength(8);
  });
});

describe('plan: Tekton admission', () => {
  const config = classes({
    pipelines: {
      match: { tekton: { matchLabels: { team: 'web' } } },
      maxRunners: 3,
      maxCreatePerSecond: 100,
    },
  });
  const run = (key: string, namespace: string, age: number) =>
    job(key, { source: 'tekton', repo: namespace, queuedAt: NOW - seconds(age) });

  it('admits pending runs within maxRunners, counting runs already admitted, fairly across namespaces', () => {
    const queued = [
      run('tekton:web/a', 'web', 50),
      run('tekton:web/b', 'web', 40),
      run('tekton:api/c', 'api', 10),
    ];
    const actions = plan(
      snapshot({ pipelines: { queued, admittedRuns: [{ key: 'tekton:web/z', repo: 'web' }] } }),
      config,
      NOW,
    );
    expect(actions).toEqual([
      { kind: 'admit-run', className: 'pipelines', runKey: 'tekton:api/c', repo: 'api' },
      { kind: 'admit-run', className: 'pipelines', runKey: 'tekton:web/a', repo: 'web' },
    ]);
  });

  it('admits under a quota back-off, which only holds runner pods back', () => {
    const quotas = { 'gantry-runners': { remaining: { pods: 0 }, backoffUntil: NOW + seconds(60) } };
    const actions = plan(
      snapshot({ pipelines: { queued: [run('tekton:web/a', 'web', 5)] } }, quotas),
      config,
      NOW,
    );
    expect(admits(actions)).toHaveLength(1);
  });

  it('cancels runs queued past maxQueueAge instead of admitting them, and admits the next in line', () => {
    const aged = classes({
      pipelines: { match: { tekton: { matchLabels: { team: 'web' } } }, maxRunners: 1, maxQueueAge: 600 },
    });
    const queued = [run('tekton:web/old', 'web', 601), run('tekton:web/new', 'web', 30)];
    expect(plan(snapshot({ pipelines: { queued } }), aged, NOW)).toEqual([
      {
        kind: 'cancel-run',
        className: 'pipelines',
        runKey: 'tekton:web/old',
        repo: 'web',
        reason: 'max-queue-age',
      },
      { kind: 'admit-run', className: 'pipelines', runKey: 'tekton:web/new', repo: 'web' },
    ]);
    // Without maxQueueAge a run waits as long as it takes.
    expect(plan(snapshot({ pipelines: { queued } }), config, NOW)).toEqual([
      { kind: 'admit-run', className: 'pipelines', runKey: 'tekton:web/old', repo: 'web' },
      { kind: 'admit-run', className: 'pipelines', runKey: 'tekton:web/new', repo: 'web' },
    ]);
  });
});

describe('plan: names and repeat passes', () => {
  const config = classes({ build: { scope: 'repo', maxRunners: 10 } });
  const queued = [job('github:1', { repo: 'acme/a' }), job('github:2', { repo: 'acme/a' })];

  it('plans the same names again for the same snapshot, so a repeated create collides with itself', () => {
    const first = creates(plan(snapshot({ build: { queued } }), config, NOW));
    const again = creates(plan(snapshot({ build: { queued } }), config, NOW + seconds(1)));
    expect(again.map((a) => a.runnerName)).toEqual(first.map((a) => a.runnerName));
  });

  it('does not plan a runner twice once the ledger shows it starting, and never reuses a name in use', () => {
    const first = creates(plan(snapshot({ build: { queued } }), config, NOW));
    const [one] = first;
    if (!one) throw new Error('expected a create');
    const runners = [runner(one.runnerName, 'starting', { repo: 'acme/a' })];
    const next = creates(plan(snapshot({ build: { queued, runners } }), config, NOW));
    expect(next).toHaveLength(1);
    expect(next[0]?.runnerName).not.toBe(one.runnerName);
    expect(next[0]?.runnerName).toBe(first[1]?.runnerName);
  });

  it('gives a job whose runner’s pod is gone a runner of a new name, not the retired one', () => {
    const [one] = creates(plan(snapshot({ build: { queued: queued.slice(0, 1) } }), config, NOW));
    if (!one) throw new Error('expected a create');
    const retired = {
      ...snapshot({ build: { queued: queued.slice(0, 1) } }),
      retiredNames: new Set([one.runnerName]),
    };
    const [again] = creates(plan(retired, config, NOW));
    expect(again).toMatchObject({ jobKey: one.jobKey, nameSeed: `${one.nameSeed}#1` });
    expect(again?.runnerName).not.toBe(one.runnerName);
  });

  it('names runners with the configured prefix and this run’s generation, which a later run does not share', () => {
    const warm = classes({ lint: { minIdle: 1 } });
    const named = (generation: string) =>
      creates(
        plan(
          { ...snapshot({ lint: { queued: [job('github:1')] } }), naming: { prefix: 'ci-acme', generation } },
          warm,
          NOW,
        ),
      );
    const first = named('g1');
    for (const create of first) {
      expect(create.runnerName).toMatch(/^ci-acme-lint-[0-9a-f]{10}$/);
      expect(create.namePrefix).toBe('ci-acme');
      expect(create.runnerName).toBe(runnerNameFor('lint', create.nameSeed, 'ci-acme'));
    }
    expect(first.map((a) => a.nameSeed)).toEqual(['github:1@g1', 'warm:*@g1']);
    // The same run plans the same names again; a restarted one (another generation) never does.
    expect(named('g1').map((a) => a.runnerName)).toEqual(first.map((a) => a.runnerName));
    const restarted = named('g2').map((a) => a.runnerName);
    expect(restarted.filter((name) => first.some((a) => a.runnerName === name))).toEqual([]);
  });
});

describe('plan: runners whose JIT Secret was not seen written', () => {
  const config = classes({ lint: { maxRunners: 10 } });

  it('has an unconfirmed runner checked once its pod is old enough, and keeps counting it meanwhile', () => {
    const adopted = runner('r-old', 'idle', {
      unconfirmed: true,
      podUid: 'u1',
      createdAt: NOW - CHECK_AFTER_MS,
    });
    const young = runner('r-young', 'starting', { unconfirmed: true, podUid: 'u2', createdAt: NOW - 1_000 });
    const actions = plan(
      snapshot({ lint: { queued: [job('github:1'), job('github:2')], runners: [young, adopted] } }),
      config,
      NOW,
    );
    expect(actions).toEqual([
      {
        kind: 'check-runner',
        className: 'lint',
        namespace: 'gantry-runners',
        runnerName: 'r-old',
        podUid: 'u1',
      },
    ]);
  });

  it('removes a runner found without its Secret, and replaces it for the job that waits', () => {
    const halfMade = runner('r1', 'failed', { halfMade: true, plannedFor: 'github:1' });
    const actions = plan(snapshot({ lint: { queued: [job('github:1')], runners: [halfMade] } }), config, NOW);
    expect(deletes(actions)).toEqual([
      {
        kind: 'delete-runner',
        className: 'lint',
        namespace: 'gantry-runners',
        runnerName: 'r1',
        reason: 'half-made',
      },
    ]);
    expect(creates(actions).map((a) => a.jobKey)).toEqual(['github:1']);
  });
});
