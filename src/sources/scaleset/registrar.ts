import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { RunnerClass } from '../../classes/schema.ts';
import type { CreateRunnerAction } from '../../model/action.ts';
import { RegistrationExistsError, type RunnerRegistrar } from '../../ports.ts';
import { createRegistrationForgetter } from '../github/registration-forgetter.ts';
import { isServiceError } from './actions-service.ts';
import type { ScaleSetApi } from './scale-set-api.ts';

/**
 * Runners of scale sets for the launcher: a JIT config from the class's scale set (the Actions
 * service, no REST quota), and removal through the service. A runner is known by its name, which is
 * its pod's; its id is remembered from its JIT config, or looked up by name.
 */

export interface ScaleSetRegistrarOptions {
  api: ScaleSetApi;
  /** The class's scale set id (created or adopted when first asked). */
  scaleSetIdOf: (className: string) => Promise<number>;
  logger: Logger;
}

export function createScaleSetRegistrar(options: ScaleSetRegistrarOptions): RunnerRegistrar & {
  stop(): void;
} {
  const { api } = options;
  const log = options.logger.child({ component: 'scaleset-registrar' });
  const ids = new LRUCache<string, number>({ max: 50_000 });

  async function idOf(name: string): Promise<number | null> {
    const known = ids.get(name);
    if (known !== undefined) return known;
    const found = await api.runnerByName(name);
    if (found) ids.set(name, found.id);
    return found?.id ?? null;
  }

  async function remove(name: string): Promise<'removed' | 'busy' | 'absent'> {
    const id = await idOf(name);
    if (id === null) return 'absent';
    try {
      await api.removeRunner(id);
      ids.delete(name);
      return 'removed';
    } catch (err) {
      if (isServiceError(err, 404)) {
        ids.delete(name);
        return 'absent';
      }
      // The service refuses to remove a runner that runs a job (JobStillRunningException).
      if (isServiceError(err, 409) || isServiceError(err, 400, 'JobStillRunning')) return 'busy';
      throw err;
    }
  }

  const forgetter = createRegistrationForgetter({
    remove: (runner) => remove(runner.runnerName),
    logger: log,
    leftTo: 'the service to remove',
  });

  return {
    async register(action: CreateRunnerAction, _runnerClass: RunnerClass, registerOptions) {
      const scaleSetId = await options.scaleSetIdOf(action.className);
      const name = action.runnerName;
      forgetter.cancel(name);
      try {
        const jit = await api.generateJitConfig(scaleSetId, name);
        ids.set(name, jit.runner.id);
        return { encodedJitConfig: jit.encodedJitConfig };
      } catch (err) {
        if (!isServiceError(err, 409, 'AgentExists')) throw err;
        // Registered alongside a pod create: the name may be a live runner's, whose pod exists.
        if (registerOptions?.replaceExisting === false) {
          throw new RegistrationExistsError(`runner ${name} is registered already`, { cause: err });
        }
        // A retried create whose first answer was lost: that runner is this one's, never started.
        const existing = await api.runnerByName(name);
        if (!existing || existing.scaleSetId !== scaleSetId) throw err;
        log.info({ pod: name, runner: existing.id }, 'runner name taken by an earlier try; replacing it');
        await api.removeRunner(existing.id);
        const jit = await api.generateJitConfig(scaleSetId, name);
        ids.set(name, jit.runner.id);
        return { encodedJitConfig: jit.encodedJitConfig };
      }
    },
    unregister: (runner) => remove(runner.runnerName),
    forget: forgetter.forget,
    stop() {
      forgetter.stop();
    },
  };
}
