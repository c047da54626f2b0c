import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createReconciler, type ReconcilerOptions } from '../../../src/controller/reconciler.ts';
import type { CreateRunnerAction, DeleteRunnerAction } from '../../../src/model/action.ts';
import type { JobEvent } from '../../../src/model/job.ts';
import type { CheckOutcome, CreateOptions, CreateOutcome, DeleteOutcome } from '../../../src/ports.ts';
import { classes, githubJob, NOW, queuedEvent, testLedger } from '../../support/builders.ts';
import { until } from '../../support/until.ts';

// How the loop hands actions out: per-class queues taken in turns within an adaptive limit.

const limits = { maxRunners: 100, maxCreatePerSecond: 1000 };

/** Job `id` of a class (its labels), queued at NOW. */
const queued = (className: string, id: number): JobEvent =>
  queuedEvent(githubJob(id, { key: `github:${className}-${id}`, labels: ['self-hosted', className] }), NOW);

interface Call {
  action: CreateRunnerAction | DeleteRunnerAction;
  options?: CreateOptions;
  finish: (outcome?: CreateOutcome | DeleteOutcome) => void;
}

/** An actuator whose calls stay under way until the test ends them; `hang` classes never answer. */
function scriptedActuator() {
  const calls: Call[] = [];
  let inFlight = 0;
  let peak = 0;
  const call = <T>(action: Call['action'], fallback: T, options?: CreateOptions) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    let finished = false;
    return new Promise<T>((resolve) =>
      calls.push({
        action,
        ...(options ? { options } : {}),
        finish: (outcome) => {
          if (finished) return;
          finished = true;
          inFlight -= 1;
          resolve((outcome ?? fallback) as T);
        },
      }),
    );
  };
  return {
    calls,
    get inFlight() {
      return inFlight;
    },
    get peak() {
      return peak;
    },
    /** Calls of a class. */
    open: (className: string) => calls.filter((c) => c.action.className === className),
    create: (action: CreateRunnerAction, _c: unknown, options?: CreateOptions) =>
      call<CreateOutcome>(action, { kind: 'created' }, options),
    remove: (action: DeleteRunnerAction) => call<DeleteOutcome>(action, { kind: 'deleted' }),
    check: async (): Promise<CheckOutcome> => ({ kind: 'written' }),
  };
}

function setUp(config: ReturnType<typeof classes>, options: Partial<ReconcilerOptions> = {}) {
  const ledger = testLedger(config, { startTimeoutMs: 600_000, deadlineGraceMs: 0 });
  const actuator = scriptedActuator();
  const reconciler = createReconciler({
    ledger,
    classes: config,
    actuator,
    logger: pino({ level: 'silent' }),
    now: () => NOW,
    periodMs: 60_000,
    ...options,
  });
  const queue = (className: string, ...ids: number[]) => {
    for (const id of ids) ledger.applyJobEvent(queued(className, id));
    reconciler.trigger();
  };
  return { ledger, actuator, reconciler, queue };
}

const jobOf = (call: Call) => (call.action.kind === 'create-runner' ? call.action.jobKey : undefined);

