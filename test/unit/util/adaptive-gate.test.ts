import { describe, expect, it } from 'vitest';
import { createAdaptiveGate } from '../../../src/util/adaptive-gate.ts';

/** A call that stays under way until the test ends it. */
function held<T>() {
  let finish: (value: T) => void = () => {};
  let fail: (err: unknown) => void = () => {};
  const promise = new Promise<T>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { promise, finish, fail };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('adaptive gate', () => {
  it('lets calls through within the limit, first come first served', async () => {
    const gate = createAdaptiveGate({ initial: 2, min: 1, max: 2, judge: () => 'answer' });
    const calls = [held<number>(), held<number>(), held<number>(), held<number>()];
    const started: number[] = [];
    const results = calls.map((call, i) =>
      gate.run(() => {
        started.push(i);
        return call.promise;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(gate.waiting).toBe(2);
    calls[1]?.finish(1);
    await tick();
    expect(started).toEqual([0, 1, 2]);
    calls[0]?.finish(0);
    calls[2]?.finish(2);
    calls[3]?.finish(3);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3]);
  });

  it('halves on an overload, learns nothing from a call never sent, and passes every failure on', async () => {
    const limits: number[] = [];
    const gate = createAdaptiveGate({
      initial: 8,
      min: 1,
      max: 8,
      judge: (err) => ((err as Error).message === 'unsent' ? 'unsent' : 'overload'),
      onLimit: (limit) => limits.push(limit),
    });
    await expect(gate.run(() => Promise.reject(new Error('unsent')))).rejects.toThrow('unsent');
    expect(gate.limit).toBe(8);
    await expect(gate.run(() => Promise.reject(new Error('503')))).rejects.toThrow('503');
    expect(gate.limit).toBe(4);
    expect(limits).toEqual([4]);
    expect(gate.inFlight).toBe(0);
  });

  it('grows while calls wait for a slot and answers stay fast', async () => {
    const gate = createAdaptiveGate({ initial: 1, min: 1, max: 4, judge: () => 'answer' });
    const results = Array.from({ length: 10 }, () => gate.run(() => Promise.resolve()));
    await Promise.all(results);
    expect(gate.limit).toBeGreaterThan(1);
  });
});
