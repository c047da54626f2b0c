import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { jsonDepthMessage, jsonTooDeep } from '../../http/body-limits.ts';
import type { GithubMetrics } from './metrics.ts';
import { FORWARDED_BY_HEADER, type RawDelivery } from './webhook-forward.ts';
import { verifyWebhookSignature } from './webhook-signature.ts';
import {
  checkJobFields,
  phaseOfAction,
  type WorkflowJobPayload,
  workflowJobPayloadSchema,
} from './workflow-job.ts';

export const GITHUB_WEBHOOK_PATH = '/webhooks/github';
/** GitHub caps webhook payloads at 25 MB and does not deliver larger ones; nothing larger is read. */
export const MAX_WEBHOOK_BODY_BYTES = 25 * 1024 * 1024;

export interface WebhookRouteOptions {
  secret: string;
  deliveryCacheSize: number;
  logger: Logger;
  metrics: GithubMetrics;
  /** Hands a verified workflow_job delivery over for processing; false when the queue is full. */
  accept: (payload: WorkflowJobPayload, deliveryId: string) => boolean;
  /**
   * Passes an accepted delivery, as it came, on to the leader (see webhook-forward.ts); not called
   * for a delivery that was itself forwarded by another replica.
   */
  forward?: (delivery: RawDelivery) => void;
}

type Outcome = 'accepted' | 'duplicate' | 'ignored' | 'unauthorized' | 'bad_request' | 'overloaded';

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * POST /webhooks/github. The handler only verifies and queues, so it answers in milliseconds; the work
 * (run look-ups, events) happens after. Nothing changes unless the signature is right, the body is
 * well-formed JSON of a workflow_job event, and the delivery id is new.
 */
export function registerGithubWebhookRoute(http: FastifyInstance, options: WebhookRouteOptions): void {
  const { metrics } = options;
  const log = options.logger.child({ component: 'github-webhook' });
  const seenDeliveries = new LRUCache<string, true>({ max: options.deliveryCacheSize });

  const answer = (
    reply: FastifyReply,
    code: number,
    outcome: Outcome,
    detail: Record<string, string> = {},
  ) => {
    metrics.webhookDeliveries.inc({ result: outcome });
    return reply.code(code).send({ status: outcome, ...detail });
  };

  http.register(async (scope) => {
    // The signature covers the exact bytes, so this route keeps the body raw and parses JSON itself.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: MAX_WEBHOOK_BODY_BYTES },
      (_req, body, done) => {
        done(null, body);
      },
    );

    scope.post(GITHUB_WEBHOOK_PATH, { bodyLimit: MAX_WEBHOOK_BODY_BYTES }, async (request, reply) => {
      const deliveryId = header(request, 'x-github-delivery');
      const event = header(request, 'x-github-event');
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const fields = { delivery: deliveryId ?? '', event: event ?? '' };

      if (!verifyWebhookSignature(options.secret, body, header(request, 'x-hub-signature-256'))) {
        log.warn(fields, 'webhook delivery refused: missing or wrong X-Hub-Signature-256');
        return answer(reply, 401, 'unauthorized', { error: 'missing or invalid X-Hub-Signature-256' });
      }
      const contentType = header(request, 'content-type')?.split(';')[0]?.trim().toLowerCase();
      if (contentType !== 'application/json') {
        return answer(reply, 400, 'bad_request', {
          error: `content-type must be application/json (set it in the webhook settings), got ${contentType ?? 'none'}`,
        });
      }
      if (!deliveryId || !event) {
        return answer(reply, 400, 'bad_request', {
          error: 'X-GitHub-Delivery and X-GitHub-Event headers are required',
        });
      }
      if (event !== 'workflow_job')
        return answer(reply, 202, 'ignored', { reason: `event ${event} is not used` });
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
      const parsed = workflowJobPayloadSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? issue.path.join('.') : '(body)';
        return answer(reply, 400, 'bad_request', {
          error: `invalid workflow_job payload: ${where}: ${issue?.message}`,
        });
      }
      const payload = parsed.data;
      const phase = phaseOfAction(payload.action, payload.workflow_job.status);
      if (phase === null) {
        log.info({ ...fields, action: payload.action }, 'workflow_job action not used; ignored');
        return answer(reply, 202, 'ignored', { reason: `action ${payload.action} is not used` });
      }
      const fieldError = checkJobFields(payload.workflow_job, phase);
      if (fieldError) return answer(reply, 400, 'bad_request', { error: fieldError });

      if (!options.accept(payload, deliveryId)) {
        // Not remembered as seen: GitHub's redelivery (or the poller) can still bring it in.
        log.warn(fields, 'webhook queue full; delivery refused');
        return answer(reply, 503, 'overloaded', { error: 'busy, try again' });
      }
      seenDeliveries.set(deliveryId, true);
      if (options.forward && header(request, FORWARDED_BY_HEADER) === undefined) {
        options.forward({ deliveryId, body, headers: request.headers });
      }
      return answer(reply, 202, 'accepted');
    });
  });
}
