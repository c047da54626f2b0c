import { RegistrationExistsError, type RunnerRegistrar } from '../../src/ports.ts';

/** GitHub's side of a runner, kept in memory: what the launcher registered and removed. */
export function memoryRegistrar(): RunnerRegistrar & {
  registered: Set<string>;
  busy: Set<string>;
  /** Every registration made, in order (a replaced one too). */
  made: string[];
} {
  const registered = new Set<string>();
  const busy = new Set<string>();
  const made: string[] = [];
  return {
    registered,
    busy,
    made,
    async register(action, _runnerClass, options) {
      if (options?.replaceExisting === false && registered.has(action.runnerName)) {
        throw new RegistrationExistsError(`runner ${action.runnerName} is registered already`);
      }
      registered.add(action.runnerName);
      made.push(action.runnerName);
      return { encodedJitConfig: `jit-for-${action.runnerName}` };
    },
    async unregister({ runnerName: name }) {
      if (busy.has(name)) return 'busy';
      return registered.delete(name) ? 'removed' : 'absent';
    },
    forget({ runnerName: name }) {
      if (!busy.has(name)) registered.delete(name);
    },
  };
}
