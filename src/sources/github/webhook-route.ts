import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { jsonDepthMessage, jsonTooDeep } from '../../http/body-limits.ts';
import type { DeliveryPlace } from './delivery-scope.ts';
import type { GithubMetrics } from './metrics.ts';
import { verifyWebhookSignature } from './webhook-signature.ts';
import {
  checkJobFields,
  phaseOfAction,
  type WorkflowJobPayload,
  type WorkflowRunPayload,
  workflowJobPayloadSchema,
  workflowRunPayloadSchema,
} from './workflow-job.ts';

export const GITHUB_WEBHOOK_PATH = '/webhooks/github';

/** Set on a forwarded delivery: its receiver never forwards it again (one hop at most). */
export const FORWARDED_BY_HEADER = 'x-gantry-forwarded-by';

/** A verified delivery exactly as GitHub sent it. */
export interface RawDelivery {
  deliveryId: string;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}
/**
 * The events Gantry acts on (workflow_run says where a run comes from before its jobs are
 * announced); every other is answered 202 before its body is read.
 */
const USED_EVENTS = new Set(['workflow_job', 'workflow_run']);
/** A body declared larger than this is large: see maxConcurrentLarge. */
const LARGE_BODY_BYTES = 64 * 1024;

export interface WebhookRouteOptions {
  secret: string;
  deliveryCacheSize: number;
  /** Bodies larger than this are refused (413), by their Content-Length before anything is read. */
  maxBodyBytes: number;
  /** Deliveries being read or handled at once; beyond, 503 before the body is read. */
  maxConcurrent: number;
  /**
   * Of those, large ones (declaring more than LARGE_BODY_BYTES) at once. A workflow_job is a few
   * KiB: large bodies are rare and cost the most to read, so a few at a time keep them from
   * crowding out the rest.
   */
  maxConcurrentLarge: number;
  /** Body bytes held at once across all deliveries being read; beyond, 503. */
  maxBufferedBytes: number;
  logger: Logger;
  metrics: GithubMetrics;
  /**
   * Why a verified, well-formed delivery is not Gantry's to act on (another installation of the App,
   * a repository outside the configuration, a job queued long ago), or undefined when it is.
   */
  screen: (place: DeliveryPlace) => string | undefined;
  /** Hands a verified workflow_job delivery over for processing; false when the queue is full. */
  accept: (payload: WorkflowJobPayload, deliveryId: string) => boolean;
  /** Takes a verified workflow_run delivery: where a run comes from, before its jobs are announced. */
  acceptRun: (payload: WorkflowRunPayload) => void;
  /**
   * Passes an accepted delivery, as it came, on to the leader (see webhook-forward.ts); not called
   * for a delivery that was itself forwarded by another replica.
   */
  forward?: (delivery: RawDelivery) => void;
}

type Outcome =
  | 'accepted'
  | 'duplicate'
  | 'ignored'
  | 'unauthorized'
  | 'bad_request'
  | 'too_large'
  | 'overloaded';

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** An error the body parser ends a request with, answered with its status. */
function refusal(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode });
}

/**
 * POST /webhooks/github, on the webhook listener. What is cheap to judge is judged before the body is
 * read: the event (202 for events Gantry does not use), the declared size (411 without one, 413 above
 * the cap) and the deliveries in flight (503). The body is then read within a size cap and a byte budget shared by every delivery
 * being read, so neither large nor many bodies can exhaust memory. The handler only verifies and
 * queues, so it answers in milliseconds; the work (run look-ups, events) happens after. Nothing
 * changes unless the signature is right, the body is well-formed JSON of a workflow_job event for
 * Gantry's installation and repositories, and the delivery id is new.
 */
