import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConfigError } from '../../config/error.ts';
import type { JobEvent } from '../../model/job.ts';
import { createGithubApi, type WorkflowRun } from './api.ts';
import { createAppAuth, createTokenAuth, type GithubAuth, parseAppPrivateKey } from './auth.ts';
import { createGithubClient, type RateLimitSnapshot } from './client.ts';
import { type Clock, systemClock } from './clock.ts';
import type { GithubConfig } from './config.ts';
import { createJitRunnerService, type JitRunnerService } from './jit-runners.ts';
import { createJobApplier } from './job-events.ts';
import { JobTracker } from './job-tracker.ts';
import { createGithubMetrics } from './metrics.ts';
import { createPoller, type PollReport } from './poller.ts';
import { createRunOrigins } from './run-origin.ts';
import { createWebhookForwarder, type ForwardTarget, type WebhookForwarder } from './webhook-forward.ts';
import { registerGithubWebhookRoute } from './webhook-route.ts';
import { KeyedWorkQueue } from './work-queue.ts';
import { phaseOfAction, type WorkflowJobPayload } from './workflow-job.ts';

export interface GithubSourceDeps {
  config: GithubConfig;
  logger: Logger;
  metrics: Registry;
  /** The shared HTTP server; the webhook route is registered on it when a webhook secret is configured. */
  http: FastifyInstance;
  /** Receives every job event, once per transition. */
  onEvent: (event: JobEvent) => void;
  /**
   * Other replicas take deliveries too (leader election), so this one's webhooks do not announce
   * every job: the poller then runs at its normal interval instead of as a backstop.
   */
  sharedWebhooks?: boolean;
  /**
   * With other replicas: whether this one leads, and the leader's base URL, so that a follower
   * passes the deliveries it verified on to the leader (see webhook-forward.ts).
   */
  forwardTo?: ForwardTarget;
  /** This replica's name in the election, sent with forwarded deliveries. */
  identity?: string;
  clock?: Clock;
}

export interface GithubSource {
  /** Starts the poller loop (its first sweep runs at once and rebuilds demand after a restart). */
  start(): void;
  /** Stops the poller loop only; webhook deliveries are still accepted and applied. */
  stopPolling(): Promise<void>;
  /**
   * Stops polling, waits for accepted deliveries to be applied, and ends the look-up retries of jobs
   * held for an unknown origin (stopPolling leaves them: a follower still applies webhooks).
   */
  stop(): Promise<void>;
  /** One poll sweep now. */
  pollOnce(): Promise<PollReport>;
  /** The poller's next wait and why. */
  nextPollDelay(): ReturnType<ReturnType<typeof createPoller>['nextDelay']>;
  /** Resolves once every accepted webhook delivery has been applied. */
  whenIdle(): Promise<void>;
  /** Quota as GitHub last reported it, and whether requests are held back. */
  rateLimit(): RateLimitSnapshot;
  readonly runners: JitRunnerService;
  readonly webhooksEnabled: boolean;
}

/** A configuration value that cannot be used; the message names the key. */
export class GithubConfigError extends ConfigError {
  override name = 'GithubConfigError';
}

function readSecret(key: string, inline: string | undefined, path: string | undefined): string | undefined {
  if (inline !== undefined) return inline.trim();
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GithubConfigError(`github.${key}: cannot read ${path}${code ? ` (${code})` : ''}`);
  }
}

/**
 * Builds the GitHub Actions source: auth, the REST client, the webhook route, the poller and the JIT
 * runner service. Reads secret files now (so a bad path fails at start-up, naming the key) and sends
 * nothing to GitHub until start() or a runner call.
 */
