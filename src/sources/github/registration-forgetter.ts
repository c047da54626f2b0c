import type { Logger } from 'pino';
import type { RegisteredRunner } from '../../ports.ts';
import { backoffDelayMs } from '../../util/retry.ts';
import { BACKGROUND_RETRIES } from '../../util/schedules.ts';

export interface RegistrationForgetterOptions {
  /** Removes the registration; `busy`: the CI system refused, as the runner still holds a job. */
  remove: (runner: RegisteredRunner) => Promise<'removed' | 'busy' | 'absent'>;
  logger: Logger;
  /** Who removes a registration once the attempts run out (logged). */
  leftTo: string;
}

/**
 * RunnerRegistrar.forget for a CI system that refuses to remove a runner while it holds a job (the
 * one it lost with its pod): the removal is tried again in the background until it is let go, on the
 * forgetRegistration schedule, one try at a time per runner.
 */
export function createRegistrationForgetter(options: RegistrationForgetterOptions) {
  const { attempts } = BACKGROUND_RETRIES.forgetRegistration;
  /**
   * Runner names whose registration is being removed: each removal's own token (a later one of the
   * same name, or a new registration, supersedes it) and the wait before its next try.
   */
  const forgetting = new Map<string, { timer?: NodeJS.Timeout }>();
  let stopped = false;

  function attempt(runner: RegisteredRunner, token: { timer?: NodeJS.Timeout }, tries: number): void {
    const name = runner.runnerName;
    const current = () => !stopped && forgetting.get(name) === token;
    const retry = (why: string) => {
      if (!current()) return;
      if (tries + 1 >= attempts) {
        forgetting.delete(name);
        options.logger.info({ pod: name, why }, `runner registration left to ${options.leftTo}`);
        return;
      }
      token.timer = setTimeout(
        () => attempt(runner, token, tries + 1),
        backoffDelayMs(tries, BACKGROUND_RETRIES.forgetRegistration),
      );
      token.timer.unref();
    };
    options
      .remove(runner)
      .then((result) => {
        if (result === 'busy') retry('the CI system still counts it busy');
        else if (current()) forgetting.delete(name);
      })
      .catch((err: unknown) => retry(err instanceof Error ? err.message : String(err)));
  }

  function cancel(name: string): void {
    clearTimeout(forgetting.get(name)?.timer);
    forgetting.delete(name);
  }

  return {
    forget(runner: RegisteredRunner): void {
      if (stopped || forgetting.has(runner.runnerName)) return;
      const token = {};
      forgetting.set(runner.runnerName, token);
      attempt(runner, token, 0);
    },
    /**
     * The name is being registered anew: a removal still waiting to be tried again would take the new
     * registration, so it is dropped (one under way cannot be called back; it was sent first).
     */
    cancel,
    start() {
      stopped = false;
    },
    stop() {
      stopped = true;
      for (const name of [...forgetting.keys()]) cancel(name);
    },
  };
}
