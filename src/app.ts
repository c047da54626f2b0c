import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildServableCheck } from './classes/matching.ts';
import type { Config } from './config/schema.ts';
import { createLaunchMetrics } from './controller/metrics.ts';
import { createRunnerController, type RunnerController } from './controller/runner-controller.ts';
import { advertisedUrl } from './election/advertise.ts';
import { createElector, type Elector, electionIdentity } from './election/elector.ts';
import { leaderMetric } from './election/metrics.ts';
import { createHttpServer, createWebhookServer } from './http/server.ts';
import { createKubeApis } from './kube/client.ts';
import { kubeRequestCounter } from './kube/metrics.ts';
import { createLogger } from './log/logger.ts';
import { createGantryMetrics, type GantryMetrics } from './metrics/gantry-metrics.ts';
import { createMetricsRegistry } from './metrics/registry.ts';
import { createGithubRegistrar } from './sources/github/registrar.ts';
import { createGithubSource, type GithubSource } from './sources/github/source.ts';
import { scaleSetCapacity } from './sources/scaleset/capacity.ts';
import { createScaleSetSource, type ScaleSetSource } from './sources/scaleset/source.ts';
import { createTektonSource, type TektonSource } from './sources/tekton/source.ts';
import { startTektonWebhook, type TektonWebhook } from './sources/tekton/webhook.ts';
import { JobRecorder } from './trace/recorder.ts';
import { createWarmPoolLearner, type WarmPoolLearner } from './warm-pool/learner.ts';
import { registerWarmPoolMetrics } from './warm-pool/metrics.ts';
import { createWarmPoolPersistence, type WarmPoolPersistence } from './warm-pool/persistence.ts';
import { withWarmPoolTargets } from './warm-pool/schedule.ts';
import { createWarmPoolStore } from './warm-pool/store.ts';

export interface App {
  logger: Logger;
  /** Health, readiness, metrics and status. */
  http: FastifyInstance;
  /** GitHub's webhook listener; absent when the GitHub source is off. */
  webhooks: FastifyInstance | undefined;
  metrics: Registry;
  /** Queue-time, pool and cost metrics and the status report, observed from the ledger. */
  observers: GantryMetrics;
  /** The ledger and its loop; absent when neither a GitHub class nor Tekton is on. */
  runners: RunnerController | undefined;
  github: GithubSource | undefined;
  /** GitHub in scale-set mode (github.mode scaleSets): the scale sets' sessions and runners. */
  scaleSets: ScaleSetSource | undefined;
  /** The leader election; absent when disabled (the one replica then always leads). */
  elector: Elector | undefined;
  /** Whether this replica plans and acts now. */
  isLeader(): boolean;
  /** Starts every part; `webhookUrl` is the webhook listener's base URL, when it listens. */
  start(): Promise<{ url: string; webhookUrl?: string }>;
  /**
   * Stops taking work (readiness, HTTP), lets the work in flight finish, stops acting and releases
   * the lease. Bounding it in time is the caller's choice (see main.ts).
   */
  stop(): Promise<void>;
}

export interface AppDeps {
  logger?: Logger;
  /** Cluster access; by default KUBECONFIG, ~/.kube/config or the in-cluster service account. */
  kubeConfig?: KubeConfig;
  /** How far cost accounting trails the clock (see CostMeterOptions.settleMs). */
  costSettleMs?: number;
}

/**
 * Composition root: builds and wires the parts; holds no policy of its own.
 *
 *   JOB FLOW   sources (GitHub webhooks and poller, the Tekton PipelineRun watch) -> job events
 *              -> ledger -> plan() -> reconciler -> launcher (runner pods, JIT Secrets) and the
 *              Tekton run actuator -> pod and quota watches -> ledger
 *
 * Every replica keeps its ledger current (sources, watches); only the leader plans and acts (the
 * reconcile loop, the poller, the registrar's sweeps and checks): see startLeading.
 */
