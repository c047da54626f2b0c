import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createReconciler, type ReconcilerOptions } from '../../../src/controller/reconciler.ts';
import type { LedgerChange } from '../../../src/ledger/ledger.ts';
import type { CreateRunnerAction } from '../../../src/model/action.ts';
import type { RunnerObservation } from '../../../src/model/runner-observation.ts';
import type { CreateOutcome } from '../../../src/ports.ts';
import { classes, githubJob, NOW, queuedEvent, testLedger } from '../../support/builders.ts';
import { until } from '../../support/until.ts';

const config = classes({ lint: { maxRunners: 100, maxCreatePerSecond: 1000 } });

const queued = (id: number) => queuedEvent(githubJob(id), NOW);

/** An actuator whose creates stay in flight until the test lets them finish. */
function heldActuator() {
  const pending: { action: CreateRunnerAction; finish: () => void }[] = [];
  let inFlight = 0;
  let peak = 0;
  return {
    pending,
    get peak() {
      return peak;
    },
    create(action: CreateRunnerAction): Promise<CreateOutcome> {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      return new Promise((resolve) =>
        pending.push({
          action,
          finish: () => {
            inFlight -= 1;
            resolve({ kind: 'created' });
          },
        }),
      );
    },
    check: () => Promise.resolve({ kind: 'written' as const }),
    remove: () => Promise.resolve({ kind: 'deleted' as const }),
  };
}

function setUp(concurrency: number, options: Partial<ReconcilerOptions> = {}) {
  const ledger = testLedger(config, { startTimeoutMs: 60_000, deadlineGraceMs: 0 });
  const actuator = heldActuator();
  const reconciler = createReconciler({
    ledger,
    classes: config,
    actuator,
    logger: pino({ level: 'silent' }),
    now: () => NOW,
    concurrency,
    periodMs: 60_000,
    ...options,
  });
  const queue = (id: number) => {
    ledger.applyJobEvent(queued(id));
    reconciler.trigger();
  };
  return { ledger, actuator, reconciler, queue };
}

