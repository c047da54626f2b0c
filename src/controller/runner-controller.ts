import { randomBytes } from 'node:crypto';
import type { KubeConfig, V1Pod, V1ResourceQuota } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { buildClassifier, buildRunnerTrustCheck, type ClassTrustPolicy } from '../classes/matching.ts';
import type { RunnerClasses } from '../classes/schema.ts';
import { ConfigError } from '../errors.ts';
import type { KubeApis, KubeRequestRecord } from '../kube/client.ts';
import { type RunningWatch, startWatch } from '../kube/watch.ts';
import { findAdmissionProblems } from '../launcher/admission-check.ts';
import { createKubeLauncher } from '../launcher/kube-launcher.ts';
import { quotaLimits } from '../launcher/quota-headroom.ts';
import { observeRunnerPod } from '../launcher/runner-observation.ts';
import { Ledger, type LedgerChange } from '../ledger/ledger.ts';
import type { JobEvent } from '../model/job.ts';
import { RUNNER_POD_SELECTOR } from '../model/keys.ts';
import type { PlacementHold } from '../model/ledger-snapshot.ts';
import { DEFAULT_RUNNER_NAME_PREFIX } from '../model/runner-name.ts';
import type { RunnerObservation } from '../model/runner-observation.ts';
import { runnerHealthRules } from '../planner/runner-health.ts';
import type { RunActuator, RunnerRegistrar } from '../ports.ts';
import type { LaunchMetrics } from './metrics.ts';
import { type ConcurrencyBounds, createReconciler, type ReconcilerOptions } from './reconciler.ts';

export interface RunnerControllerOptions {
  kc: KubeConfig;
  apis: KubeApis;
  classes: RunnerClasses;
  /** Which jobs trusted-only classes take (GitHub's trust policy). */
  trustPolicy?: ClassTrustPolicy;
  /** `github.runners.namePrefix`: new runners' names start with it. */
  namePrefix?: string;
  /** Registers runners with GitHub; absent when no class serves GitHub jobs. */
  registrar?: RunnerRegistrar;
  /** Admits and cancels queued Tekton runs; absent when Tekton is disabled. */
  runs?: RunActuator;
  logger: Logger;
  startTimeoutMs: number;
  capacityTimeoutMs: number;
  deadlineGraceMs: number;
  reconcilePeriodMs: number;
  /** Runner actions under way at once: the limit adapts within these bounds (see AdaptiveLimit). */
  concurrency: ConcurrencyBounds;
  metrics?: LaunchMetrics;
  /** Observers of ledger changes (metrics, logs); they must not throw. */
  onChange?: (change: LedgerChange) => void;
  /** Called after each reconcile pass. */
  onPass?: ReconcilerOptions['onPass'];
}

/**
 * Supply for queued jobs: the ledger fed by the sources (`applyJobEvent`) and by watches of the
 * runner pods and ResourceQuotas in every namespace of a GitHub class, and the reconcile loop acting
 * on it: launching and removing runners, admitting and cancelling Tekton runs.
 * Watches are per namespace, matching the namespaced Roles Gantry is granted.
 */
