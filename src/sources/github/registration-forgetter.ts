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
  /** Runner names whose registration is being removed, and the wait before the next try. */
  const forgetting = new Map<string, NodeJS.Timeout | undefined>();
  let stopped = false;

  function forget(runner: RegisteredRunner, attempt = 0): void {
    const name = runner.runnerName;
    if (stopped || (attempt === 0 && forgetting.has(name))) return;
    forgetting.set(name, undefined);
    const retry = (why: string) => {
      if (stopped || attempt + 1 >= attempts) {
        forgetting.delete(name);
        options.logger.info({ pod: name, why }, `runner registration left to ${options.leftTo}`);
        return;
      }
      const delay = backoffDelayMs(attempt, BACKGROUND_RETRIES.forgetRegistration);
      const timer = setTimeout(() => forget(runner, attempt + 1), delay);
      timer.unref();
      forgetting.set(name, timer);
    };
    options
      .remove(runner)
      .then((result) => {
        if (result === 'busy') retry('the CI system still counts it busy');
        else forgetting.delete(name);
      })
      .catch((err: unknown) => retry(err instanceof Error ? err.message : String(err)));
  }

  return {
    forget: (runner: RegisteredRunner) => forget(runner),
    start() {
      stopped = false;
    },
    stop() {
      stopped = true;
      for (const timer of forgetting.values()) clearTimeout(timer);
      forgetting.clear();
    },
  };
}
