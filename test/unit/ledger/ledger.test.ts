import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/ledger/ledger.ts';
import type { CreateRunnerAction } from '../../../src/model/action.ts';
import type { JobEvent } from '../../../src/model/job.ts';
import {
  classes,
  completedEvent,
  githubJob,
  NOW,
  queuedEvent,
  runnerPod,
  seconds,
  startedEvent,
  testLedger,
} from '../../support/builders.ts';

const config = classes({ lint: { activeDeadlineSeconds: 600 }, build: {} });

const ledger = () => testLedger(config);
const identity = (id: number, labels?: string[]) => githubJob(id, labels ? { labels } : {});
const queued = (id: number, labels?: string[]) => queuedEvent(identity(id, labels));
const started = (id: number, runnerName: string) => startedEvent(identity(id), runnerName);
const completed = (id: number, runnerName: string) => completedEvent(identity(id), runnerName);
const pod = runnerPod;

const create = (runnerName: string): CreateRunnerAction => ({
  kind: 'create-runner',
  className: 'lint',
  namespace: 'gantry-runners',
  nameSeed: '*#0',
  runnerName,
  reason: 'queued-jobs',
});

const lintOf = (l: Ledger, now = NOW) => l.snapshot(config, now).classes.lint;

describe('Ledger jobs', () => {
  it('queues a classified job under its class and reports an unclassified one', () => {
    const l = ledger();
    expect(l.applyJobEvent(queued(1))).toMatchObject([{ kind: 'job-queued' }]);
    expect(l.applyJobEvent(queued(2, ['gpu']))).toMatchObject([
      { kind: 'job-unclassified', reason: 'no-matching-class' },
    ]);
    expect(lintOf(l)?.queued.map((j) => j.key)).toEqual(['github:1']);
    expect(l.snapshot(config, NOW).classes.build).toBeUndefined();
  });

  it('applies a repeated event once', () => {
    const l = ledger();
    l.applyJobEvent(queued(1));
    expect(l.applyJobEvent(queued(1))).toEqual([]);
    l.applyJobEvent(started(1, 'r1'));
    expect(l.applyJobEvent(started(1, 'r1'))).toEqual([]);
    expect(l.job('github:1')).toMatchObject({ state: 'started', runnerName: 'r1' });
    expect([...l.jobs()]).toHaveLength(1);
  });

  it('links a started job to its runner, which is then busy, and reports the queue time', () => {
    const l = ledger();
    l.observeRunner(pod('r1'));
    expect(lintOf(l)?.runners[0]?.state).toBe('idle');
    l.applyJobEvent(queued(1));
    expect(l.applyJobEvent(started(1, 'r1'))).toMatchObject([
      { kind: 'job-started', queuedForMs: seconds(20) },
    ]);
    expect(lintOf(l)?.runners[0]).toMatchObject({ name: 'r1', state: 'busy', jobKey: 'github:1' });
    expect(lintOf(l)?.queued).toEqual([]);
  });

  it('links a job to a runner whose pod is reported after the job started', () => {
    const l = ledger();
    l.applyJobEvent(queued(1));
    l.applyJobEvent(started(1, 'r1'));
    l.observeRunner(pod('r1'));
    expect(lintOf(l)?.runners[0]?.state).toBe('busy');
  });

  it('does not tie a late event to a runner of the same name created after the job started', () => {
    // The job started 10 s ago on an earlier pod named r1; this r1 was created 5 s ago.
    const late = () => pod('r1', { createdAt: NOW - seconds(5), runningSince: NOW - seconds(4) });
    for (const events of [[started(1, 'r1')], [completed(1, 'r1')], [started(1, 'r1'), completed(1, 'r1')]]) {
      const l = ledger();
      l.observeRunner(late());
      for (const event of events) l.applyJobEvent(event);
      expect(lintOf(l)?.runners[0]).toMatchObject({ name: 'r1', state: 'idle' });
    }
    // Also when the pod is reported after the event.
    const l = ledger();
    l.applyJobEvent(started(1, 'r1'));
    l.observeRunner(late());
    expect(lintOf(l)?.runners[0]).toMatchObject({ name: 'r1', state: 'idle' });
  });

  it('forgets a completed job and ignores a stale queued event for it', () => {
    const l = ledger();
    l.observeRunner(pod('r1'));
    l.applyJobEvent(queued(1));
    l.applyJobEvent(started(1, 'r1'));
    expect(l.applyJobEvent(completed(1, 'r1'))).toMatchObject([{ kind: 'job-completed', className: 'lint' }]);
    expect(l.applyJobEvent(queued(1))).toEqual([]);
    expect(l.job('github:1')).toBeUndefined();
    // The one-shot runner served its job: it is not idle supply while its pod exits.
    expect(lintOf(l)?.runners[0]?.state).toBe('busy');
  });
});

