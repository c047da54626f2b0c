import type { KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConfigError } from '../../errors.ts';
import type { JobEvent } from '../../model/job.ts';
import { createGithubApi, type GithubApi, type InstallationTokenScope } from './api.ts';
import { createAppAuth, createTokenAuth, type GithubAuth, parseAppPrivateKey } from './auth.ts';
import { createGithubClient, type GithubClient, type RateLimitSnapshot } from './client.ts';
import { type Clock, systemClock } from './clock.ts';
import type { GithubConfig } from './config.ts';
import { type DeliveryScope, screenDelivery } from './delivery-scope.ts';
import { createJitRunnerService, type JitRunnerService } from './jit-runners.ts';
import { createJobApplier } from './job-events.ts';
import { JobTracker } from './job-tracker.ts';
import { createGithubMetrics, type GithubMetrics } from './metrics.ts';
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
  /** The webhook listener; the webhook route is registered on it when a webhook secret is configured. */
  webhooks: FastifyInstance;
  /**
   * Whether some class could take a job asking for these labels (of either trust). A job none could
   * take is dropped before its run is looked up, and is not kept.
   */
  isServable?: (labels: readonly string[]) => boolean;
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
  /**
   * Where the classes register runners. The installation token then asks for exactly the
   * permissions that takes (and, with github.repositories, those repositories only); absent, for all
   * of the App's.
   */
  runnerScopes?: ReadonlySet<'org' | 'repo'>;
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

