import type { Logger } from 'pino';
import type { GithubMetrics } from './metrics.ts';
import { FORWARDED_BY_HEADER, GITHUB_WEBHOOK_PATH, type RawDelivery } from './webhook-route.ts';

/** GitHub's headers that go with a delivery; the signature covers the body, so both travel as they came. */
const FORWARDED_HEADERS = [
  'content-type',
  'user-agent',
  'x-github-event',
  'x-github-delivery',
  'x-github-hook-id',
  'x-github-hook-installation-target-id',
  'x-github-hook-installation-target-type',
  'x-hub-signature',
  'x-hub-signature-256',
];

/** Where a replica's deliveries belong: to itself while it leads, else to the leader's URL if known. */
export interface ForwardTarget {
  leading: () => boolean;
  /** The base URL the leader advertises on its Lease; undefined while none is known. */
  leaderUrl: () => string | undefined;
}

export interface WebhookForwarderOptions {
  target: ForwardTarget;
  /** This replica's election identity, sent along for the leader's logs. */
  identity: string;
  logger: Logger;
  metrics: Pick<GithubMetrics, 'webhookForwards'>;
  /** Bound of one attempt; the delivery has been answered already, so this only bounds the work. */
  timeoutMs?: number;
  /** Wait before the one retry. */
  retryDelayMs?: number;
}

export interface WebhookForwarder {
  /** Sends the delivery to the leader in the background; never throws. */
  forward(delivery: RawDelivery): void;
  /** Resolves once every forward begun has ended. */
  whenIdle(): Promise<void>;
}

type Attempt = 'ok' | 'retry' | 'refused';

/**
 * A follower's path for webhooks to the leader's decisions: it passes each verified delivery on to
 * the URL the leader advertises on its Lease, once more after a failure, and otherwise leaves the
 * job to the leader's poller. The leader checks the signature itself and drops the delivery if it
 * has it already (X-GitHub-Delivery), so a forward that races GitHub's own redelivery is harmless.
 */
export function createWebhookForwarder(options: WebhookForwarderOptions): WebhookForwarder {
  const log = options.logger.child({ component: 'github-webhook-forward' });
  const timeoutMs = options.timeoutMs ?? 2_000;
  const retryDelayMs = options.retryDelayMs ?? 250;
  const forwards = options.metrics.webhookForwards;
  for (const result of ['ok', 'failed', 'no_leader']) forwards.inc({ result }, 0);
  const inflight = new Set<Promise<void>>();

  async function attempt(base: string, delivery: RawDelivery): Promise<{ kind: Attempt; detail: string }> {
    const headers: Record<string, string> = { [FORWARDED_BY_HEADER]: options.identity };
    for (const name of FORWARDED_HEADERS) {
      const value = delivery.headers[name];
      const first = Array.isArray(value) ? value[0] : value;
      if (first !== undefined) headers[name] = first;
    }
    try {
      const res = await fetch(new URL(GITHUB_WEBHOOK_PATH, base), {
        method: 'POST',
        headers,
        body: delivery.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { kind: 'ok', detail: String(res.status) };
      // 401/400: the leader judges the delivery differently (another secret?); sending it again won't help.
      return {
        kind: res.status >= 500 || res.status === 429 ? 'retry' : 'refused',
        detail: `HTTP ${res.status}`,
      };
    } catch (err) {
      const error = err as Error;
      return {
        kind: 'retry',
        detail: error.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : error.message,
      };
    }
  }

  /** The leader's URL, null while this replica leads (nothing to forward), undefined when unknown. */
  const destination = (): string | null | undefined =>
    options.target.leading() ? null : options.target.leaderUrl();

  async function send(delivery: RawDelivery): Promise<void> {
    const fields = { delivery: delivery.deliveryId };
    let base = destination();
    if (base === null) return;
    if (base === undefined) {
      forwards.inc({ result: 'no_leader' });
      log.debug(fields, 'no leader known to forward the delivery to; its poller will find the job');
      return;
    }
    let result = await attempt(base, delivery);
    if (result.kind === 'retry') {
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      // The leader may have changed meanwhile (or this replica may lead now: nothing to forward then).
      base = destination();
      if (base === null) return;
      if (base === undefined) {
        forwards.inc({ result: 'no_leader' });
        return;
      }
      result = await attempt(base, delivery);
    }
    if (result.kind === 'ok') {
      forwards.inc({ result: 'ok' });
      return;
    }
    forwards.inc({ result: 'failed' });
    log.warn(
      { ...fields, leader: base, err: result.detail },
      'forwarding a webhook delivery to the leader failed; its poller will find the job',
    );
  }

  return {
    forward(delivery) {
      const p = send(delivery).finally(() => inflight.delete(p));
      inflight.add(p);
    },
    async whenIdle() {
      while (inflight.size > 0) await Promise.all([...inflight]);
    },
  };
}