describe('Ledger runners', () => {
  it('counts a requested create as starting, spends the budget, and forgets it if the create fails', () => {
    const l = ledger();
    l.noteCreateRequested(create('r1'), 2, NOW);
    expect(lintOf(l)?.runners).toMatchObject([{ name: 'r1', state: 'starting' }]);
    expect(lintOf(l)?.budget).toEqual({ tokens: 1, at: NOW });
    l.noteCreateFailed('r1');
    expect(lintOf(l)?.runners).toEqual([]);
  });

  it('keeps a requested runner once the watch has reported its pod, even if a failure is noted late', () => {
    const l = ledger();
    l.noteCreateRequested(create('r1'), 2, NOW);
    l.observeRunner(pod('r1', { phase: 'Pending' }));
    l.noteCreateFailed('r1');
    expect(lintOf(l)?.runners.map((r) => r.name)).toEqual(['r1']);
  });

  it.each([
    ['Pending within the start timeout', 'starting', pod('r', { phase: 'Pending' })],
    [
      'Pending past the start timeout',
      'stuck',
      pod('r', { phase: 'Pending', createdAt: NOW - seconds(301) }),
    ],
    ['Running without a job', 'idle', pod('r')],
    ['Succeeded', 'finished', pod('r', { phase: 'Succeeded' })],
    ['Failed', 'failed', pod('r', { phase: 'Failed', failureReason: 'DeadlineExceeded' })],
    ['being deleted', 'terminating', pod('r', { deleting: true })],
  ] as const)('a pod %s is %s', (_what, state, observation) => {
    const l = ledger();
    l.observeRunner(observation);
    expect(lintOf(l)?.runners[0]?.state).toBe(state);
  });

  it('marks a busy runner past its class deadline (plus grace) as stuck', () => {
    const l = ledger();
    l.observeRunner(pod('r1', { runningSince: NOW - seconds(600 + 59) }));
    l.applyJobEvent(queued(1));
    l.applyJobEvent(started(1, 'r1'));
    expect(lintOf(l)?.runners[0]?.state).toBe('busy');
    expect(lintOf(l, NOW + seconds(2))?.runners[0]?.state).toBe('stuck');
  });

  it('marks a runner terminating once its deletion is asked for, and forgets it when the pod is gone', () => {
    const l = ledger();
    l.observeRunner(pod('r1'));
    l.noteDeleteRequested('r1');
    expect(lintOf(l)?.runners[0]?.state).toBe('terminating');
    expect(l.forgetRunner('r1')).toMatchObject([
      { kind: 'runner-gone', runner: { name: 'r1' }, deleteRequested: true },
    ]);
    expect(l.forgetRunner('r1')).toEqual([]);
    expect(lintOf(l)).toBeUndefined();
    // Its name is not given to a new runner for a while.
    expect(l.snapshot(config, NOW).retiredNames?.has('r1')).toBe(true);
    expect(l.snapshot(config, NOW).retiredNames?.has('r2')).toBe(false);
  });
});

