import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isTransientKubeError, kubeMessage, kubeStatus } from '../kube/errors.ts';
import { withRetry } from '../util/retry.ts';
import { CALL_RETRIES } from '../util/schedules.ts';
import { type HistoryState, historyStateSchema } from './history.ts';

/**
 * What the warm-pool learner learned, kept across restarts in one ConfigMap Gantry owns (no store of
 * its own): read when a replica starts leading, written by the leader now and then. The chart grants
 * get and update on that ConfigMap by name, and create (which RBAC cannot limit by name).
 */

export const WARM_POOL_DATA_KEY = 'warm-pools.json';

export interface WarmPoolStore {
  /** The state last saved; undefined when there is none yet (or it cannot be used, with a warning). */
  load(): Promise<HistoryState | undefined>;
  save(state: HistoryState): Promise<void>;
}

export interface WarmPoolStoreOptions {
  core: CoreV1Api;
  namespace: string;
  name: string;
  logger: Logger;
  retry?: { attempts: number; baseDelayMs: number; maxDelayMs: number };
}

export function createWarmPoolStore(options: WarmPoolStoreOptions): WarmPoolStore {
  const { core, namespace, name } = options;
  const log = options.logger.child({ component: 'warm-pools', configMap: `${namespace}/${name}` });
  const policy = {
    ...CALL_RETRIES.warmPoolStore,
    ...options.retry,
    isRetryable: isTransientKubeError,
  };
  /** The resourceVersion last read or written: an update carries it, so two writers cannot both win. */
  let resourceVersion: string | undefined;

  const read = async (): Promise<V1ConfigMap | undefined> => {
    try {
      const found = await withRetry(() => core.readNamespacedConfigMap({ name, namespace }), policy);
      resourceVersion = found.metadata?.resourceVersion;
      return found;
    } catch (err) {
      if (kubeStatus(err) === 404) {
        resourceVersion = undefined;
        return undefined;
      }
      throw err;
    }
  };

  const body = (state: HistoryState): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'gantry', 'app.kubernetes.io/component': 'warm-pools' },
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    data: { [WARM_POOL_DATA_KEY]: JSON.stringify(state) },
  });

  return {
    async load() {
      const found = await read();
      const text = found?.data?.[WARM_POOL_DATA_KEY];
      if (text === undefined) return undefined;
      try {
        return historyStateSchema.parse(JSON.parse(text));
      } catch (err) {
        log.warn(
          { err: (err as Error).message.slice(0, 300) },
          'warm-pool state cannot be read; learning afresh',
        );
        return undefined;
      }
    },
    async save(state) {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const written =
            resourceVersion === undefined
              ? await withRetry(
                  () => core.createNamespacedConfigMap({ namespace, body: body(state) }),
                  policy,
                )
              : await withRetry(
                  () => core.replaceNamespacedConfigMap({ name, namespace, body: body(state) }),
                  policy,
                );
          resourceVersion = written.metadata?.resourceVersion;
          return;
        } catch (err) {
          const status = kubeStatus(err);
          // Someone else wrote (a leader before this one), or it was made or removed meanwhile: read its
          // version and write over it once; this replica leads.
          if (attempt === 0 && (status === 409 || status === 404)) {
            await read();
            continue;
          }
          throw new Error(
            `saving warm-pool state to ConfigMap ${namespace}/${name} failed: ${kubeMessage(err)}`,
          );
        }
      }
    },
  };
}