export function createRunnerController(options: RunnerControllerOptions) {
  const { kc, apis, classes, logger } = options;
  const ledger = new Ledger({
    classify: buildClassifier(classes, options.trustPolicy),
    checkRunnerTrust: buildRunnerTrustCheck(classes, options.trustPolicy),
    health: runnerHealthRules(options),
    naming: {
      prefix: options.namePrefix ?? DEFAULT_RUNNER_NAME_PREFIX,
      // This run's own: when it started, and a little chance, for replicas started together.
      generation: `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`,
    },
  });
  const { registrar, runs, metrics } = options;
  metrics?.setLimit('kubernetes', options.concurrency.initial);
  /**
   * The classes a batch of ledger changes concerns: a job's class (when a class takes it) and the
   * class of the runner that took or ran it (when the ledger knows that runner).
   */
  const classesOf = (changes: readonly LedgerChange[]): Set<string> => {
    const found = new Set<string>();
    const add = (name: string | undefined) => {
      if (name !== undefined) found.add(name);
    };
    const runnerClass = (name: string | undefined) =>
      name === undefined ? undefined : ledger.runnerObservation(name)?.className;
    for (const change of changes) {
      if (change.kind === 'job-queued' || change.kind === 'job-started') {
        const { classification, runnerName } = change.job;
        add(classification.matched ? classification.className : undefined);
        add(runnerClass(runnerName));
      } else if (change.kind === 'job-completed') {
        add(change.className);
        add(runnerClass(change.runnerName));
      } else if (change.kind === 'trust-violation') add(change.className);
      else if (change.kind !== 'job-unclassified') add(change.runner.className);
    }
    return found;
  };
  const classesIn = (namespace: string) =>
    Object.keys(classes).filter((name) => classes[name]?.namespace === namespace);
  const log = logger.child({ component: 'runner-controller' });
  /** Logs what needs a person's eye and tells the observers (metrics, status page). */
  const report = (change: LedgerChange) => {
    if (change.kind === 'trust-violation') {
      log.error(
        {
          class: change.className,
          job: change.job.key,
          repo: change.job.repo,
          run: change.job.runId,
          pod: change.runnerName,
          violation: change.violation,
          untrustedBecause: change.job.origin?.untrustedBecause,
        },
        change.contained
          ? 'trust violation: GitHub gave this runner a job it must not run; stopping the runner'
          : 'trust violation: GitHub gave this runner a job of another trust; counted',
      );
    } else if (change.kind === 'runner-lost') {
      log.warn(
        {
          class: change.runner.className,
          pod: change.runner.name,
          reason: change.reason,
          job: change.jobKey,
        },
        change.midJob ? 'runner lost mid-job: its job fails on GitHub' : 'runner lost before it took a job',
      );
    }
    options.onChange?.(change);
  };
  const reconciler = createReconciler({
    ledger,
    classes,
    ...(registrar
      ? {
          actuator: createKubeLauncher({
            core: apis.core,
            registrar,
            logger,
            onRegistrationDiscarded: ({ className, reason, removed }) =>
              metrics?.registrationDiscarded(className, reason, removed),
          }),
        }
      : {}),
    ...(runs ? { runs } : {}),
    logger,
    periodMs: options.reconcilePeriodMs,
    concurrency: options.concurrency,
    onLimit: (limit) => metrics?.setLimit('kubernetes', limit),
    ready: () => watches.every((watch) => watch.isOpen()),
    onChange: report,
    ...(options.onPass ? { onPass: options.onPass } : {}),
  });
  /** Whether this replica acts (leads); a follower keeps its ledger warm and leaves GitHub alone. */
  let acting = false;
  const notify = (changes: LedgerChange[]) => {
    for (const change of changes) {
      report(change);
      reconciler.observe(change);
      // A pod something else removed (the pod garbage collector after its node went, a person) left
      // its registration behind: remove it now, or once GitHub lets go of the job it lost.
      if (change.kind === 'runner-gone' && !change.deleteRequested && registrar && acting) {
        const { name: runnerName, className, repo } = change.runner;
        registrar.forget({ runnerName, className, ...(repo !== undefined ? { repo } : {}) });
      }
    }
  };
  // Runner pods live in the namespaces of the classes that launch them; Tekton runs have none.
  const namespaces = registrar
    ? [
        ...new Set(
          Object.values(classes)
            .filter((c) => c.match.github)
            .map((c) => c.namespace),
        ),
      ].sort()
    : [];
  const quotasByNamespace = new Map<string, Map<string, V1ResourceQuota>>();
  const watches: RunningWatch[] = [];

  function watchNamespace(namespace: string): void {
    watches.push(
      startWatch<V1Pod>({
        kc,
        logger,
        path: `/api/v1/namespaces/${namespace}/pods`,
        labelSelector: RUNNER_POD_SELECTOR,
        list: () => apis.core.listNamespacedPod({ namespace, labelSelector: RUNNER_POD_SELECTOR }),
        handlers: {
          upsert(pod) {
            const observation = observeRunnerPod(pod);
            if (!observation) return;
            const before = ledger.runnerObservation(observation.name);
            const changes = ledger.observeRunner(observation);
            notify(changes);
            if (changesPlan(before, observation, changes)) reconciler.trigger([observation.className]);
          },
          remove(pod) {
            const name = pod.metadata?.name;
            if (!name) return;
            // The pod's last state says when it ended (its deletion time when removed while running).
            const observation = observeRunnerPod(pod);
            if (observation) notify(ledger.observeRunner(observation));
            const gone = ledger.forgetRunner(name);
            notify(gone);
            if (gone.length > 0) reconciler.trigger(classesOf(gone));
          },
        },
      }),
    );
    const quotas = new Map<string, V1ResourceQuota>();
    quotasByNamespace.set(namespace, quotas);
    const update = () => {
      ledger.setQuotaLimits(namespace, quotaLimits([...quotas.values()]));
      reconciler.trigger(classesIn(namespace));
    };
    watches.push(
      startWatch<V1ResourceQuota>({
        kc,
        logger,
        path: `/api/v1/namespaces/${namespace}/resourcequotas`,
        list: () => apis.core.listNamespacedResourceQuota({ namespace }),
        handlers: {
          upsert(quota) {
            quotas.set(quota.metadata?.name ?? '', quota);
            update();
          },
          remove(quota) {
            quotas.delete(quota.metadata?.name ?? '');
            update();
          },
        },
      }),
    );
  }

  return {
    ledger,
    namespaces,
    /** Runner actions that may be under way now (the adaptive limit). */
    limit: () => reconciler.limit(),
    /** The classes held on account of their runner groups, as last read; the others are released. */
    holdPlacements(holds: ReadonlyMap<string, PlacementHold>): void {
      for (const className of Object.keys(classes)) ledger.setPlacementHold(className, holds.get(className));
      reconciler.trigger();
    },
    /** A source's event: demand changed. */
    applyJobEvent(event: JobEvent): void {
      const changes = ledger.applyJobEvent(event);
      notify(changes);
      const concerned = classesOf(changes);
      if (concerned.size > 0) reconciler.trigger(concerned);
    },
    /**
     * An answer (or none) of the apiserver to a request Gantry sent: writes steer the concurrency
     * limit of runner actions, 429, 5xx and no answer in time making it smaller.
     */
    observeKubeRequest(record: KubeRequestRecord): void {
      if (!WRITE_VERBS.has(record.verb)) return;
      if (record.code === 0 || record.code === 429 || record.code >= 500) {
        reconciler.observeKubeCall({
          kind: 'overload',
          ...(record.retryAfterMs !== undefined ? { retryAfterMs: record.retryAfterMs } : {}),
        });
      } else reconciler.observeKubeCall({ kind: 'answer', latencyMs: record.latencyMs });
    },
    /**
     * Refuses to start (ConfigError, naming the class and the apiserver's words) when the apiserver
     * would refuse a class's runner pods: a dry-run create of one per class.
     */
    async checkPodAdmission(): Promise<void> {
      if (!registrar) return;
      const problems = await findAdmissionProblems(apis.core, classes, logger);
      const [first] = problems;
      if (!first) return;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more classes)` : '';
      throw new ConfigError(
        `class ${first.className}: the apiserver refuses its runner pods in namespace ${first.namespace}: ${first.message}${more}`,
      );
    },
    /**
     * Starts the watches and resolves once every first list is in: planning before the ledger knows
     * the runners that already exist would create them again after a restart.
     */
    async start(): Promise<void> {
      for (const namespace of namespaces) watchNamespace(namespace);
      await Promise.all(watches.map((w) => w.synced));
    },
    /** Starts planning and acting on the ledger (the leader does; after start()). */
    startActing(): void {
      acting = true;
      reconciler.start();
    },
    /** Stops acting at once; resolves when the calls in flight have returned. The watches go on. */
    stopActing(): Promise<void> {
      acting = false;
      return reconciler.stop();
    },
    async stop(): Promise<void> {
      acting = false;
      await reconciler.stop();
      await Promise.all(watches.map((w) => w.stop()));
    },
  };
}

export type RunnerController = ReturnType<typeof createRunnerController>;

/**
 * Whether a pod update can change what the planner does for its class. Most updates of a starting
 * pod (scheduled, conditions) cannot: it is supply as it was. What time alone changes (start and idle
 * timeouts) the periodic pass plans. A pod the ledger did not know, one that ran (it may end a start
 * failure's hold), ended, failed to start, was taken away or is being deleted can.
 */
export function changesPlan(
  before: RunnerObservation | undefined,
  after: RunnerObservation,
  changes: readonly LedgerChange[],
): boolean {
  if (changes.length > 0 || before === undefined) return true;
  const ended = (o: RunnerObservation) => o.phase === 'Succeeded' || o.phase === 'Failed';
  return (
    ended(before) !== ended(after) ||
    before.deleting !== after.deleting ||
    (before.startFailure === undefined) !== (after.startFailure === undefined) ||
    before.lost !== after.lost
  );
}

/** Requests that change something: what the actions send, and what the limit is about. */
const WRITE_VERBS = new Set(['post', 'put', 'patch', 'delete']);