describe('reconciler dispatch', () => {
  it('lets a class make runners while another class’s creates hang', async () => {
    const config = classes({ slow: limits, fast: limits });
    const { actuator, reconciler, queue } = setUp(config, { concurrency: 4 });
    reconciler.start();
    // The slow class's namespace never answers: its creates hold every slot of the limit.
    queue('slow', 1, 2, 3, 4, 5, 6, 7, 8);
    await until('the limit held by the slow class', async () => actuator.open('slow').length === 4);
    queue('fast', 1, 2, 3);
    for (let finished = 0; finished < 3; finished++) {
      await until('a fast create sent', async () =>
        actuator.calls.some(
          (c) => c.action.className === 'fast' && jobOf(c) === `github:fast-${finished + 1}`,
        ),
      );
      actuator.calls.find((c) => jobOf(c) === `github:fast-${finished + 1}`)?.finish();
    }
    // Every fast create went out while the slow ones still hang, and the slow class got no more.
    expect(actuator.open('slow')).toHaveLength(4);
    expect(actuator.calls.filter((c) => c.action.className === 'fast')).toHaveLength(3);
    for (const c of actuator.open('slow')) c.finish();
    await until('the rest of the slow class sent', async () => actuator.open('slow').length === 8);
    for (const c of actuator.open('slow').slice(4)) c.finish();
    await reconciler.stop();
  });

  it('takes the classes in turns within the limit', async () => {
    const config = classes({ a: limits, b: limits });
    const { actuator, reconciler, queue } = setUp(config, { concurrency: 2 });
    reconciler.start();
    // Class a's jobs all come first; b's must not wait behind them.
    queue('a', 1, 2, 3, 4);
    queue('b', 1, 2, 3, 4);
    for (let finished = 0; finished < 8; finished++) {
      await until('a create under way', async () => actuator.calls.length > finished);
      expect(actuator.peak).toBeLessThanOrEqual(2);
      actuator.calls[finished]?.finish();
    }
    expect(actuator.calls.map((c) => c.action.className).join('')).toBe('abababab');
    await reconciler.stop();
  });

  it('sends a class’s removals ahead of its creations', async () => {
    const config = classes({ lint: { ...limits, idleTimeout: 0 } });
    const { ledger, actuator, reconciler, queue } = setUp(config, { concurrency: 1 });
    reconciler.start();
    queue('lint', 1, 2, 3);
    await until('first create under way', async () => actuator.calls.length === 1);
    // A finished runner of the class shows up while creates wait.
    ledger.observeRunner({
      name: 'lint-done',
      namespace: 'gantry-runners',
      className: 'lint',
      phase: 'Succeeded',
      createdAt: NOW - 60_000,
      runningSince: NOW - 50_000,
      endedAt: NOW - 1_000,
      deleting: false,
    });
    reconciler.trigger(['lint']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    actuator.calls[0]?.finish();
    await until('next call under way', async () => actuator.calls.length === 2);
    expect(actuator.calls[1]?.action).toMatchObject({ kind: 'delete-runner', runnerName: 'lint-done' });
    for (let sent = 2; sent <= 4; sent++) {
      await until('the next call under way', async () => actuator.calls.length === sent);
      actuator.calls[sent - 1]?.finish();
    }
    expect(actuator.calls.map((c) => c.action.kind)).toEqual([
      'create-runner',
      'delete-runner',
      'create-runner',
      'create-runner',
    ]);
    await reconciler.stop();
  });

  it('drops the creates queued for a namespace whose quota refused one, and plans them again later', async () => {
    const config = classes({
      a: { ...limits, namespace: 'team-a' },
      b: { ...limits, namespace: 'team-b' },
    });
    const { ledger, actuator, reconciler, queue } = setUp(config, { concurrency: 1 });
    reconciler.start();
    queue('a', 1, 2, 3);
    await until('a create under way', async () => actuator.calls.length === 1);
    queue('b', 1);
    actuator.calls[0]?.finish({ kind: 'quota-exceeded', message: 'exceeded quota: runners' });
    await until('b’s create sent', async () => actuator.calls.some((c) => c.action.className === 'b'));
    actuator.calls.find((c) => c.action.className === 'b')?.finish();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // No further create for team-a: they would be refused too; their placeholders are gone, so the
    // jobs wait as queued jobs for the next pass after the quota's wait.
    expect(actuator.calls.filter((c) => c.action.className === 'a')).toHaveLength(1);
    expect([...ledger.runnerNames()].filter((name) => name.startsWith('gantry-a-'))).toEqual([]);
    await reconciler.stop();
  });

  it('drops the creates queued for a class whose registration failed', async () => {
    const config = classes({ a: limits, b: limits });
    const { actuator, reconciler, queue } = setUp(config, { concurrency: 2 });
    reconciler.start();
    queue('a', 1, 2, 3);
    queue('b', 1, 2);
    await until('one create of each class under way', async () => actuator.calls.length === 2);
    actuator.calls
      .find((c) => c.action.className === 'a')
      ?.finish({
        kind: 'registration-failed',
        error: new Error('GitHub 503'),
      });
    actuator.calls.find((c) => c.action.className === 'b')?.finish();
    await until('b’s second create sent', async () => actuator.open('b').length === 2);
    for (const c of actuator.calls) c.finish();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Class a is held: its two queued creates were never sent.
    expect(actuator.open('a')).toHaveLength(1);
    await reconciler.stop();
  });

  it('asks for the registration to overlap the pod create only where the quota has room to spare', async () => {
    const config = classes({
      roomy: { ...limits, namespace: 'roomy' },
      tight: { ...limits, namespace: 'tight', resources: { requests: { cpu: '1' } } },
      open: { ...limits, namespace: 'open' },
    });
    const { ledger, actuator, reconciler, queue } = setUp(config, { concurrency: 10 });
    ledger.setQuotaLimits('roomy', { pods: { hard: 10, used: 0 } });
    // Room for the two runners planned, none to spare.
    ledger.setQuotaLimits('tight', { 'requests.cpu': { hard: 2_000, used: 0 } });
    reconciler.start();
    queue('roomy', 1, 2);
    queue('tight', 1, 2);
    queue('open', 1);
    await until('five creates under way', async () => actuator.calls.length === 5);
    const overlapOf = (className: string) =>
      actuator.calls
        .filter((c) => c.action.className === className)
        .map((c) => c.options?.overlapRegistration);
    expect(overlapOf('roomy')).toEqual([true, true]);
    expect(overlapOf('tight')).toEqual([false, false]);
    expect(overlapOf('open')).toEqual([true]);
    for (const c of actuator.calls) c.finish();
    await reconciler.stop();
  });

  it('does not overlap the registration of a create sent again, nor in a namespace whose quota refused lately', async () => {
    const config = classes({ lint: { ...limits, namespace: 'team' } });
    const { ledger, actuator, reconciler, queue } = setUp(config, {
      concurrency: 10,
      createRetryDelaysMs: [1],
    });
    reconciler.start();
    queue('lint', 1);
    await until('create under way', async () => actuator.calls.length === 1);
    expect(actuator.calls[0]?.options?.overlapRegistration).toBe(true);
    actuator.calls[0]?.finish({ kind: 'failed', error: new Error('timeout'), podMayExist: true });
    await until('sent again', async () => actuator.calls.length === 2);
    expect(actuator.calls[1]?.options?.overlapRegistration).toBe(false);
    actuator.calls[1]?.finish();
    // A refusal 30 s ago, whose wait is over: the namespace counts as tight for a minute.
    ledger.noteQuotaExceeded('team', NOW - 30_000);
    queue('lint', 2);
    await until('next create under way', async () => actuator.calls.length === 3);
    expect(actuator.calls[2]?.options?.overlapRegistration).toBe(false);
    actuator.calls[2]?.finish();
    await reconciler.stop();
  });

  it('grows the limit while work waits and the apiserver answers fast, and halves it on overload', async () => {
    const config = classes({ lint: limits });
    const limitsSeen: number[] = [];
    const { actuator, reconciler, queue } = setUp(config, {
      concurrency: { initial: 2, min: 1, max: 8 },
      onLimit: (limit) => limitsSeen.push(limit),
    });
    reconciler.start();
    queue('lint', ...Array.from({ length: 20 }, (_, i) => i + 1));
    await until('two creates under way', async () => actuator.inFlight === 2);
    // Fast answers while work waits: the limit grows, to the max and no further.
    for (let i = 0; i < 100; i++) reconciler.observeKubeCall({ kind: 'answer', latencyMs: 5 });
    expect(reconciler.limit()).toBe(8);
    expect(limitsSeen.slice(0, 3)).toEqual([3, 4, 5]);
    // The grown limit is used at once.
    await until('eight creates under way', async () => actuator.inFlight === 8);
    reconciler.observeKubeCall({ kind: 'overload' });
    expect(reconciler.limit()).toBe(4);
    expect(limitsSeen.slice(-2)).toEqual([8, 4]);
    // Calls finishing now start nothing new until fewer than four are under way.
    for (const c of actuator.calls.slice(0, 5)) c.finish();
    await until('back within the limit', async () => actuator.inFlight === 4);
    expect(actuator.calls).toHaveLength(9);
    for (const c of actuator.calls) c.finish();
    await reconciler.stop();
  });

  it('starts nothing new while the apiserver asked for a pause', async () => {
    const config = classes({ lint: limits });
    let clock = NOW;
    const { actuator, reconciler, queue } = setUp(config, { concurrency: 4, now: () => clock });
    reconciler.start();
    queue('lint', 1);
    await until('one create under way', async () => actuator.calls.length === 1);
    reconciler.observeKubeCall({ kind: 'overload', retryAfterMs: 60_000 });
    queue('lint', 2, 3);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(actuator.calls).toHaveLength(1);
    clock = NOW + 60_000;
    actuator.calls[0]?.finish();
    await until('sent once the pause is over', async () => actuator.calls.length === 3);
    for (const c of actuator.calls) c.finish();
    await reconciler.stop();
  });

  it('plans only the classes a change concerns, and every class on the period', async () => {
    const config = classes({ a: limits, b: limits });
    const { ledger, actuator, reconciler } = setUp(config, { concurrency: 10 });
    reconciler.start();
    await new Promise((resolve) => setTimeout(resolve, 10));
    ledger.applyJobEvent(queued('a', 1));
    ledger.applyJobEvent(queued('b', 1));
    reconciler.trigger(['a']);
    await until('a’s create sent', async () => actuator.calls.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(actuator.calls.map((c) => c.action.className)).toEqual(['a']);
    reconciler.trigger();
    await until('b’s create sent', async () => actuator.calls.length === 2);
    expect(actuator.calls[1]?.action.className).toBe('b');
    for (const c of actuator.calls) c.finish();
    await reconciler.stop();
  });
});