describe('reconciler', () => {
  it('plans and sends a new job’s create while earlier creates are still in flight', async () => {
    const { actuator, reconciler, queue } = setUp(8);
    reconciler.start();
    queue(1);
    await until('first create sent', async () => actuator.pending.length === 1);
    queue(2);
    await until('second create sent', async () => actuator.pending.length === 2);
    expect(actuator.pending.map((p) => p.action.jobKey)).toEqual(['github:1', 'github:2']);
    for (const p of actuator.pending) p.finish();
    await reconciler.stop();
  });

  it('never has more than `concurrency` actions in flight, and never plans a create twice', async () => {
    const { actuator, reconciler, queue } = setUp(3);
    reconciler.start();
    for (let id = 1; id <= 10; id++) queue(id);
    await until('three creates in flight', async () => actuator.pending.length === 3);
    let finished = 0;
    while (finished < 10) {
      await until('a create in flight', async () => actuator.pending.length > finished);
      actuator.pending[finished]?.finish();
      finished += 1;
      reconciler.trigger();
    }
    expect(actuator.peak).toBe(3);
    expect(new Set(actuator.pending.map((p) => p.action.jobKey)).size).toBe(10);
    expect(actuator.pending).toHaveLength(10);
    await reconciler.stop();
  });

  it('on stop, drops planned actions not yet begun and waits for those in flight', async () => {
    const { actuator, ledger, reconciler, queue } = setUp(2);
    reconciler.start();
    for (let id = 1; id <= 5; id++) queue(id);
    await until('two creates in flight', async () => actuator.pending.length === 2);
    let stopped = false;
    const stopping = reconciler.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    for (const p of actuator.pending) p.finish();
    await stopping;
    expect(actuator.pending).toHaveLength(2);
    // The dropped creates left no placeholder behind: the next leader plans them again.
    const planned = [...ledger.runnerNames()];
    expect(planned).toHaveLength(2);
  });

  it('holds a class’s creations after a registration failure, longer while failures repeat', async () => {
    const ledger = testLedger(config, { startTimeoutMs: 60_000, deadlineGraceMs: 0 });
    let clock = NOW;
    const attempts: number[] = [];
    let answer: CreateOutcome = { kind: 'registration-failed', error: new Error('GitHub 503') };
    const reconciler = createReconciler({
      ledger,
      classes: config,
      actuator: {
        create: async () => {
          attempts.push(clock);
          return answer;
        },
        check: () => Promise.resolve({ kind: 'written' as const }),
        remove: async () => ({ kind: 'deleted' }),
      },
      logger: pino({ level: 'silent' }),
      now: () => clock,
      periodMs: 60_000,
      registrationBackoffMs: [1_000, 4_000],
    });
    reconciler.start();
    ledger.applyJobEvent(queued(1));
    const passes = async (count: number) => {
      for (let i = 0; i < count; i++) {
        reconciler.trigger();
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    await passes(10);
    expect(attempts).toEqual([NOW]);
    clock = NOW + 999;
    await passes(5);
    expect(attempts).toHaveLength(1);
    clock = NOW + 1_000;
    await passes(5);
    // Second failure: held twice as long.
    expect(attempts).toEqual([NOW, NOW + 1_000]);
    clock = NOW + 2_999;
    await passes(5);
    expect(attempts).toHaveLength(2);
    // The CI system says when it takes registrations again: that time wins.
    answer = { kind: 'registration-failed', error: new Error('rate limit'), retryAt: NOW + 60_000 };
    clock = NOW + 3_000;
    await passes(5);
    expect(attempts).toHaveLength(3);
    clock = NOW + 59_999;
    await passes(5);
    expect(attempts).toHaveLength(3);
    answer = { kind: 'created' };
    clock = NOW + 60_000;
    await passes(5);
    expect(attempts).toEqual([NOW, NOW + 1_000, NOW + 3_000, NOW + 60_000]);
    // A success releases the hold at once: the next job's runner is made without waiting.
    ledger.applyJobEvent(queued(2));
    await passes(5);
    expect(attempts).toHaveLength(5);
    await reconciler.stop();
  });

  describe('runners that cannot start', () => {
    function failingSetUp(answer: () => CreateOutcome) {
      const ledger = testLedger(config, { startTimeoutMs: 60_000, deadlineGraceMs: 0 });
      const clock = { now: NOW };
      const created: CreateRunnerAction[] = [];
      const reported: LedgerChange[] = [];
      const reconciler = createReconciler({
        ledger,
        classes: config,
        actuator: {
          create: async (action) => {
            created.push(action);
            return answer();
          },
          check: () => Promise.resolve({ kind: 'written' as const }),
          remove: async () => ({ kind: 'deleted' }),
        },
        logger: pino({ level: 'silent' }),
        now: () => clock.now,
        periodMs: 60_000,
        startFailureBackoffMs: [1_000, 4_000],
        onChange: (change) => reported.push(change),
      });
      const passes = async (count = 5) => {
        for (let i = 0; i < count; i++) {
          reconciler.trigger();
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      };
      /** The pod watch reports the runner's pod, as the controller passes it on. */
      const observe = (action: CreateRunnerAction, extra: Partial<RunnerObservation>) => {
        const observation: RunnerObservation = {
          name: action.runnerName,
          namespace: action.namespace,
          className: action.className,
          phase: 'Pending',
          createdAt: clock.now,
          deleting: false,
          ...extra,
        };
        for (const change of ledger.observeRunner(observation)) reconciler.observe(change);
      };
      return { ledger, clock, created, reported, reconciler, passes, observe };
    }

    it('holds the class after a pod the apiserver refuses, longer while refusals repeat', async () => {
      const refusal: CreateOutcome = {
        kind: 'refused',
        detail: 'Forbidden',
        message: 'violates PodSecurity "restricted:latest": privileged (container "dind")',
      };
      const { ledger, clock, created, reported, reconciler, passes } = failingSetUp(() => refusal);
      reconciler.start();
      ledger.applyJobEvent(queued(1));
      await passes(10);
      expect(created).toHaveLength(1);
      expect(reported).toMatchObject([
        { kind: 'runner-start-failed', failure: { reason: 'refused', detail: 'Forbidden' } },
      ]);
      clock.now = NOW + 999;
      await passes();
      expect(created).toHaveLength(1);
      clock.now = NOW + 1_000;
      await passes();
      expect(created).toHaveLength(2);
      clock.now = NOW + 2_999;
      await passes();
      expect(created).toHaveLength(2);
      clock.now = NOW + 3_000;
      await passes();
      expect(created).toHaveLength(3);
      await reconciler.stop();
    });

    it('counts a burst of pods whose image does not pull once, then tries one at a time until one runs', async () => {
      const { ledger, clock, created, reconciler, passes, observe } = failingSetUp(() => ({
        kind: 'created',
      }));
      reconciler.start();
      for (const id of [1, 2, 3]) ledger.applyJobEvent(queued(id));
      await passes();
      expect(created).toHaveLength(3);
      const pullFailure = {
        startFailure: { reason: 'image-pull', detail: 'ErrImagePull', container: 'runner' },
      } as const;
      for (const action of created) observe(action, pullFailure);
      // The failed pods go (the planner deletes failed runners), and nothing new comes during the hold.
      await passes();
      expect(created).toHaveLength(3);
      // One hold of the first length, not three doublings: past it, one probe.
      clock.now = NOW + 1_000;
      await passes();
      expect(created).toHaveLength(4);
      for (const action of created.slice(3)) observe(action, pullFailure);
      clock.now = NOW + 2_999;
      await passes();
      expect(created).toHaveLength(4);
      clock.now = NOW + 3_000;
      await passes();
      expect(created).toHaveLength(5);
      // The image pulls now: the probe runs, and the class makes runners for every waiting job again.
      const probe = created[4] as CreateRunnerAction;
      observe(probe, { phase: 'Running', runningSince: clock.now });
      await passes();
      expect(created).toHaveLength(7);
      await reconciler.stop();
    });
  });

  it('plans nothing while a watch feeding the ledger is reconnecting', async () => {
    let watchesOpen = false;
    const { ledger, actuator, reconciler } = setUp(8, { periodMs: 5, ready: () => watchesOpen });
    reconciler.start();
    ledger.applyJobEvent(queued(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(actuator.pending).toHaveLength(0);
    watchesOpen = true;
    await until('create sent once the watches are open', async () => actuator.pending.length === 1, 3_000, 5);
    for (const p of actuator.pending) p.finish();
    await reconciler.stop();
  });

  it('keeps a runner the CI system refused to remove as busy, and removes it once its pod finishes', async () => {
    const ledger = testLedger(config, { startTimeoutMs: 60_000, deadlineGraceMs: 0 });
    const removes: string[] = [];
    const reconciler = createReconciler({
      ledger,
      // No warm pool and an idle timeout of 0: an idle runner is removed at once.
      classes: classes({ lint: { maxRunners: 100, maxCreatePerSecond: 1000, idleTimeout: 0 } }),
      actuator: {
        create: async () => ({ kind: 'created' }),
        check: () => Promise.resolve({ kind: 'written' as const }),
        remove: async (action) => {
          removes.push(`${action.runnerName} ${action.reason}`);
          return { kind: 'kept-busy' };
        },
      },
      logger: pino({ level: 'silent' }),
      now: () => NOW,
      periodMs: 5,
    });
    const pod = {
      name: 'r1',
      namespace: 'gantry-runners',
      className: 'lint',
      phase: 'Running' as const,
      createdAt: NOW - 60_000,
      runningSince: NOW - 50_000,
      deleting: false,
    };
    ledger.observeRunner(pod);
    reconciler.start();
    await until('removal tried', async () => removes.length === 1, 10_000, 5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Busy now: not tried again while it runs its job, and not counted as terminating.
    expect(removes).toEqual(['r1 idle-timeout']);
    expect(ledger.snapshot(config, NOW).classes.lint?.runners[0]?.state).toBe('busy');
    ledger.observeRunner({ ...pod, phase: 'Succeeded', endedAt: NOW });
    await until('removed once finished', async () => removes.length === 2, 10_000, 5);
    await reconciler.stop();
    expect(removes[1]).toBe('r1 finished');
  });

  describe('a create whose pod may exist', () => {
    const oneRunner = classes({ lint: { maxRunners: 1, maxCreatePerSecond: 1000 } });

    function scripted(startTimeoutMs: number, periodMs = 5) {
      const ledger = testLedger(oneRunner, { startTimeoutMs, deadlineGraceMs: 0 });
      const creates: string[] = [];
      const removes: string[] = [];
      let next: () => Promise<CreateOutcome> = async () => ({ kind: 'created' });
      const reconciler = createReconciler({
        ledger,
        classes: oneRunner,
        actuator: {
          create: (action) => {
            creates.push(action.jobKey ?? '');
            return next();
          },
          check: () => Promise.resolve({ kind: 'written' as const }),
          remove: async (action) => {
            removes.push(action.runnerName);
            return { kind: 'deleted' };
          },
        },
        logger: pino({ level: 'silent' }),
        periodMs,
        createRetryDelaysMs: [30, 30],
      });
      return {
        ledger,
        creates,
        removes,
        reconciler,
        answer: (fn: () => Promise<CreateOutcome>) => {
          next = fn;
        },
      };
    }
    const unanswered: CreateOutcome = { kind: 'failed', error: new Error('timeout'), podMayExist: true };

    it('keeps counting it and sends it again, so no other runner takes its place meanwhile', async () => {
      const { ledger, creates, reconciler, answer } = scripted(60_000, 60_000);
      answer(async () => unanswered);
      ledger.applyJobEvent(queued(1));
      ledger.applyJobEvent(queued(2));
      reconciler.start();
      await until('sent three times', async () => creates.length === 3, 3_000, 5);
      // maxRunners 1: job 2 got no create while job 1's pod might exist.
      expect(creates).toEqual(['github:1', 'github:1', 'github:1']);
      // The retries are spent (1 + 2): the placeholder goes, and the next pass plans afresh.
      await until('placeholder dropped', async () => [...ledger.runnerNames()].length === 0, 3_000, 5);
      expect(creates).toHaveLength(3);
      await reconciler.stop();
    });

    it('keeps the runner once a retry gets through', async () => {
      // No periodic pass: only the retry sends the create again.
      const { ledger, creates, reconciler, answer } = scripted(60_000, 60_000);
      let calls = 0;
      answer(async () => (++calls === 1 ? unanswered : { kind: 'exists' }));
      reconciler.start();
      ledger.applyJobEvent(queued(1));
      await until('sent twice', async () => creates.length === 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await reconciler.stop();
      expect(creates).toEqual(['github:1', 'github:1']);
      expect([...ledger.runnerNames()]).toHaveLength(1);
    });

    it('forgets a runner removed for starting too slowly that no pod was ever seen for', async () => {
      const { ledger, creates, removes, reconciler, answer } = scripted(40);
      // Reported created, but the watch never reports its pod (removed by someone else meanwhile).
      answer(async () => ({ kind: 'created' }));
      reconciler.start();
      ledger.applyJobEvent(queued(1));
      // maxRunners 1: a new create for the job proves the stuck one no longer counts (it was not kept
      // as terminating for good).
      await until(
        'removed as stuck, then replaced',
        async () => removes.length >= 1 && creates.length >= 2,
        3_000,
        5,
      );
      await reconciler.stop();
      expect(creates.slice(0, 2)).toEqual(['github:1', 'github:1']);
    });

    it('plans the removal again when the create ends after the removal found no pod', async () => {
      const { ledger, removes, reconciler, answer } = scripted(40);
      let finish: (outcome: CreateOutcome) => void = () => {};
      answer(() => new Promise((resolve) => (finish = resolve)));
      reconciler.start();
      ledger.applyJobEvent(queued(1));
      await until('removed while its create is under way', async () => removes.length === 1, 3_000, 5);
      const [name] = removes;
      expect([...ledger.runnerNames()]).toEqual([name]);
      // Creates from now on answer at once: once the runner is gone, its job gets a new one, and
      // stop() waits for the calls under way.
      answer(async () => ({ kind: 'created' }));
      finish({ kind: 'created' });
      await until('removed again now that it exists', async () => removes.length >= 2, 3_000, 5);
      await reconciler.stop();
      expect(removes[1]).toBe(name);
    });
  });
});