export function registerGithubWebhookRoute(http: FastifyInstance, options: WebhookRouteOptions): void {
  const { metrics } = options;
  const log = options.logger.child({ component: 'github-webhook' });
  const seenDeliveries = new LRUCache<string, true>({ max: options.deliveryCacheSize });
  let inFlight = 0;
  let largeInFlight = 0;
  let buffered = 0;
  const held = new WeakMap<FastifyRequest, number>();

  const answer = (
    reply: FastifyReply,
    code: number,
    outcome: Outcome,
    detail: Record<string, string> = {},
  ) => {
    metrics.webhookDeliveries.inc({ result: outcome });
    return reply.code(code).send({ status: outcome, ...detail });
  };
  /** An answer before the body is read: the connection closes, so the unread body goes with it. */
  const answerEarly = (reply: FastifyReply, code: number, outcome: Outcome, detail: Record<string, string>) =>
    answer(reply.header('connection', 'close'), code, outcome, detail);

  type Verdict = { code: number; outcome: Outcome; detail: Record<string, string> };
  const accepted: Verdict = { code: 202, outcome: 'accepted', detail: {} };
  const invalid = (what: string, issue: { path: PropertyKey[]; message: string } | undefined): Verdict => {
    const where = issue?.path.length ? issue.path.join('.') : '(body)';
    return {
      code: 400,
      outcome: 'bad_request',
      detail: { error: `invalid ${what} payload: ${where}: ${issue?.message}` },
    };
  };
  const ignored = (reason: string): Verdict => ({ code: 202, outcome: 'ignored', detail: { reason } });

  /** A workflow_job delivery: queued for the source, unless it is outside Gantry's scope or unused. */
  const takeJob = (raw: unknown, deliveryId: string): Verdict => {
    const parsed = workflowJobPayloadSchema.safeParse(raw);
    if (!parsed.success) return invalid('workflow_job', parsed.error.issues[0]);
    const payload = parsed.data;
    const queues = payload.action === 'queued' || payload.action === 'waiting';
    const outside = options.screen({
      ...(payload.installation ? { installationId: payload.installation.id } : {}),
      repository: payload.repository.full_name,
      ...(queues && payload.workflow_job.created_at ? { queuedAt: payload.workflow_job.created_at } : {}),
    });
    if (outside) return ignored(outside);
    const phase = phaseOfAction(payload.action, payload.workflow_job.status);
    if (phase === null) return ignored(`action ${payload.action} is not used`);
    const fieldError = checkJobFields(payload.workflow_job, phase);
    if (fieldError) return { code: 400, outcome: 'bad_request', detail: { error: fieldError } };
    if (!options.accept(payload, deliveryId)) {
      return { code: 503, outcome: 'overloaded', detail: { error: 'busy, try again' } };
    }
    return accepted;
  };

  /** A workflow_run delivery: where the run comes from, for its jobs to come. */
  const takeRun = (raw: unknown): Verdict => {
    const parsed = workflowRunPayloadSchema.safeParse(raw);
    if (!parsed.success) return invalid('workflow_run', parsed.error.issues[0]);
    const payload = parsed.data;
    const outside = options.screen({
      ...(payload.installation ? { installationId: payload.installation.id } : {}),
      repository: payload.repository.full_name,
    });
    if (outside) return ignored(outside);
    options.acceptRun(payload);
    return accepted;
  };

  http.register(async (scope) => {
    // The signature covers the exact bytes, so this route keeps the body raw and parses JSON itself.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let ended = false;
      const fail = (code: number, outcome: Outcome, message: string) => {
        if (ended) return;
        ended = true;
        metrics.webhookDeliveries.inc({ result: outcome });
        done(refusal(code, message), undefined);
      };
      payload.on('data', (chunk: Buffer) => {
        if (ended) return;
        size += chunk.length;
        if (size > options.maxBodyBytes) {
          fail(413, 'too_large', `body larger than ${options.maxBodyBytes} bytes`);
        } else if (buffered + chunk.length > options.maxBufferedBytes) {
          fail(503, 'overloaded', 'busy, try again');
        } else {
          buffered += chunk.length;
          held.set(request, (held.get(request) ?? 0) + chunk.length);
          chunks.push(chunk);
        }
      });
      payload.on('end', () => {
        if (ended) return;
        ended = true;
        done(null, Buffer.concat(chunks, size));
      });
      payload.on('error', (err: Error) => fail(400, 'bad_request', err.message));
    });
    // A refused body is not read to its end: close the connection rather than drain it.
    scope.addHook('onSend', async (_request, reply) => {
      if (reply.statusCode === 413 || reply.statusCode === 503) reply.header('connection', 'close');
    });

    const onRequest = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const event = header(request, 'x-github-event');
      if (!event) {
        answerEarly(reply, 400, 'bad_request', { error: 'the X-GitHub-Event header is required' });
        return;
      }
      if (!USED_EVENTS.has(event)) {
        answerEarly(reply, 202, 'ignored', { reason: `event ${event} is not used` });
        return;
      }
      // GitHub declares the length of what it sends; a body of unknown length is not GitHub's.
      const length = header(request, 'content-length');
      if (length === undefined) {
        answerEarly(reply, 411, 'bad_request', { error: 'a Content-Length header is required' });
        return;
      }
      const declared = Number(length);
      if (declared > options.maxBodyBytes) {
        answerEarly(reply, 413, 'too_large', { error: `body larger than ${options.maxBodyBytes} bytes` });
        return;
      }
      const large = declared > LARGE_BODY_BYTES;
      if (inFlight >= options.maxConcurrent || (large && largeInFlight >= options.maxConcurrentLarge)) {
        log.debug({ inFlight, largeInFlight }, 'webhook deliveries at their bound; delivery refused');
        answerEarly(reply, 503, 'overloaded', { error: 'busy, try again' });
        return;
      }
      inFlight++;
      if (large) largeInFlight++;
      // 'close' comes once the answer is sent or the client went away, whichever happens.
      reply.raw.once('close', () => {
        inFlight--;
        if (large) largeInFlight--;
        buffered -= held.get(request) ?? 0;
        held.delete(request);
      });
      done();
    };

    scope.post(
      GITHUB_WEBHOOK_PATH,
      { onRequest, bodyLimit: options.maxBodyBytes },
      async (request, reply) => {
        const deliveryId = header(request, 'x-github-delivery');
        const event = header(request, 'x-github-event');
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const fields = { delivery: deliveryId ?? '', event: event ?? '' };

        if (!verifyWebhookSignature(options.secret, body, header(request, 'x-hub-signature-256'))) {
          log.debug(fields, 'webhook delivery refused: missing or wrong X-Hub-Signature-256');
          return answer(reply, 401, 'unauthorized', { error: 'missing or invalid X-Hub-Signature-256' });
        }
        const contentType = header(request, 'content-type')?.split(';')[0]?.trim().toLowerCase();
        if (contentType !== 'application/json') {
          return answer(reply, 400, 'bad_request', {
            error: `content-type must be application/json (set it in the webhook settings), got ${contentType ?? 'none'}`,
          });
        }
        if (!deliveryId) {
          return answer(reply, 400, 'bad_request', { error: 'the X-GitHub-Delivery header is required' });
        }
        if (seenDeliveries.has(deliveryId)) return answer(reply, 200, 'duplicate');

        const text = body.toString('utf8');
        if (jsonTooDeep(text)) return answer(reply, 400, 'bad_request', { error: jsonDepthMessage() });
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (err) {
          return answer(reply, 400, 'bad_request', {
            error: `body is not valid JSON: ${(err as Error).message}`,
          });
        }
        const verdict = event === 'workflow_run' ? takeRun(raw) : takeJob(raw, deliveryId);
        if (verdict.outcome !== 'accepted') {
          if (verdict.outcome === 'ignored') log.debug({ ...fields, ...verdict.detail }, 'delivery ignored');
          if (verdict.outcome === 'overloaded') log.warn(fields, 'webhook queue full; delivery refused');
          // Not remembered as seen: GitHub's redelivery (or the poller) can still bring it in.
          return answer(reply, verdict.code, verdict.outcome, verdict.detail);
        }
        seenDeliveries.set(deliveryId, true);
        if (options.forward && header(request, FORWARDED_BY_HEADER) === undefined) {
          options.forward({ deliveryId, body, headers: request.headers });
        }
        return answer(reply, 202, 'accepted');
      },
    );
  });
}
