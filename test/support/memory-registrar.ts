import type { RunnerRegistrar } from '../../src/ports.ts';

/** GitHub's side of a runner, kept in memory: what the launcher registered and removed. */
export function memoryRegistrar(): RunnerRegistrar & { registered: Set<string>; busy: Set<string> } {
  const registered = new Set<string>();
  const busy = new Set<string>();
  return {
    registered,
    busy,
    async register(action) {
      registered.add(action.runnerName);
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
