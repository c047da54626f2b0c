import { describe, expect, it } from 'vitest';
import { changesPlan } from '../../../src/controller/runner-controller.ts';
import type { LedgerChange } from '../../../src/ledger/ledger.ts';
import type { RunnerObservation } from '../../../src/model/runner-observation.ts';
import { NOW } from '../../support/builders.ts';

const pod = (extra: Partial<RunnerObservation> = {}): RunnerObservation => ({
  name: 'gantry-lint-1',
  namespace: 'ci',
  className: 'lint',
  phase: 'Pending',
  createdAt: NOW,
  deleting: false,
  ...extra,
});

describe('which pod updates are planned at once', () => {
  it('skips the updates of a starting pod that leave it supply as it was', () => {
    // The create's own pod, first seen: it was counted as starting already.
    expect(changesPlan(pod({ phase: 'Requested' }), pod(), [])).toBe(false);
    // Scheduled, a condition changed, no node fits yet.
    expect(changesPlan(pod(), pod({ scheduledAt: NOW + 10 }), [])).toBe(false);
    expect(changesPlan(pod(), pod({ unschedulable: true }), [])).toBe(false);
  });

  it('plans a pod it did not know, and one that ended, is being deleted, cannot start or was taken away', () => {
    expect(changesPlan(undefined, pod(), [])).toBe(true);
    const running = pod({ phase: 'Running', runningSince: NOW });
    expect(changesPlan(running, pod({ ...running, phase: 'Succeeded', endedAt: NOW }), [])).toBe(true);
    expect(changesPlan(running, pod({ ...running, deleting: true }), [])).toBe(true);
    expect(
      changesPlan(pod(), pod({ startFailure: { reason: 'image-pull', detail: 'ErrImagePull' } }), []),
    ).toBe(true);
    expect(changesPlan(running, pod({ ...running, lost: 'evicted' }), [])).toBe(true);
  });

  it('plans whatever the ledger reported a change for: a runner that got running may lift a hold', () => {
    const running = pod({ phase: 'Running', runningSince: NOW });
    const change: LedgerChange = { kind: 'runner-running', runner: { ...running, runningSince: NOW } };
    expect(changesPlan(pod(), running, [change])).toBe(true);
  });
});
