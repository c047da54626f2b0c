import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { BACKGROUND_RETRIES } from '../util/schedules.ts';

export interface WatchHandlers<T extends KubernetesObject> {
  upsert(object: T): void;
  remove(object: T): void;
}

export interface WatchOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Collection path, e.g. /api/v1/namespaces/ci/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  handlers: WatchHandlers<T>;
  logger: Logger;
  /** Wait before restarting a watch that failed; doubles up to 8 s while failures continue. */
  restartDelayMs?: number;
}

/**
 * A list-then-watch of one collection that restarts itself after an error (client-node's informer
 * does not), with growing delays so a down apiserver is not hammered. A relist reports every object
 * again, which the handlers treat as idempotent upserts.
 */
export interface RunningWatch {
  /** Resolves once the first list has been delivered and the watch is open. */
  synced: Promise<void>;
  /** Whether the watch is open now: false from a failure until it has been opened again. */
  isOpen(): boolean;
  stop(): Promise<void>;
}

/** A watch up this long before it failed was healthy: its next restart waits the base delay again. */
const HEALTHY_AFTER_MS = 30_000;

export function startWatch<T extends KubernetesObject>(options: WatchOptions<T>): RunningWatch {
  const log = options.logger.child({ component: 'watch', path: options.path });
  const informer = makeInformer<T>(options.kc, options.path, options.list, options.labelSelector);
  const base = options.restartDelayMs ?? BACKGROUND_RETRIES.watchRestart.baseDelayMs;
  let delay = base;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let open = false;
  informer.on('add', options.handlers.upsert);
  informer.on('update', options.handlers.upsert);
  informer.on('delete', options.handlers.remove);
  // `connect` fires before every attempt, so a watch counts as healthy only once it has stayed up.
  let connectedAt = 0;
  informer.on('connect', () => {
    connectedAt = Date.now();
  });
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((resolve) => {
    markSynced = resolve;
  });
  const begin = () =>
    informer.start().then(() => {
      open = true;
      markSynced();
    }, onError);
  const restart = () => {
    if (stopped) return;
    if (connectedAt > 0 && Date.now() - connectedAt > HEALTHY_AFTER_MS) delay = base;
    timer = setTimeout(begin, delay);
    // At most a few seconds, so a watch is back soon after the apiserver.
    delay = Math.min(delay * 2, BACKGROUND_RETRIES.watchRestart.maxDelayMs);
  };
  const onError = (err: unknown) => {
    open = false;
    if (stopped) return;
    log.warn(
      { err: err instanceof Error ? err.message : String(err), retryInMs: delay },
      'watch failed; restarting',
    );
    restart();
  };
  informer.on('error', onError);
  void begin();
  return {
    synced,
    isOpen: () => open,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}
