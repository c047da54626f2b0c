import type { KubeConfig, KubernetesListObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { buildClassifier } from '../../classes/matching.ts';
import type { RunnerClasses } from '../../classes/schema.ts';
import type { KubeApis } from '../../kube/client.ts';
import { type RunningWatch, startWatch } from '../../kube/watch.ts';
import type { EpochMillis, JobEvent } from '../../model/job.ts';
import { ANNOTATION_ADMITTED_AT } from '../../model/keys.ts';
import type { RunActuator } from '../../ports.ts';
import type { TektonConfig } from './config.ts';
import { PIPELINE_RUNS, type PipelineRun, TEKTON_GROUP, TEKTON_VERSION } from './pipeline-run.ts';
import { createRunActuator, type RunLocation } from './run-actuator.ts';
import { runDeletedEvent, runEvent } from './run-events.ts';

export interface TektonSourceOptions {
  kc: KubeConfig;
  apis: KubeApis;
  config: TektonConfig;
  classes: RunnerClasses;
  logger: Logger;
  onEvent: (event: JobEvent) => void;
  /** A run Gantry admitted got its status.startTime from Tekton: how long that took. */
  onRunStarted?: (className: string, delayMs: number) => void;
  now?: () => EpochMillis;
}

/**
 * The Tekton queue's eyes and hands: a list+watch of PipelineRuns (in the configured namespaces, or
 * cluster-wide) turned into job events for the ledger, and the actuator that admits and cancels
 * them. Only runs in a class are followed; a run first seen finished (e.g. at start-up) is history,
 * not news, and reported to nobody.
 */
export function createTektonSource(options: TektonSourceOptions) {
  const { kc, apis, config, logger } = options;
  const now = options.now ?? Date.now;
  const classify = buildClassifier(options.classes);
  const log = logger.child({ component: 'tekton' });
  /** Runs reported unfinished, by key: where they are, and whether their start delay was reported. */
  const followed = new Map<string, RunLocation & { startReported: boolean }>();
  const watches: RunningWatch[] = [];

  function report(event: JobEvent | undefined, run: PipelineRun): void {
    if (!event) return;
    const classification = classify(event.job);
    if (!classification.matched) {
      if (event.job.requestedClass !== undefined && event.kind === 'queued') {
        log.warn(
          { run: event.job.name, class: event.job.requestedClass, reason: classification.reason },
          'queued run names no Tekton class that takes its namespace; left pending',
        );
      }
      return;
    }
    const key = event.job.key;
    let entry = followed.get(key);
    if (event.kind === 'completed') {
      if (!entry) return;
      followed.delete(key);
    } else if (!entry) {
      const { namespace = '', name = '', uid = '' } = run.metadata ?? {};
      entry = { namespace, name, uid, startReported: false };
      followed.set(key, entry);
    }
    reportStartDelay(entry, run, classification.className);
    options.onEvent(event);
  }

  function reportStartDelay(entry: { startReported: boolean }, run: PipelineRun, className: string): void {
    const admittedAt = Date.parse(run.metadata?.annotations?.[ANNOTATION_ADMITTED_AT] ?? '');
    const startTime = Date.parse(run.status?.startTime ?? '');
    if (entry.startReported || !Number.isFinite(admittedAt) || !Number.isFinite(startTime)) return;
    entry.startReported = true;
    options.onRunStarted?.(className, Math.max(0, startTime - admittedAt));
  }

  function watch(namespace: string | undefined): RunningWatch {
    const base = `/apis/${TEKTON_GROUP}/${TEKTON_VERSION}`;
    const params = { group: TEKTON_GROUP, version: TEKTON_VERSION, plural: PIPELINE_RUNS };
    return startWatch<PipelineRun>({
      kc,
      logger,
      path: namespace ? `${base}/namespaces/${namespace}/${PIPELINE_RUNS}` : `${base}/${PIPELINE_RUNS}`,
      list: async () =>
        (namespace
          ? await apis.custom.listNamespacedCustomObject({ ...params, namespace })
          : await apis.custom.listClusterCustomObject(params)) as KubernetesListObject<PipelineRun>,
      handlers: {
        upsert: (run) => report(runEvent(run, now()), run),
        remove: (run) => report(runDeletedEvent(run, now()), run),
      },
    });
  }

  const actuator: RunActuator = createRunActuator({
    custom: apis.custom,
    locate: (key) => followed.get(key),
    now,
  });

  return {
    actuator,
    /** Starts the watches; resolves once every first list has been reported. */
    async start(): Promise<void> {
      const namespaces = config.namespaces.length > 0 ? config.namespaces : [undefined];
      for (const namespace of namespaces) watches.push(watch(namespace));
      await Promise.all(watches.map((w) => w.synced));
      log.info(
        { namespaces: config.namespaces.length > 0 ? config.namespaces : 'all', runs: followed.size },
        'tekton queue synced',
      );
    },
    async stop(): Promise<void> {
      await Promise.all(watches.map((w) => w.stop()));
    },
  };
}

export type TektonSource = ReturnType<typeof createTektonSource>;
