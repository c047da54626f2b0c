import type { ServerOptions } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { StatusReport } from '../metrics/status.ts';
import { DEFAULT_BODY_LIMIT_BYTES, useDepthLimitedJsonParser } from './body-limits.ts';
import { renderStatusPage } from './status-page.ts';

const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

export interface HttpServerDeps {
  logger: Logger;
  metrics: Registry;
  /** Whether the process is ready to do its job (readiness, not liveness). */
  isReady: () => boolean;
  /** The state behind GET /api/status and the status page at GET /. */
  status?: () => StatusReport;
  /** The jobs Gantry recorded as a trace (JSON Lines), created at or after `since`: GET /api/trace. */
  trace?: (since: number | undefined) => string;
}

/**
 * What every listener allows a client, so that slow or idle connections cannot pile up: Fastify
 * waits for a request for ever by default. Node checks the header and request deadlines every
 * `checkEveryMs`, so that bounds how late a slow client is cut off.
 */
export interface ListenerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  checkEveryMs: number;
  maxConnections: number;
}

export const LISTENER_LIMITS: Readonly<ListenerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkEveryMs: 1_000,
  maxConnections: 2_048,
};

/** Fastify options that apply LISTENER_LIMITS (and `overrides` of them) to a listener. */
export function listenerOptions(overrides: Partial<ListenerLimits> = {}): {
  connectionTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  http: ServerOptions;
} {
  const limits = { ...LISTENER_LIMITS, ...overrides };
  return {
    connectionTimeout: limits.idleTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.checkEveryMs },
  };
}

/** Bounds the sockets a listener holds at once (Node refuses connections beyond it). */
export function limitConnections(app: FastifyInstance, max: number = LISTENER_LIMITS.maxConnections): void {
  app.server.maxConnections = max;
}

/**
 * The internal HTTP surface: health, readiness, metrics and status. GitHub's webhook has a listener
 * of its own (createWebhookServer), so what is published to the internet is that route alone.
 */
export function createHttpServer({
  logger,
  metrics,
  isReady,
  status,
  trace,
}: HttpServerDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger.child({ component: 'http' });
  // Probes and scrapes arrive every few seconds; logging each would drown everything else.
  const logController = new LogController({ disableRequestLogging: (req) => quietPaths.has(req.url) });
  const app = Fastify({
    loggerInstance,
    logController,
    bodyLimit: DEFAULT_BODY_LIMIT_BYTES,
    ...listenerOptions(),
  });
  limitConnections(app);
  useDepthLimitedJsonParser(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (isReady()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready' });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  if (trace) {
    app.get<{ Querystring: { since?: string } }>('/api/trace', async (req, reply) => {
      const since = req.query.since === undefined ? undefined : Date.parse(req.query.since);
      if (since !== undefined && Number.isNaN(since)) {
        return reply.code(400).send({ error: 'since: expected an RFC 3339 time' });
      }
      reply.header('content-type', 'application/x-ndjson; charset=utf-8');
      return trace(since);
    });
  }
  if (status) {
    app.get('/api/status', async () => status());
    app.get('/', async (_req, reply) => {
      reply.header('content-type', 'text/html; charset=utf-8');
      reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
      return renderStatusPage(status());
    });
  }
  return app;
}

/**
 * The listener for webhook deliveries from the internet: nothing but the routes registered on it
 * (404 otherwise), tighter deadlines, and no request logging (refusals are counted instead: a flood
 * must not become a flood of log lines).
 */
export function createWebhookServer(logger: Logger, limits: Partial<ListenerLimits> = {}): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger.child({ component: 'webhook-http' });
  const app = Fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: DEFAULT_BODY_LIMIT_BYTES,
    ...listenerOptions({ headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, ...limits }),
  });
  limitConnections(app, limits.maxConnections);
  return app;
}
