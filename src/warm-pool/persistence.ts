import type { Logger } from 'pino';
import type { WarmPoolLearner } from './learner.ts';
import type { WarmPoolStore } from './store.ts';

export interface WarmPoolPersistence {
  /** On taking the lead: take over what earlier leaders learned, then save now and then. */
  start(): void;
  /** On losing the lead or stopping: save once more. */
  stop(): Promise<void>;
}

/**
 * The leader takes over what earlier leaders learned of arrivals, and writes what it learns now and
 * then; a replica that fails to read or write it goes on learning (a warning, and a retry next time).
 */
export function createWarmPoolPersistence(options: {
  learner: WarmPoolLearner;
  store: WarmPoolStore;
  saveIntervalMs: number;
  /** Whether this replica still leads when the saved state arrives. */
  leading: () => boolean;
  logger: Logger;
}): WarmPoolPersistence {
  const { learner, store } = options;
  const log = options.logger.child({ component: 'warm-pools' });
  let timer: NodeJS.Timeout | undefined;
  const save = () =>
    store
      .save(learner.state())
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'saving warm-pool state failed'));
  return {
    start() {
      void store
        .load()
        .then((saved) => {
          if (saved && options.leading()) learner.restore(saved);
        })
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reading warm-pool state failed'));
      clearInterval(timer);
      timer = setInterval(() => void save(), options.saveIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await save();
    },
  };
}
