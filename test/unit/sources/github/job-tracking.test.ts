import { describe, expect, it } from 'vitest';
import { JobTracker } from '../../../../src/sources/github/job-tracker.ts';
import { KeyedWorkQueue } from '../../../../src/sources/github/work-queue.ts';

describe('JobTracker', () => {
  const entry = (phase: 'waiting' | 'queued' | 'started' | 'completed', runId = 1) => ({
    phase,
    identity: null,
    repo: 'acme/app',
    runId,
    createdAt: 0,
  });

  it('records each transition once and only forwards', () => {
    const tracker = new JobTracker();
    expect(tracker.advance('github:1', entry('queued'))).toBe(true);
    expect(tracker.advance('github:1', entry('queued'))).toBe(false);
    expect(tracker.advance('github:1', entry('completed'))).toBe(true);
    expect(tracker.advance('github:1', entry('started'))).toBe(false);
    expect(tracker.get('github:1')?.phase).toBe('completed');
  });

  it('lists runs with open jobs', () => {
    const tracker = new JobTracker();
    tracker.advance('github:1', entry('queued', 10));
    tracker.advance('github:2', entry('completed', 11));
    tracker.advance('github:3', entry('started', 12));
    tracker.advance('github:4', entry('waiting', 13));
    expect(
      tracker
        .openRuns()
        .map((r) => r.runId)
        .sort((a, b) => a - b),
    ).toEqual([10, 12]);
    expect(tracker.openJobsOf(12).map((j) => j.key)).toEqual(['github:3']);
  });

  it('forgets the oldest jobs beyond its bound', () => {
    const tracker = new JobTracker(2);
    tracker.advance('github:1', entry('queued'));
    tracker.advance('github:2', entry('queued'));
    tracker.advance('github:3', entry('queued'));
    expect(tracker.get('github:1')).toBeUndefined();
    expect(tracker.get('github:3')?.phase).toBe('queued');
  });
});

describe('KeyedWorkQueue', () => {
  it('keeps order within a key, runs keys in parallel, and refuses work beyond capacity', async () => {
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const queue = new KeyedWorkQueue<string>({
      capacity: 3,
      concurrency: 2,
      worker: (item) =>
        new Promise<void>((resolve) => {
          order.push(`start ${item}`);
          gates.set(item, () => {
            order.push(`end ${item}`);
            resolve();
          });
        }),
      onError: () => {},
    });
    expect(queue.push('run1', 'a1')).toBe(true);
    expect(queue.push('run1', 'a2')).toBe(true);
    expect(queue.push('run2', 'b1')).toBe(true);
    expect(queue.push('run3', 'c1')).toBe(true);
    expect(queue.push('run3', 'c2')).toBe(true);
    expect(queue.push('run4', 'd1')).toBe(false);
    expect(order).toEqual(['start a1', 'start b1']);
    gates.get('a1')?.();
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual(['start a1', 'start b1', 'end a1', 'start a2']);
    for (const item of ['b1', 'a2', 'c1', 'c2']) {
      await new Promise((r) => setImmediate(r));
      gates.get(item)?.();
    }
    await queue.whenIdle();
    expect(order.filter((o) => o.startsWith('end'))).toEqual([
      'end a1',
      'end b1',
      'end a2',
      'end c1',
      'end c2',
    ]);
  });

  it('reports a failing item and carries on', async () => {
    const failures: string[] = [];
    const done: string[] = [];
    const queue = new KeyedWorkQueue<string>({
      capacity: 10,
      concurrency: 1,
      worker: async (item) => {
        if (item === 'bad') throw new Error('boom');
        done.push(item);
      },
      onError: (_err, item) => failures.push(item),
    });
    queue.push('k', 'bad');
    queue.push('k', 'good');
    await queue.whenIdle();
    expect(failures).toEqual(['bad']);
    expect(done).toEqual(['good']);
  });
});
