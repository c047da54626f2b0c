import { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from './config/schema.ts';
import { createGithubRegistrar } from './controller/github-registrar.ts';
import { createRunnerController, type RunnerController } from './controller/runner-controller.ts';
import { createHttpServer } from './http/server.ts';
import { createKubeApis } from './kube/client.ts';
import { createGantryMetrics, type GantryMetrics } from './metrics/gantry-metrics.ts';
import { createMetricsRegistry } from './metrics/registry.ts';
import { createGithubSource, type GithubSource } from './sources/github/source.ts';

export interface App {
  logger: Logger;
  http: FastifyInstance;
  metrics: Registry;
  /** Queue-time, pool and cost metrics and the status report, observed from the ledger. */
  observers: GantryMetrics;
  /** The runner side (ledger, loop); absent when no class serves GitHub jobs. */
  runners: RunnerController | undefined;
  github: GithubSource | undefined;
  start(): Promise<{ url: string }>;
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
  const logger = deps.logger ?? pino({ level: config.log.level });
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

  const githubClasses = Object.values(config.classes).filter((c) => c.match.github);
  let github: GithubSource | undefined;
  let registrar: ReturnType<typeof createGithubRegistrar> | undefined;

  if (config.github.enabled) {
    github = createGithubSource({
      config: config.github,
      logger,
      metrics,
      http,
      onEvent: (event) => runners?.applyJobEvent(event),
    });
  }
  if (github && githubClasses.length > 0) {
    const kc = deps.kubeConfig ?? defaultKubeConfig();
    const kubeRequests = new Counter({
      name: 'gantry_kube_requests_total',
      help: 'Kubernetes API requests by verb, resource and HTTP status (0: no answer).',
      labelNames: ['verb', 'resource', 'code'],
      registers: [metrics],
    });
    const apis = createKubeApis(kc, {
      timeoutMs: config.kubernetes.requestTimeoutSeconds * 1000,
      onResponse: ({ verb, resource, code }) => kubeRequests.inc({ verb, resource, code: String(code) }),
    });
    const controllerRef: { current?: RunnerController } = {};
    registrar = createGithubRegistrar({
      runners: github.runners,
      classes: config.classes,
      livePods: () => new Set(controllerRef.current?.ledger.runnerNames() ?? []),
      repositories: () => config.github.repositories,
      logger,
      cleanupIntervalMs: 60_000,
      unsafeTrustedGroup: config.github.runners.unsafeTrustedGroup,
    });
    runners = createRunnerController({
      kc,
      apis,
      classes: config.classes,
      registrar,
      logger,
      startTimeoutMs: config.controller.startTimeoutSeconds * 1000,
      deadlineGraceMs: config.controller.deadlineGraceSeconds * 1000,
      reconcilePeriodMs: config.controller.reconcilePeriodSeconds * 1000,
      concurrency: config.controller.concurrency,
      onChange: (change) => observers.onChange(change),
      onPass: (pass) => observers.onPass(pass),
    });
    controllerRef.current = runners;
  } else if (Object.keys(config.classes).length > 0) {
    logger.warn('runner classes are configured but github.enabled is false: no runners will be launched');
  }

  return {
    logger,
    http,
    metrics,
    observers,
    runners,
    github,
    async start() {
      await registrar?.checkTrustedOnlyClasses();
      const url = await http.listen({ host: config.http.address, port: config.http.port });
      // Runners first: the ledger must know the pods that exist before demand is planned against it.
      await runners?.start();
      github?.start();
      registrar?.start();
      ready = true;
      logger.info({ url, classes: Object.keys(config.classes) }, 'gantry started');
      return { url };
    },
    async stop() {
      ready = false;
      await github?.stop();
      await registrar?.stop();
      await runners?.stop();
      await http.close();
      logger.info('gantry stopped');
    },
  };
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