export function createApp(config: Config, deps: AppDeps = {}): App {
  const logger = deps.logger ?? createLogger(config.log.level);
  const metrics = createMetricsRegistry();
  let ready = false;
  let runners: RunnerController | undefined;
  const observers = createGantryMetrics({
    registry: metrics,
    classes: config.classes,
    snapshot: (now) => runners?.ledger.snapshot(config.classes, now),
    ...(deps.costSettleMs !== undefined ? { costSettleMs: deps.costSettleMs } : {}),
  });
  // Gantry's own record of the jobs it saw, for `gantry trace export --gantry`.
  const recorder = config.trace.recentJobs > 0 ? new JobRecorder(config.trace.recentJobs) : undefined;
  // Classes with a queue-time objective: their warm pool is learned, and read by the planner as minIdle.
  const warmPools: WarmPoolLearner | undefined = Object.values(config.classes).some((c) => c.warmPool)
    ? createWarmPoolLearner({
        classes: config.classes,
        now: Date.now,
        runnerCreatedAt: (name) => runners?.ledger.runnerObservation(name)?.createdAt,
      })
    : undefined;
  if (warmPools) registerWarmPoolMetrics(metrics, warmPools);
  let warmPoolPersistence: WarmPoolPersistence | undefined;
  let scaleSets: ScaleSetSource | undefined;
  const http = createHttpServer({
    logger,
    metrics,
    isReady: () => ready,
    status: () => {
      const report = {
        ...observers.status(),
        ...(scaleSets ? { scaleSets: scaleSets.status() } : {}),
      };
      if (!warmPools) return report;
      const byClass = new Map(warmPools.status().map((s) => [s.className, s]));
      return {
        ...report,
        classes: report.classes.map((c) => {
          const pool = byClass.get(c.name);
          if (!pool) return c;
          const { className: _, ...warmPool } = pool;
          return { ...c, warmPool };
        }),
      };
    },
    ...(recorder ? { trace: (since: number | undefined) => recorder.trace(since, Date.now()) } : {}),
  });
  let webhooks: FastifyInstance | undefined;

  const githubClasses = Object.values(config.classes).filter((c) => c.match.github);
  let github: GithubSource | undefined;
  let registrar: ReturnType<typeof createGithubRegistrar> | undefined;
  let tekton: TektonSource | undefined;
  let startWebhook: (() => Promise<TektonWebhook>) | undefined;
  let webhook: TektonWebhook | undefined;
  let elector: Elector | undefined;
  const identity = electionIdentity();
  /** Where the other replicas reach this one (known once the HTTP server listens). */
  let advertised: string | undefined;
  let leading = false;
  let stopping = false;
  let warmPoolTicker: NodeJS.Timeout | undefined;
  const leaderGauge = leaderMetric(metrics);

  if (config.github.enabled && config.github.mode === 'scaleSets') {
    // No webhook listener and no poller: the leader's message sessions bring every job.
    scaleSets = createScaleSetSource({
      config: config.github,
      classes: config.classes,
      logger,
      metrics,
      onEvent: (event) => runners?.applyJobEvent(event),
      capacityOf: (className) => {
        const runnerClass = config.classes[className];
        const now = Date.now();
        const snapshot = runners?.ledger.snapshot(config.classes, now);
        return runnerClass && snapshot ? scaleSetCapacity(snapshot, className, runnerClass, now) : undefined;
      },
      identity,
      onPlacements: (holds) => runners?.holdPlacements(holds),
    });
  } else if (config.github.enabled) {
    webhooks = createWebhookServer(logger);
    github = createGithubSource({
      config: config.github,
      logger,
      metrics,
      webhooks,
      isServable: buildServableCheck(config.classes),
      runnerScopes: new Set(githubClasses.map((c) => c.scope)),
      // Every replica applies the deliveries it receives to its own ledger; only the leader acts.
      onEvent: (event) => runners?.applyJobEvent(event),
      sharedWebhooks: config.election.enabled,
      // A follower passes the deliveries it verified on to the leader, at the URL on the Lease.
      ...(config.election.enabled
        ? { forwardTo: { leading: () => leading, leaderUrl: () => elector?.leaderUrl() }, identity }
        : {}),
    });
  }
  const launchesRunners = (github !== undefined || scaleSets !== undefined) && githubClasses.length > 0;
  if (launchesRunners || config.tekton.enabled) {
    const kc = deps.kubeConfig ?? defaultKubeConfig();
    const countKubeRequest = kubeRequestCounter(metrics);
    const launchMetrics = createLaunchMetrics(metrics);
    const apis = createKubeApis(kc, {
      timeoutMs: config.kubernetes.requestTimeoutSeconds * 1000,
      onResponse: (record) => {
        countKubeRequest(record);
        // The runner actions' adaptive limit learns from every answer of the apiserver.
        runners?.observeKubeRequest(record);
      },
    });
    if (github && launchesRunners) {
      registrar = createGithubRegistrar({
        runners: github.runners,
        classes: config.classes,
        livePods: () => new Set(runners?.ledger.runnerNames() ?? []),
        repositories: () => config.github.repositories,
        logger,
        metrics,
        cleanupIntervalMs: config.github.runners.sweepIntervalSeconds * 1000,
        unsafePlacement: config.github.trust.unsafePlacement,
        placementCheckIntervalMs: config.github.trust.placementCheckIntervalSeconds * 1000,
        onPlacements: (holds) => runners?.holdPlacements(holds),
        concurrency: adaptiveBounds(config.github.runners.concurrency),
        onConcurrencyLimit: (limit) => launchMetrics.setLimit('github', limit),
      });
      launchMetrics.setLimit('github', adaptiveBounds(config.github.runners.concurrency).initial);
    }
    if (config.tekton.enabled) {
      tekton = createTektonSource({
        kc,
        apis,
        config: config.tekton,
        classes: config.classes,
        logger,
        onEvent: (event) => runners?.applyJobEvent(event),
        onRunStarted: (className, delayMs) => observers.observeRunStartDelay(className, delayMs),
      });
      startWebhook = () =>
        startTektonWebhook({
          config: config.tekton,
          classes: config.classes,
          apis,
          namespace: ownNamespace(kc),
          logger,
        });
    }
    if (warmPools) {
      warmPoolPersistence = createWarmPoolPersistence({
        learner: warmPools,
        store: createWarmPoolStore({
          core: apis.core,
          namespace: config.warmPools.configMap.namespace ?? ownNamespace(kc),
          name: config.warmPools.configMap.name,
          logger,
        }),
        saveIntervalMs: config.warmPools.saveIntervalSeconds * 1000,
        leading: () => leading,
        logger,
      });
    }
    const runnerRegistrar = scaleSets && launchesRunners ? scaleSets.registrar : registrar;
    runners = createRunnerController({
      kc,
      apis,
      classes: warmPools
        ? withWarmPoolTargets(config.classes, (name) => warmPools.targetOf(name))
        : config.classes,
      trustPolicy: config.github.trust,
      namePrefix: config.github.runners.namePrefix,
      ...(runnerRegistrar ? { registrar: runnerRegistrar } : {}),
      ...(tekton ? { runs: tekton.actuator } : {}),
      logger,
      startTimeoutMs: config.controller.startTimeoutSeconds * 1000,
      capacityTimeoutMs: config.controller.capacityTimeoutSeconds * 1000,
      deadlineGraceMs: config.controller.deadlineGraceSeconds * 1000,
      reconcilePeriodMs: config.controller.reconcilePeriodSeconds * 1000,
      concurrency: adaptiveBounds(config.controller.concurrency),
      metrics: launchMetrics,
      onChange: (change) => {
        observers.onChange(change);
        recorder?.observe(change);
        warmPools?.observe(change);
      },
      onPass: (pass) => observers.onPass(pass),
    });
    if (config.election.enabled) {
      const election = config.election;
      const retryPeriodMs = election.retryPeriodSeconds * 1000;
      elector = createElector({
        // A lease request must not outlast a retry period: the renew deadline is counted in them.
        coordination: createKubeApis(kc, {
          timeoutMs: Math.min(config.kubernetes.requestTimeoutSeconds * 1000, retryPeriodMs),
          onResponse: countKubeRequest,
        }).coordination,
        namespace: election.namespace ?? ownNamespace(kc),
        leaseName: election.leaseName,
        identity,
        advertiseUrl: () => advertised,
        leaseDurationMs: election.leaseDurationSeconds * 1000,
        renewDeadlineMs: election.renewDeadlineSeconds * 1000,
        retryPeriodMs,
        logger,
        onStartedLeading: () => startLeading(),
        onStoppedLeading: () => void stopLeading(),
      });
    }
  } else if (Object.keys(config.classes).length > 0) {
    logger.warn(
      'runner classes are configured but neither github nor tekton is enabled: no runners will be launched',
    );
  }

  /** The leader's work: the reconcile loop, the poller and the registration sweep, or the scale sets' sessions. */
  function startLeading(): void {
    if (leading || stopping) return;
    leading = true;
    leaderGauge.set(true);
    runners?.startActing();
    github?.start();
    registrar?.start();
    scaleSets?.start();
    warmPoolPersistence?.start();
  }

  /** Stops acting at once (synchronously); what is already in flight is awaited. */
  async function stopLeading(): Promise<void> {
    if (!leading) return;
    leading = false;
    leaderGauge.set(false);
    await Promise.all([
      runners?.stopActing(),
      github?.stopPolling(),
      registrar?.stop(),
      warmPoolPersistence?.stop(),
      scaleSets?.stop(),
    ]);
  }

  return {
    logger,
    http,
    webhooks,
    metrics,
    observers,
    runners,
    github,
    scaleSets,
    elector,
    isLeader: () => leading,
    async start() {
      await registrar?.checkPlacements();
      await scaleSets?.checkPlacements();
      await runners?.checkPodAdmission();
      const url = await http.listen({ host: config.http.address, port: config.http.port });
      let webhookUrl: string | undefined;
      if (webhooks && github?.webhooksEnabled) {
        const { address, port } = config.github.webhook;
        webhookUrl = await webhooks.listen({ host: address, port });
        // Followers pass deliveries on to the leader's webhook listener.
        advertised = advertisedUrl(address, webhookUrl);
      }
      // Runners first: the ledger must know the pods that exist before demand is planned against it,
      // and a follower keeps it warm so that taking over needs no relist.
      await runners?.start();
      await tekton?.start();
      // Every replica answers admission reviews: the decision needs the classes, not the lead.
      webhook = await startWebhook?.();
      if (warmPools) {
        // Hours are learned as they end, on every replica (each applies the same webhooks).
        const tick = setInterval(() => warmPools.tick(), 60_000);
        tick.unref();
        warmPoolTicker = tick;
      }
      if (elector) elector.start();
      else startLeading();
      ready = true;
      logger.info(
        { url, webhookUrl, classes: Object.keys(config.classes), election: elector?.identity },
        'gantry started',
      );
      return { url, ...(webhookUrl ? { webhookUrl } : {}) };
    },
    async stop() {
      // No new work: out of the Service, no new webhooks; deliveries already accepted are applied.
      stopping = true;
      ready = false;
      await Promise.all([http.close(), webhooks?.close()]);
      await stopLeading();
      await github?.stop();
      await webhook?.stop();
      await tekton?.stop();
      // Only once nothing acts any more may a successor take over, at once.
      await elector?.stop();
      await runners?.stop();
      if (warmPoolTicker) clearInterval(warmPoolTicker);
      logger.info('gantry stopped');
    },
  };
}

/** A configured maximum as adaptive bounds: from 8 (or the maximum, if lower), never below 1. */
function adaptiveBounds(max: number): { initial: number; min: number; max: number } {
  return { initial: Math.min(8, max), min: 1, max };
}

/** The namespace this process runs in: POD_NAMESPACE, the service account's, or the kubeconfig's. */
function ownNamespace(kc: KubeConfig): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  }
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
