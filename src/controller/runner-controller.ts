import { randomBytes } from 'node:crypto';
import type { KubeConfig, V1Pod, V1ResourceQuota } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { buildClassifier, buildRunnerTrustCheck, type ClassTrustPolicy } from '../classes/matching.ts';
import type { RunnerClasses } from '../classes/schema.ts';
import { ConfigError } from '../errors.ts';
import type { KubeApis } from '../kube/client.ts';
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
import { runnerHealthRules } from '../planner/runner-health.ts';
import type { RunActuator, RunnerRegistrar } from '../ports.ts';
import { createReconciler, type ReconcilerOptions } from './reconciler.ts';

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
  concurrency: number;
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
  const { registrar, runs } = options;
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
    ...(registrar ? { actuator: createKubeLauncher({ core: apis.core, registrar, logger }) } : {}),
    ...(runs ? { runs } : {}),
    logger,
    periodMs: options.reconcilePeriodMs,
    concurrency: options.concurrency,
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
            notify(ledger.observeRunner(observation));
            reconciler.trigger();
          },
          remove(pod) {
            const name = pod.metadata?.name;
            if (!name) return;
            // The pod's last state says when it ended (its deletion time when removed while running).
            const observation = observeRunnerPod(pod);
            if (observation) notify(ledger.observeRunner(observation));
            notify(ledger.forgetRunner(name));
            reconciler.trigger();
          },
        },
      }),
    );
    const quotas = new Map<string, V1ResourceQuota>();
    quotasByNamespace.set(namespace, quotas);
    const update = () => {
      ledger.setQuotaLimits(namespace, quotaLimits([...quotas.values()]));
      reconciler.trigger();
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
    /** The classes held on account of their runner groups, as last read; the others are released. */
    holdPlacements(holds: ReadonlyMap<string, PlacementHold>): void {
      for (const className of Object.keys(classes)) ledger.setPlacementHold(className, holds.get(className));
      reconciler.trigger();
    },
    /** A source's event: demand changed. */
    applyJobEvent(event: JobEvent): void {
      notify(ledger.applyJobEvent(event));
      reconciler.trigger();
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