describe('Ledger: runners whose JIT Secret was not seen written', () => {
  it('has a pod an earlier run made checked, and fails it when the check finds no Secret', () => {
    const l = ledger();
    l.observeRunner(pod('r1', { uid: 'uid-1' }));
    expect(lintOf(l)?.runners).toMatchObject([
      { name: 'r1', state: 'idle', unconfirmed: true, podUid: 'uid-1' },
    ]);
    l.noteCheckRequested('r1');
    expect(lintOf(l)?.runners[0]).toMatchObject({ state: 'idle' });
    expect(lintOf(l)?.runners[0]?.unconfirmed).toBeUndefined();
    l.noteCheckResult('r1', 'missing');
    expect(lintOf(l)?.runners[0]).toMatchObject({ state: 'failed', halfMade: true });
  });

  it('counts on a pod whose Secret the check found, and checks again after a check that could not tell', () => {
    const l = ledger();
    l.observeRunner(pod('r1', { uid: 'uid-1', phase: 'Pending', runningSince: undefined }));
    l.noteCheckRequested('r1');
    l.noteCheckResult('r1', 'failed');
    expect(lintOf(l)?.runners[0]).toMatchObject({ state: 'starting', unconfirmed: true });
    l.noteCheckRequested('r1');
    l.noteCheckResult('r1', 'written');
    expect(lintOf(l)?.runners[0]?.unconfirmed).toBeUndefined();
    expect(lintOf(l)?.runners[0]?.state).toBe('starting');
  });

  it('counts on its own creates, and has one checked whose create ended in an error after its pod was seen', () => {
    const l = ledger();
    l.noteCreateRequested(create('ok'), 10, NOW);
    l.observeRunner(pod('ok', { uid: 'uid-ok' }));
    l.noteCreateSucceeded('ok');
    l.noteCreateRequested(create('half'), 10, NOW);
    l.observeRunner(pod('half', { uid: 'uid-half' }));
    // In flight: its Secret may be on its way.
    expect(lintOf(l)?.runners.every((r) => r.unconfirmed === undefined)).toBe(true);
    l.noteCreateFailed('half');
    expect(lintOf(l)?.runners.map((r) => [r.name, r.unconfirmed])).toEqual([
      ['ok', undefined],
      ['half', true],
    ]);
  });

  it('never checks a runner that took a job: it connected, so its Secret was there', () => {
    const l = ledger();
    l.applyJobEvent(queued(1));
    l.observeRunner(pod('r1', { uid: 'uid-1' }));
    l.applyJobEvent(started(1, 'r1'));
    expect(lintOf(l)?.runners[0]).toMatchObject({ state: 'busy' });
    expect(lintOf(l)?.runners[0]?.unconfirmed).toBeUndefined();
  });

  it('hands the planner how to name runners', () => {
    const naming = { prefix: 'ci-acme', generation: 'g1' };
    const l = testLedger(config, { naming });
    expect(l.snapshot(config, NOW).naming).toEqual(naming);
  });
});

describe('Ledger: capacity, start failures and lost runners', () => {
  it('lets a pod no node fits wait for capacity past the start timeout, until the capacity timeout', () => {
    const l = ledger();
    const waiting = pod('r1', { phase: 'Pending', unschedulable: true, runningSince: undefined });
    l.observeRunner({ ...waiting, createdAt: NOW - seconds(301) });
    expect(lintOf(l)?.runners[0]).toMatchObject({ state: 'starting', waitingForCapacity: true });
    expect(lintOf(l, NOW + seconds(1500))?.runners[0]).toMatchObject({
      state: 'stuck',
      waitingForCapacity: true,
    });
  });

  it('times a start from the moment a node was found, once one was', () => {
    const l = ledger();
    // Created long ago, scheduled 10 s ago after waiting for a node: starting, not stuck.
    l.observeRunner(
      pod('r1', { phase: 'Pending', createdAt: NOW - seconds(900), scheduledAt: NOW - seconds(10) }),
    );
    expect(lintOf(l)?.runners[0]?.state).toBe('starting');
    expect(lintOf(l)?.runners[0]?.waitingForCapacity).toBeUndefined();
    expect(lintOf(l, NOW + seconds(291))?.runners[0]?.state).toBe('stuck');
  });

  it('fails a runner that cannot start at once, and reports it once', () => {
    const l = ledger();
    l.observeRunner(pod('r1', { phase: 'Pending', runningSince: undefined }));
    const failure = { reason: 'image-pull', detail: 'ErrImagePull', container: 'runner' } as const;
    const changes = l.observeRunner(
      pod('r1', { phase: 'Pending', runningSince: undefined, startFailure: failure }),
    );
    expect(changes).toMatchObject([{ kind: 'runner-start-failed', runner: { name: 'r1' }, failure }]);
    expect(lintOf(l)?.runners[0]?.state).toBe('failed');
    const again = { ...failure, detail: 'ImagePullBackOff' };
    expect(
      l.observeRunner(pod('r1', { phase: 'Pending', runningSince: undefined, startFailure: again })),
    ).toEqual([]);
  });

  it('reports a refused create as a start failure and forgets its placeholder', () => {
    const l = ledger();
    l.noteCreateRequested(create('r1'), 2, NOW);
    expect(l.noteCreateRefused('r1', 'Forbidden', 'violates PodSecurity "restricted:latest"')).toMatchObject([
      {
        kind: 'runner-start-failed',
        runner: { name: 'r1', className: 'lint' },
        failure: {
          reason: 'refused',
          detail: 'Forbidden',
          message: 'violates PodSecurity "restricted:latest"',
        },
      },
    ]);
    expect(lintOf(l)?.runners).toEqual([]);
    expect(l.noteCreateRefused('r1', 'Forbidden', 'again')).toEqual([]);
  });

  it('counts a runner the cluster took away mid-job as lost with its job, and spends it even mid-deletion', () => {
    const l = ledger();
    l.observeRunner(pod('busy'));
    l.observeRunner(pod('idle'));
    l.applyJobEvent(queued(1));
    l.applyJobEvent(started(1, 'busy'));
    // The node lifecycle's taint eviction deleted both gracefully; their node will never confirm it.
    const lost = { lost: 'node-lost', deleting: true } as const;
    expect(l.observeRunner(pod('busy', lost))).toMatchObject([
      {
        kind: 'runner-lost',
        reason: 'node-lost',
        midJob: true,
        jobKey: 'github:1',
        runner: { name: 'busy' },
      },
    ]);
    expect(l.observeRunner(pod('idle', lost))).toMatchObject([{ kind: 'runner-lost', midJob: false }]);
    expect(l.observeRunner(pod('busy', lost))).toEqual([]);
    expect(lintOf(l)?.runners.map((r) => [r.name, r.state, r.lost])).toEqual([
      ['busy', 'failed', 'node-lost'],
      ['idle', 'failed', 'node-lost'],
    ]);
    // Once Gantry asked for its removal it is terminating like any other.
    l.noteDeleteRequested('busy');
    expect(lintOf(l)?.runners[0]?.state).toBe('terminating');
    // A pod removed by someone else leaves its registration for Gantry to remove.
    expect(l.forgetRunner('idle')).toMatchObject([{ kind: 'runner-gone', deleteRequested: false }]);
  });

  it('holds creations per cause: a registration success does not lift a start-failure hold', () => {
    const l = ledger();
    l.holdCreations('lint', NOW + seconds(5), 'start-failure');
    l.holdCreations('lint', NOW + seconds(2));
    expect(lintOf(l)).toMatchObject({ creationsHeldUntil: NOW + seconds(5), startsFailing: true });
    l.releaseCreations('lint');
    expect(lintOf(l)).toMatchObject({ creationsHeldUntil: NOW + seconds(5), startsFailing: true });
    // Past the hold the class still starts one runner at a time, until one runs.
    expect(lintOf(l, NOW + seconds(6))?.creationsHeldUntil).toBeUndefined();
    expect(lintOf(l, NOW + seconds(6))?.startsFailing).toBe(true);
    l.releaseCreations('lint', 'start-failure');
    expect(lintOf(l)).toBeUndefined();
  });
});

