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
}

/** The HTTP surface shared by every part of Gantry; routes of other parts register on it. */
export function createHttpServer({ logger, metrics, isReady, status }: HttpServerDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger.child({ component: 'http' });
  // Probes and scrapes arrive every few seconds; logging each would drown everything else.
  const logController = new LogController({ disableRequestLogging: (req) => quietPaths.has(req.url) });
  // Small by default: no route but the GitHub webhook (which sets its own) needs a large body.
  const app = Fastify({ loggerInstance, logController, bodyLimit: DEFAULT_BODY_LIMIT_BYTES });
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
