import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { useDepthLimitedJsonParser } from '../../http/body-limits.ts';
import type { AdmissionAnswer } from './admission.ts';
import type { CertificateAndKey } from './tls/certificates.ts';
import type { ServingCertificateSource } from './tls/source.ts';

/** The one route: the MutatingWebhookConfiguration's clientConfig names this path. */
export const ADMISSION_PATH = '/admit/pipelineruns';
/**
 * The apiserver refuses requests over 3 MiB, so no object it sends for review (wrapped in an
 * AdmissionReview with its old version) is meant to be much larger; anything beyond gets 413.
 */
export const ADMISSION_BODY_LIMIT_BYTES = 3 * 1024 * 1024;

export interface AdmissionServerOptions {
  address: string;
  port: number;
  logger: Logger;
  /** Decides on one AdmissionReview (the parsed body); never throws for bad input, answers it. */
  review: (body: unknown) => AdmissionAnswer;
  tls: ServingCertificateSource;
}

export interface AdmissionServer {
  /** Waits for the first certificate, then listens; resolves with the https URL it listens on. */
  start(): Promise<{ url: string }>;
  stop(): Promise<void>;
}

/**
 * The HTTPS endpoint the apiserver calls for every new PipelineRun. Separate from the plain HTTP
 * server because the apiserver speaks only TLS to webhooks and the certificate has its own life:
 * a new one from the source replaces the server's secure context, so rotation needs no restart
 * (connections already open keep the certificate they were made with).
 */
export function createAdmissionServer(options: AdmissionServerOptions): AdmissionServer {
  const log = options.logger.child({ component: 'admission-server' });
  let app: FastifyInstance<HttpsServer> | undefined;
  let unsubscribe: (() => void) | undefined;

  function build(pair: CertificateAndKey): FastifyInstance<HttpsServer> {
    const loggerInstance: FastifyBaseLogger = log;
    // Fastify's own request lines are at info; the apiserver calls for every PipelineRun created.
    const logController = new LogController({ disableRequestLogging: true });
    const server = Fastify({
      https: secureContextOptions(pair),
      loggerInstance,
      logController,
      bodyLimit: ADMISSION_BODY_LIMIT_BYTES,
    });
    // JSON only: the apiserver sends application/json, and text/plain has no business here (415).
    server.removeAllContentTypeParsers();
    // Typed for the plain-HTTP instance; the parser does not depend on the transport.
    useDepthLimitedJsonParser(server as unknown as FastifyInstance);
    server.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
      log.warn(
        { method: req.method, url: req.url, statusCode: status, err: err.message },
        'admission request failed',
      );
      reply.code(status).send({ error: status >= 500 ? 'internal error' : describeClientError(err) });
    });
    server.addHook('onResponse', async (req, reply) => {
      log.debug(
        { method: req.method, url: req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'admission request',
      );
    });
    server.post(ADMISSION_PATH, async (req, reply) => {
      const answer = options.review(req.body);
      return reply.code(answer.httpStatus).send(answer.body);
    });
    return server;
  }

  function serve(pair: CertificateAndKey): void {
    if (!app) return;
    try {
      app.server.setSecureContext(secureContextOptions(pair));
      log.info('serving the new webhook certificate');
    } catch (err) {
      // The sources check a pair before reporting it, so this is unexpected; the old one stays.
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'the new webhook certificate was refused',
      );
    }
  }

  return {
    async start() {
      if (app) throw new Error('the admission server is already started');
      const first = await firstCertificate(options.tls);
      const server = build(first);
      app = server;
      unsubscribe = options.tls.subscribe(serve);
      // A certificate that came while the server was being built.
      const latest = options.tls.current();
      if (latest && latest !== first) serve(latest);
      // Fastify logs the addresses it listens on.
      return { url: await server.listen({ host: options.address, port: options.port }) };
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      await app?.close();
      app = undefined;
    },
  };
}

function secureContextOptions(pair: CertificateAndKey): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' };
}

function firstCertificate(tls: ServingCertificateSource): Promise<CertificateAndKey> {
  const current = tls.current();
  if (current) return Promise.resolve(current);
  return new Promise((resolve) => {
    const unsubscribe = tls.subscribe((pair) => {
      unsubscribe();
      resolve(pair);
    });
  });
}

/** Fastify's messages for a body it refused, said plainly for whoever reads the apiserver's error. */
function describeClientError(err: { code?: string; message: string }): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'the request body is not valid JSON; an AdmissionReview was expected';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'the request body is empty; an AdmissionReview was expected';
    default:
      return err.message;
  }
}