describe('Ledger quotas', () => {
  it('holds creations in a namespace after a quota refusal until the back-off ends', () => {
    const l = ledger();
    l.setQuotaLimits('gantry-runners', { pods: { hard: 5, used: 2 } });
    l.noteQuotaExceeded('gantry-runners', NOW + seconds(10));
    expect(l.isQuotaLimited('gantry-runners', NOW)).toBe(true);
    expect(l.isQuotaLimited('gantry-runners', NOW + seconds(10))).toBe(false);
    expect(l.snapshot(config, NOW).quotas['gantry-runners']).toEqual({
      remaining: { pods: 3 },
      backoffUntil: NOW + seconds(10),
    });
  });

  it('counts its own runners against the quota when the quota status lags behind', () => {
    const l = ledger();
    l.setQuotaLimits('gantry-runners', {
      pods: { hard: 5, used: 1 },
      'requests.cpu': { hard: 10_000, used: 0 },
    });
    l.observeRunner(pod('r1'));
    l.observeRunner(pod('r2', { phase: 'Pending' }));
    l.noteCreateRequested(create('r3'), 5, NOW);
    l.observeRunner(pod('done', { phase: 'Succeeded' }));
    l.observeRunner(pod('going', { deleting: true }));
    // Three runners hold quota (running, pending, in flight), each 1 pod and 1 CPU (the class default).
    expect(l.snapshot(config, NOW).quotas['gantry-runners']?.remaining).toEqual({
      pods: 2,
      'requests.cpu': 7_000,
    });
  });
});

describe('Ledger runners that never take a job', () => {
  it('marks an idle runner stuck when a job it could take has waited past the start timeout', () => {
    const l = ledger();
    // Running since long before, and the job waits too: the runner's process never connected.
    l.observeRunner(pod('silent', { createdAt: NOW - seconds(900), runningSince: NOW - seconds(890) }));
    l.applyJobEvent({ ...queued(1), createdAt: NOW - seconds(400) } as JobEvent);
    expect(lintOf(l)?.runners[0]?.state).toBe('stuck');
  });

  it('keeps an idle runner while the waiting job is recent, or when nothing waits', () => {
    const l = ledger();
    l.observeRunner(pod('warm', { createdAt: NOW - seconds(900), runningSince: NOW - seconds(890) }));
    expect(lintOf(l)?.runners[0]?.state).toBe('idle');
    l.applyJobEvent({ ...queued(1), createdAt: NOW - seconds(10) } as JobEvent);
    expect(lintOf(l)?.runners[0]?.state).toBe('idle');
  });
});
