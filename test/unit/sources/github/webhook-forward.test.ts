import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { advertisedUrl } from '../../../../src/election/advertise.ts';
import { createGithubMetrics } from '../../../../src/sources/github/metrics.ts';
import { createWebhookForwarder } from '../../../../src/sources/github/webhook-forward.ts';
import {
  FORWARDED_BY_HEADER,
  type RawDelivery,
  registerGithubWebhookRoute,
} from '../../../../src/sources/github/webhook-route.ts';
import { signWebhookBody } from '../../../../src/sources/github/webhook-signature.ts';
import { workflowJobExamples } from '../../../support/fake-github/index.ts';

const silent = pino({ level: 'silent' });

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A stand-in leader answering each forwarded delivery with the next status of `statuses`. */
async function leader(statuses: number[]): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = statuses.shift() ?? 202;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

function delivery(): RawDelivery {
  const body = Buffer.from('{"action":"queued"}');
  return {
    deliveryId: randomUUID(),
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'workflow_job',
      'x-github-delivery': 'd-1',
      'x-hub-signature-256': signWebhookBody('s', body),
      host: 'follower:8080',
      'x-forwarded-for': '10.0.0.1',
    },
  };
}

async function forwards(metrics: Registry, result: string): Promise<number> {
  const metric = await metrics.getSingleMetric('gantry_github_webhook_forwards_total')?.get();
  return metric?.values.find((v) => v.labels.result === result)?.value ?? 0;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

describe('webhook forwarding to the leader', () => {
  it('sends the body and GitHub headers as they came, marked as forwarded', async () => {
    const target = await leader([202]);
    servers.push(target.server);
    const metrics = new Registry();
    const forwarder = createWebhookForwarder({
      target: { leading: () => false, leaderUrl: () => target.url },
      identity: 'me',
      logger: silent,
      metrics: createGithubMetrics(metrics),
    });
    const d = delivery();
    forwarder.forward(d);
    await forwarder.whenIdle();
    expect(target.received).toHaveLength(1);
    const [got] = target.received;
    expect(got?.body).toBe(d.body.toString());
    expect(got?.headers['x-hub-signature-256']).toBe(d.headers['x-hub-signature-256']);
    expect(got?.headers['x-github-delivery']).toBe('d-1');
    expect(got?.headers[FORWARDED_BY_HEADER]).toBe('me');
    expect(got?.headers['x-forwarded-for']).toBeUndefined();
    expect(await forwards(metrics, 'ok')).toBe(1);
  });

  it('retries once after a 5xx or no answer, not after a refusal', async () => {
    const flaky = await leader([503, 202]);
    const refusing = await leader([401, 202]);
    servers.push(flaky.server, refusing.server);
    const metrics = new Registry();
    let url = flaky.url;
    const forwarder = createWebhookForwarder({
      target: { leading: () => false, leaderUrl: () => url },
      identity: 'me',
      logger: silent,
      metrics: createGithubMetrics(metrics),
      retryDelayMs: 1,
    });
    forwarder.forward(delivery());
    await forwarder.whenIdle();
    expect(flaky.received).toHaveLength(2);
    expect(await forwards(metrics, 'ok')).toBe(1);

    url = refusing.url;
    forwarder.forward(delivery());
    await forwarder.whenIdle();
    expect(refusing.received).toHaveLength(1);
    expect(await forwards(metrics, 'failed')).toBe(1);

    // Nobody listens there: two attempts, then the poller's turn.
    url = 'http://127.0.0.1:1';
    forwarder.forward(delivery());
    await forwarder.whenIdle();
    expect(await forwards(metrics, 'failed')).toBe(2);
  });

  it('counts deliveries with no leader to forward to, and forwards nothing while leading', async () => {
    const metrics = new Registry();
    let leading = false;
    const forwarder = createWebhookForwarder({
      target: { leading: () => leading, leaderUrl: () => undefined },
      identity: 'me',
      logger: silent,
      metrics: createGithubMetrics(metrics),
    });
    forwarder.forward(delivery());
    await forwarder.whenIdle();
    expect(await forwards(metrics, 'no_leader')).toBe(1);
    leading = true;
    forwarder.forward(delivery());
    await forwarder.whenIdle();
    expect(await forwards(metrics, 'no_leader')).toBe(1);
    expect(await forwards(metrics, 'ok')).toBe(0);
  });

  it('the route forwards what it accepted, once, and never a forwarded delivery', async () => {
    const example = structuredClone(workflowJobExamples().find((e) => e.action === 'waiting'));
    if (!example) throw new Error('no example');
    example.action = 'queued';
    example.workflow_job.status = 'queued';
    const body = JSON.stringify(example);
    const forwarded: RawDelivery[] = [];
    const http = Fastify();
    registerGithubWebhookRoute(http, {
      secret: 's',
      deliveryCacheSize: 100,
      maxBodyBytes: 1024 * 1024,
      maxConcurrent: 16,
      maxConcurrentLarge: 4,
      maxBufferedBytes: 16 * 1024 * 1024,
      screen: () => undefined,
      acceptRun: () => {},
      logger: silent,
      metrics: createGithubMetrics(new Registry()),
      accept: () => true,
      forward: (d) => forwarded.push(d),
    });
    const post = (id: string, extra: Record<string, string> = {}) =>
      http.inject({
        method: 'POST',
        url: '/webhooks/github',
        payload: body,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'workflow_job',
          'x-github-delivery': id,
          'x-hub-signature-256': signWebhookBody('s', body),
          ...extra,
        },
      });
    expect((await post('a')).statusCode).toBe(202);
    expect((await post('a')).statusCode).toBe(200);
    expect((await post('b', { [FORWARDED_BY_HEADER]: 'other' })).statusCode).toBe(202);
    expect((await post('c', { 'x-hub-signature-256': 'sha256=00' })).statusCode).toBe(401);
    expect(forwarded.map((d) => d.deliveryId)).toEqual(['a']);
    expect(forwarded[0]?.body.toString()).toBe(body);
    await http.close();
  });
});

describe('advertised URL', () => {
  const listening = 'http://127.0.0.1:8080';
  it('prefers GANTRY_ADVERTISE_URL, then POD_IP with the listening port, then a specific listen address', () => {
    expect(advertisedUrl('0.0.0.0', listening, { GANTRY_ADVERTISE_URL: 'http://gantry-0.x:9000/' })).toBe(
      'http://gantry-0.x:9000',
    );
    expect(advertisedUrl('0.0.0.0', listening, { POD_IP: '10.1.2.3' })).toBe('http://10.1.2.3:8080');
    expect(advertisedUrl('::', listening, { POD_IP: 'fd00::5' })).toBe('http://[fd00::5]:8080');
    expect(advertisedUrl('127.0.0.1', 'http://127.0.0.1:4321', {})).toBe('http://127.0.0.1:4321');
    expect(advertisedUrl('0.0.0.0', listening, {})).toBeUndefined();
  });
});
