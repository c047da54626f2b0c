import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from './config/schema.ts';
import { createGithubRegistrar } from './controller/github-registrar.ts';
import { createRunnerController, type RunnerController } from './controller/runner-controller.ts';
import { advertisedUrl } from './election/advertise.ts';
import { createElector, type Elector, electionIdentity } from './election/elector.ts';
import { createHttpServer, createWebhookServer } from './http/server.ts';
import { createKubeApis } from './kube/client.ts';
import { createLogger } from './log/logger.ts';
import { createGantryMetrics, type GantryMetrics } from './metrics/gantry-metrics.ts';
import { createLaunchMetrics } from './metrics/launch-metrics.ts';
import { createMetricsRegistry } from './metrics/registry.ts';
import { buildServableCheck } from './planner/classify.ts';
import { createGithubSource, type GithubSource } from './sources/github/source.ts';
import { createTektonSource, type TektonSource } from './sources/tekton/source.ts';
import { startTektonWebhook, type TektonWebhook } from './sources/tekton/webhook.ts';

export interface App {
  logger: Logger;
  /** Health, readiness, metrics and status. */
  http: FastifyInstance;
  /** GitHub's webhook listener; absent when the GitHub source is off. */
  webhooks: FastifyInstance | undefined;
  metrics: Registry;
  /** Queue-time, pool and cost metrics and the status report, observed from the ledger. */
  observers: GantryMetrics;
  /** The runner side (ledger, loop); absent when no class serves GitHub jobs. */
  runners: RunnerController | undefined;
  github: GithubSource | undefined;
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

/** Composition root: builds and wires the parts; holds no policy of its own. */
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
  const http = createHttpServer({ logger, metrics, isReady: () => ready, status: () => observers.status() });
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
  const leaderGauge = new Gauge({
    name: 'gantry_leader',
    help: '1 while this replica is the leader (plans and acts), else 0.',
    registers: [metrics],
  });
  leaderGauge.set(0);

  if (config.github.enabled) {
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
  const launchesRunners = github !== undefined && githubClasses.length > 0;
  if (launchesRunners || config.tekton.enabled) {
    const kc = deps.kubeConfig ?? defaultKubeConfig();
    const kubeRequests = new Counter({
      name: 'gantry_kube_requests_total',
      help: 'Kubernetes API requests by verb, resource and HTTP status (0: no answer).',
      labelNames: ['verb', 'resource', 'code'],
      registers: [metrics],
    });
    const controllerRef: { current?: RunnerController } = {};
    const launchMetrics = createLaunchMetrics(metrics);
    const apis = createKubeApis(kc, {
      timeoutMs: config.kubernetes.requestTimeoutSeconds * 1000,
      onResponse: (record) => {
        kubeRequests.inc({ verb: record.verb, resource: record.resource, code: String(record.code) });
        controllerRef.current?.observeKubeRequest(record);
      },
    });
    if (github && launchesRunners) {
      registrar = createGithubRegistrar({
        runners: github.runners,
        classes: config.classes,
        livePods: () => new Set(controllerRef.current?.ledger.runnerNames() ?? []),
        repositories: () => config.github.repositories,
        logger,
        metrics,
        cleanupIntervalMs: config.github.runners.sweepIntervalSeconds * 1000,
        unsafePlacement: config.github.trust.unsafePlacement,
        placementCheckIntervalMs: config.github.trust.placementCheckIntervalSeconds * 1000,
        onPlacements: (holds) => controllerRef.current?.holdPlacements(holds),
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
    runners = createRunnerController({
      kc,
      apis,
      classes: config.classes,
      trustPolicy: config.github.trust,
      ...(registrar ? { registrar } : {}),
      ...(tekton ? { runs: tekton.actuator } : {}),
      logger,
      startTimeoutMs: config.controller.startTimeoutSeconds * 1000,
      capacityTimeoutMs: config.controller.capacityTimeoutSeconds * 1000,
      deadlineGraceMs: config.controller.deadlineGraceSeconds * 1000,
      reconcilePeriodMs: config.controller.reconcilePeriodSeconds * 1000,
      concurrency: adaptiveBounds(config.controller.concurrency),
      metrics: launchMetrics,
      onChange: (change) => observers.onChange(change),
      onPass: (pass) => observers.onPass(pass),
    });
    controllerRef.current = runners;
    if (config.election.enabled) {
      const election = config.election;
      const retryPeriodMs = election.retryPeriodSeconds * 1000;
      elector = createElector({
        // A lease request must not outlast a retry period: the renew deadline is counted in them.
        coordination: createKubeApis(kc, {
          timeoutMs: Math.min(config.kubernetes.requestTimeoutSeconds * 1000, retryPeriodMs),
          onResponse: ({ verb, resource, code }) => kubeRequests.inc({ verb, resource, code: String(code) }),
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

  /** The leader's work: the reconcile loop, the poller and the registration sweep. */
  function startLeading(): void {
    if (leading || stopping) return;
    leading = true;
    leaderGauge.set(1);
    runners?.startActing();
    github?.start();
    registrar?.start();
  }

  /** Stops acting at once (synchronously); what is already in flight is awaited. */
  async function stopLeading(): Promise<void> {
    if (!leading) return;
    leading = false;
    leaderGauge.set(0);
    await Promise.all([runners?.stopActing(), github?.stopPolling(), registrar?.stop()]);
  }

  return {
    logger,
    http,
    webhooks,
    metrics,
    observers,
    runners,
    github,
    elector,
    isLeader: () => leading,
    async start() {
      await registrar?.checkPlacements();
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
