import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRegistrationForgetter } from '../../../../src/sources/github/registration-forgetter.ts';

const runner = { runnerName: 'gantry-lint-0123456789', className: 'lint' };

/** A registrar's removal that answers from a script, one answer per call. */
function scripted(...answers: ('removed' | 'busy' | 'absent' | Error)[]) {
  const calls: string[] = [];
  const remove = async ({ runnerName }: { runnerName: string }) => {
    calls.push(runnerName);
    const answer = answers.shift() ?? 'absent';
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { calls, remove };
}

describe('registration forgetter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const forgetter = (remove: ReturnType<typeof scripted>['remove']) =>
    createRegistrationForgetter({ remove, logger: pino({ level: 'silent' }), leftTo: 'the sweep' });

  it('tries again while the CI system counts the runner busy or fails, until it is let go', async () => {
    const script = scripted('busy', new Error('503'), 'removed');
    const f = forgetter(script.remove);
    f.forget(runner);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(script.calls).toHaveLength(3);
    // Done: another forget of the name starts afresh.
    f.forget(runner);
    await vi.advanceTimersByTimeAsync(0);
    expect(script.calls).toHaveLength(4);
  });

  it('drops a removal waiting to be tried again once the name is registered anew', async () => {
    const script = scripted('busy', 'removed');
    const f = forgetter(script.remove);
    f.forget(runner);
    await vi.advanceTimersByTimeAsync(0);
    expect(script.calls).toHaveLength(1);
    f.cancel(runner.runnerName);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(script.calls).toHaveLength(1);
  });

  it('does one removal of a name at a time, and none once stopped', async () => {
    const script = scripted('busy', 'removed');
    const f = forgetter(script.remove);
    f.forget(runner);
    f.forget(runner);
    await vi.advanceTimersByTimeAsync(0);
    expect(script.calls).toHaveLength(1);
    f.stop();
    f.forget({ ...runner, runnerName: 'gantry-lint-aaaaaaaaaa' });
    await vi.advanceTimersByTimeAsync(300_000);
    expect(script.calls).toHaveLength(1);
  });
});