/** Shorter webhook secrets can be brute-forced offline from one signed delivery. */
const MIN_WEBHOOK_SECRET_BYTES = 32;

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
  const { client, api } = createGithubRest(config, {
    logger,
    metrics,
    clock,
    ...(deps.runnerScopes ? { runnerScopes: deps.runnerScopes } : {}),
  });

  const repositories = async (): Promise<string[]> => {
    if (config.repositories.length > 0) return config.repositories;
    const { items } = await api.listInstallationRepos();
    return items.map((r) => r.full_name);
  };

  const tracker = new JobTracker();
  // One conditional GET of the run: a cache miss never lists a repository's runs (up to 100 pages).
  const origins = createRunOrigins({
    fetchRun: (repo, runId) => api.getRun(repo, runId),
    policy: config.trust,
    cacheSize: config.runCacheSize,
    logger,
  });
  const applier = createJobApplier({
    tracker,
    origins,
    emit: deps.onEvent,
    clock,
    logger,
    metrics,
    ...(deps.isServable ? { isServable: deps.isServable } : {}),
  });

  const webhookSecret = readSecret('webhook.secretPath', config.webhook.secret, config.webhook.secretPath);
  if (webhookSecret !== undefined && Buffer.byteLength(webhookSecret) < MIN_WEBHOOK_SECRET_BYTES) {
    logger.warn(
      { bytes: Buffer.byteLength(webhookSecret) },
      `github.webhook secret is shorter than ${MIN_WEBHOOK_SECRET_BYTES} bytes: one signed delivery is enough to guess it offline; use a long random one`,
    );
  }
  const scope: DeliveryScope = {
    ...(authConfig.kind === 'app' ? { installationId: authConfig.installationId } : {}),
    repositories: config.repositories,
    ...(config.runners.org !== undefined ? { org: config.runners.org } : {}),
    maxQueuedAgeMs: config.webhook.maxQueuedAgeHours * 3_600_000,
  };
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
      metrics,
    });
  }
  if (webhookSecret) {
    registerGithubWebhookRoute(deps.webhooks, {
      secret: webhookSecret,
      deliveryCacheSize: config.webhook.deliveryCacheSize,
      maxBodyBytes: config.webhook.maxBodyBytes,
      maxConcurrent: config.webhook.maxConcurrentDeliveries,
      maxConcurrentLarge: config.webhook.maxConcurrentLargeDeliveries,
      maxBufferedBytes: config.webhook.maxBufferedBytes,
      screen: (place) => screenDelivery(place, scope, clock.now()),
      // No request needed: the run's origin is in the delivery.
      acceptRun: (payload) => origins.remember(payload.workflow_run),
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
    backstopMaxIntervalMs:
      Math.max(config.poll.backstopIntervalSeconds, config.poll.backstopMaxIntervalSeconds) * 1000,
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

/** The REST side of a GitHub configuration: its auth (App or token), client and API. */
export interface GithubRest {
  client: GithubClient;
  api: GithubApi;
}

/**
 * Builds the REST client of `config` (auth, timeouts, retries, the ETag cache). Reads secret files
 * now, so a bad path fails the start naming the key; sends nothing until a call.
 */
export function createGithubRest(
  config: GithubConfig,
  deps: { logger: Logger; metrics: GithubMetrics; clock: Clock; runnerScopes?: ReadonlySet<'org' | 'repo'> },
): GithubRest {
  const { logger, metrics, clock } = deps;
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
    const privateKey =
      authConfig.privateKeyPath !== undefined
        ? keyFileReader(authConfig.privateKeyPath, logger)
        : constantKey(authConfig.privateKey ?? '');
    auth = createAppAuth({
      appId: authConfig.appId,
      installationId: authConfig.installationId,
      privateKey,
      exchange: (jwt, installationId) =>
        api.createInstallationToken(jwt, installationId, tokenScopeOf(config, deps.runnerScopes)),
      clock,
      refreshMarginMs: authConfig.tokenRefreshMarginSeconds * 1000,
    });
  } else {
    const token = readSecret('auth.tokenPath', authConfig.token, authConfig.tokenPath);
    if (!token) throw new GithubConfigError('github.auth.token: empty');
    auth = createTokenAuth(token);
  }
  return { client, api };
}

/**
 * The least an installation token needs: reading runs and jobs, and registering runners where the
 * classes do (organisation runners, or repository administration), for the configured repositories
 * when they are listed. GitHub's token would otherwise carry every permission of the installation.
 */
export function tokenScopeOf(
  config: GithubConfig,
  runnerScopes: ReadonlySet<'org' | 'repo'> | undefined,
): InstallationTokenScope | undefined {
  if (!runnerScopes) return undefined;
  return {
    permissions: {
      actions: 'read',
      metadata: 'read',
      ...(runnerScopes.has('org') ? { organization_self_hosted_runners: 'write' } : {}),
      ...(runnerScopes.has('repo') ? { administration: 'write' } : {}),
    },
    ...(config.repositories.length > 0
      ? { repositories: config.repositories.map((fullName) => fullName.slice(fullName.indexOf('/') + 1)) }
      : {}),
  };
}

function parseKey(pem: string, key: string): KeyObject {
  try {
    return parseAppPrivateKey(pem);
  } catch (err) {
    throw new GithubConfigError(`github.auth.${key}: ${(err as Error).message}`);
  }
}

function constantKey(pem: string): () => KeyObject {
  const key = parseKey(pem, 'privateKey');
  return () => key;
}

/**
 * The App key from its file (a mounted Secret), read now, so a bad file fails the start naming the
 * key, and again whenever the file changes, so a rotated key needs no restart. A change that does
 * not parse keeps the key in use, with a warning.
 */
function keyFileReader(path: string, logger: Logger): () => KeyObject {
  const stampOf = () => {
    const stat = statSync(path);
    return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
  };
  // Stamped before it is read: a change in between is seen (and read) at the next look.
  const read = () => {
    let stamp = '';
    try {
      stamp = stampOf();
    } catch {
      // readSecret below names the problem.
    }
    const pem = readSecret('auth.privateKeyPath', undefined, path) ?? '';
    return { key: parseKey(pem, 'privateKeyPath'), stamp };
  };
  let current = read();
  return () => {
    try {
      if (stampOf() !== current.stamp) {
        current = read();
        logger.info({ path }, 'GitHub App key file changed: using the new key');
      }
    } catch (err) {
      logger.warn(
        { path, err: (err as Error).message },
        'GitHub App key file cannot be read again; the key in use stays',
      );
    }
    return current.key;
  };
}