export function createGithubSource(deps: GithubSourceDeps): GithubSource {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger.child({ component: 'github' });
  const metrics = createGithubMetrics(deps.metrics);
  if (!config.auth) throw new GithubConfigError('github.auth: required to use the GitHub source');
  const authConfig = config.auth;

  let auth: GithubAuth;
  const client = createGithubClient({
    baseUrl: config.apiUrl,
    authorize: () => auth.authorization(),
    onUnauthorized: () => {
      auth.invalidate();
      return auth.kind === 'app';
    },
    clock,
    logger,
    metrics,
    timeoutMs: config.requestTimeoutSeconds * 1000,
    maxRetries: config.maxRetries,
  });
  const api = createGithubApi(client, config.poll.perPage);

  if (authConfig.kind === 'app') {
    const pem = readSecret('auth.privateKeyPath', authConfig.privateKey, authConfig.privateKeyPath);
    let privateKey: ReturnType<typeof parseAppPrivateKey>;
    try {
      privateKey = parseAppPrivateKey(pem ?? '');
    } catch (err) {
      throw new GithubConfigError(`github.auth.privateKey: ${(err as Error).message}`);
    }
    auth = createAppAuth({
      appId: authConfig.appId,
      installationId: authConfig.installationId,
      privateKey,
      exchange: (jwt, installationId) => api.createInstallationToken(jwt, installationId),
      clock,
      refreshMarginMs: authConfig.tokenRefreshMarginSeconds * 1000,
    });
  } else {
    const token = readSecret('auth.tokenPath', authConfig.token, authConfig.tokenPath);
    if (!token) throw new GithubConfigError('github.auth.token: empty');
    auth = createTokenAuth(token);
  }

  const repositories = async (): Promise<string[]> => {
    if (config.repositories.length > 0) return config.repositories;
    const { items } = await api.listInstallationRepos();
    return items.map((r) => r.full_name);
  };

  const tracker = new JobTracker();
  // A new run is normally still queued when its first job's webhook arrives: one conditional list of the
  // repository's queued runs answers for every run queued there (a push often starts several workflows),
  // shares its ETag with the poller, and falls back to reading the single run.
  const queuedListings = new Map<string, Promise<WorkflowRun[]>>();
  const listQueuedRuns = (repo: string): Promise<WorkflowRun[]> => {
    let listing = queuedListings.get(repo);
    if (!listing) {
      listing = api
        .listWorkflowRuns(repo, 'queued')
        .then(({ items }) => {
          for (const run of items) origins.remember(run);
          return items;
        })
        .finally(() => queuedListings.delete(repo));
      queuedListings.set(repo, listing);
    }
    return listing;
  };
  const origins = createRunOrigins({
    fetchRun: async (repo, runId) => {
      const queued = await listQueuedRuns(repo);
      return queued.find((run) => Number(run.id) === runId) ?? api.getRun(repo, runId);
    },
    policy: config.trust,
    cacheSize: config.runCacheSize,
    logger,
  });
  const applier = createJobApplier({ tracker, origins, emit: deps.onEvent, clock, logger, metrics });

  const webhookSecret = readSecret('webhook.secretPath', config.webhook.secret, config.webhook.secretPath);
  let lastWebhookAt: number | null = null;
  const deliveries = new KeyedWorkQueue<WorkflowJobPayload>({
    capacity: config.webhook.queueSize,
    concurrency: 4,
    worker: async (payload) => {
      const phase = phaseOfAction(payload.action, payload.workflow_job.status);
      if (phase === null) return;
      tracker.noteWebhook(payload.workflow_job.run_id, clock.now());
      await applier.apply(payload.workflow_job, payload.repository.full_name, phase, 'webhook');
    },
    onError: (err, payload) =>
      logger.error(
        { repo: payload.repository.full_name, job: payload.workflow_job.id, err: (err as Error).message },
        'applying a webhook delivery failed',
      ),
  });

  let forwarder: WebhookForwarder | undefined;
  if (webhookSecret && deps.forwardTo) {
    forwarder = createWebhookForwarder({
      target: deps.forwardTo,
      identity: deps.identity ?? 'unknown',
      logger,
      metrics: deps.metrics,
    });
  }
  if (webhookSecret) {
    registerGithubWebhookRoute(deps.http, {
      secret: webhookSecret,
      deliveryCacheSize: config.webhook.deliveryCacheSize,
      logger,
      metrics,
      accept: (payload) => {
        const accepted = deliveries.push(String(payload.workflow_job.run_id), payload);
        if (accepted) lastWebhookAt = clock.now();
        return accepted;
      },
      ...(forwarder ? { forward: forwarder.forward } : {}),
    });
  } else {
    logger.info('no github.webhook secret configured: webhook route off, polling only');
  }

  const poller = createPoller({
    api,
    repositories,
    applier,
    tracker,
    origins,
    rateLimit: () => client.rateLimit(),
    lastWebhookAt: () => lastWebhookAt,
    webhooksEnabled: webhookSecret !== undefined && !deps.sharedWebhooks,
    intervalMs: config.poll.intervalSeconds * 1000,
    backstopIntervalMs: config.poll.backstopIntervalSeconds * 1000,
    clock,
    logger,
    metrics,
  });

  const runners = createJitRunnerService({
    api,
    ...(config.runners.org !== undefined ? { org: config.runners.org } : {}),
    namePrefix: config.runners.namePrefix,
    offlineGraceMs: config.runners.offlineGraceSeconds * 1000,
    maxRetries: config.maxRetries,
    clock,
    logger,
    metrics,
  });

  return {
    start: () => poller.start(),
    stopPolling: () => poller.stop(),
    async stop() {
      await poller.stop();
      await Promise.all([deliveries.whenIdle(), forwarder?.whenIdle()]);
      // After the deliveries, so that a job they hold is dropped too: a poller finds it again.
      await applier.stop();
    },
    pollOnce: () => poller.pollOnce(),
    nextPollDelay: () => poller.nextDelay(),
    whenIdle: () => deliveries.whenIdle(),
    rateLimit: () => client.rateLimit(),
    runners,
    webhooksEnabled: webhookSecret !== undefined,
  };
}
