import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { limitConnections, listenerOptions } from '../../http/server.ts';
import { type AdmissionAnswer, deny, scanRequestUid } from './admission-review.ts';
import type { CertificateAndKey } from './tls/certificates.ts';
import type { ServingCertificateSource } from './tls/source.ts';

/** The one route: the MutatingWebhookConfiguration's clientConfig names this path. */
export const ADMISSION_PATH = '/admit/pipelineruns';
/**
 * The apiserver refuses requests over 3 MiB, so an object it sends for review (wrapped in an
 * AdmissionReview) is rarely larger; its JSON encoder can still make one grow (it writes "<" as
 * "\u003c"). A larger body is read to its end without being kept, and denied.
 */
export const ADMISSION_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
/** What is kept of a body over the limit: enough to find the request's uid, which comes first. */
const OVERSIZED_HEAD_BYTES = 64 * 1024;

export interface AdmissionServerOptions {
  address: string;
  port: number;
  logger: Logger;
  /** Decides on one AdmissionReview (the body's text); never throws for bad input, answers it. */
  review: (body: string) => AdmissionAnswer;
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
 *
 * Every body that reaches the route gets an AdmissionReview at HTTP 200, a denial when it cannot be
 * read (too large, nested too deep, not JSON, another content type): under failurePolicy Ignore an
 * HTTP error would let the run through. Only Gantry's own faults answer 500.
 */
export function createAdmissionServer(options: AdmissionServerOptions): AdmissionServer {
  const log = options.logger.child({ component: 'admission-server' });
  let app: FastifyInstance<HttpsServer> | undefined;
  let unsubscribe: (() => void) | undefined;

  function build(pair: CertificateAndKey): FastifyInstance<HttpsServer> {
    const loggerInstance: FastifyBaseLogger = log;
    // Fastify's own request lines are at info; the apiserver calls for every PipelineRun created.
    const logController = new LogController({ disableRequestLogging: true });
    // The apiserver waits timeoutSeconds (at most 30) for an answer: slower clients are not it.
    // Node's https server takes the header deadline and its check interval among its own options.
    const { http, ...timeouts } = listenerOptions();
    const server = Fastify({
      https: { ...http, ...secureContextOptions(pair) },
      loggerInstance,
      logController,
      ...timeouts,
    });
    limitConnections(server);
    // Whatever the content type, the body is text for the review to judge (the apiserver sends JSON).
    server.removeAllContentTypeParsers();
    server.addContentTypeParser('*', (_req, payload, done) => {
      readBoundedText(payload).then((text) => done(null, text), done);
    });
    server.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
      log.warn(
        { method: req.method, url: req.url, statusCode: status, err: err.message },
        'admission request failed',
      );
      if (status >= 500 || req.url !== ADMISSION_PATH) {
        reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
        return;
      }
      const answer = deny(
        '',
        `the request could not be read (${err.message}); an AdmissionReview was expected`,
      );
      reply.code(answer.httpStatus).send(answer.body);
    });
    server.addHook('onResponse', async (req, reply) => {
      log.debug(
        { method: req.method, url: req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'admission request',
      );
    });
    server.post(ADMISSION_PATH, async (req, reply) => {
      const body = req.body;
      const answer =
        body instanceof OversizedBody
          ? deny(
              scanRequestUid(body.head) ?? '',
              `the AdmissionReview is ${body.bytes} bytes, more than the ${ADMISSION_BODY_LIMIT_BYTES} Gantry reads`,
            )
          : options.review(typeof body === 'string' ? body : '');
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

/** A body over the limit: its size, and its start, kept to find the request's uid. */
class OversizedBody {
  readonly bytes: number;
  readonly head: string;
  constructor(bytes: number, head: string) {
    this.bytes = bytes;
    this.head = head;
  }
}

/** The body as UTF-8 text; past the limit the rest is read and dropped, so memory stays bounded. */
function readBoundedText(payload: NodeJS.ReadableStream): Promise<string | OversizedBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let head: string | undefined;
    payload.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (head !== undefined) return;
      chunks.push(chunk);
      if (bytes > ADMISSION_BODY_LIMIT_BYTES) {
        head = Buffer.concat(chunks).subarray(0, OVERSIZED_HEAD_BYTES).toString('utf8');
        chunks.length = 0;
      }
    });
    payload.on('end', () =>
      resolve(head !== undefined ? new OversizedBody(bytes, head) : Buffer.concat(chunks).toString('utf8')),
    );
    payload.on('error', reject);
  });
}
