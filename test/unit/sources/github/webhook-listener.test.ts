import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { signWebhookBody } from '../../../../src/sources/github/webhook-signature.ts';
import { workflowJobExamples } from '../../../support/fake-github/index.ts';
import { type Harness, startHarness, WEBHOOK_SECRET } from '../../../support/github-harness.ts';

// The webhook listener under load it does not want: what it holds is bounded by deliveries in
// flight, by bytes buffered and by deadlines, and a genuine delivery still gets through after.

/** A raw connection that sends a request's head (and some of its body) and then holds it open. */
function holdOpen(url: string, head: string, body = ''): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(head + body);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

const headOf = (length: number, event = 'workflow_job') =>
  `POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-github-event: ${event}\r\n` +
  `x-github-delivery: ${randomUUID()}\r\ncontent-length: ${length}\r\n\r\n`;

/** Posts a signed queued delivery of a job the fake knows; the status and the connection header. */
async function genuine(h: Harness): Promise<{ status: number; body: string }> {
  const example = structuredClone(workflowJobExamples().find((e) => e.action === 'waiting'));
  if (!example) throw new Error('no example');
  h.fake.faults.dropWebhooks = true;
  const { runIds } = h.fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted'], count: 1 });
  h.fake.faults.dropWebhooks = false;
  const now = new Date(h.clock.now()).toISOString().replace(/\.\d+Z$/, 'Z');
  Object.assign(example, { action: 'queued' });
  Object.assign(example.workflow_job, {
    status: 'queued',
    run_id: runIds[0],
    created_at: now,
    started_at: now,
  });
  example.repository.full_name = 'acme/app';
  if (example.installation) example.installation.id = h.fake.installationId;
  const body = JSON.stringify(example);
  const res = await fetch(`${h.webhookUrl}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'workflow_job',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signWebhookBody(WEBHOOK_SECRET, body),
    },
    body,
  });
  return { status: res.status, body: await res.text() };
}

describe('the webhook listener', () => {
  let h: Harness;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await h?.close();
  });

  it('refuses deliveries beyond its bound with 503 before reading them, and takes them again after', async () => {
    h = await startHarness({
      webhooks: true,
      github: { webhook: { secret: WEBHOOK_SECRET, maxConcurrentDeliveries: 2 } },
    });
    for (let i = 0; i < 2; i++) sockets.push(await holdOpen(h.webhookUrl, headOf(1_000), '{"a":'));
    await sleep(100);
    const refused = await genuine(h);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 'overloaded' });
    for (const socket of sockets.splice(0)) socket.destroy();
    await sleep(100);
    expect((await genuine(h)).status).toBe(202);
    expect(await h.metricValue('gantry_github_webhook_deliveries_total', { result: 'overloaded' })).toBe(1);
  });

  it('reads a few large bodies at a time, and small ones beside them', async () => {
    h = await startHarness({ webhooks: true });
    // The default: 4 large deliveries (over 64 KiB declared, or undeclared) at once.
    for (let i = 0; i < 4; i++) sockets.push(await holdOpen(h.webhookUrl, headOf(100_000), '{"a":'));
    await sleep(100);
    const fifth = await holdOpen(h.webhookUrl, headOf(100_000), '{"a":');
    sockets.push(fifth);
    const answer = await new Promise<string>((resolve) => {
      fifth.on('data', (data) => resolve(data.toString().split('\r\n')[0] ?? ''));
    });
    expect(answer).toBe('HTTP/1.1 503 Service Unavailable');
    expect((await genuine(h)).status).toBe(202);
  });

  it('holds no more body bytes than its budget, however many deliveries are half sent', async () => {
    h = await startHarness({
      webhooks: true,
      github: {
        webhook: { secret: WEBHOOK_SECRET, maxBufferedBytes: 1024 * 1024, maxConcurrentLargeDeliveries: 8 },
      },
    });
    // Four bodies of 300 KB each, sent but for their last byte: the fourth no longer fits.
    const part = 'x'.repeat(300_000);
    for (let i = 0; i < 4; i++) sockets.push(await holdOpen(h.webhookUrl, headOf(part.length + 1), part));
    const answers = await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            let text = '';
            socket.on('data', (chunk) => {
              text += chunk.toString();
            });
            socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''));
            setTimeout(() => resolve(text ? (text.split('\r\n')[0] ?? '') : 'no answer yet'), 1_500);
          }),
      ),
    );
    expect(answers.filter((line) => line.startsWith('HTTP/1.1 503'))).toHaveLength(1);
    expect(answers.filter((line) => line === 'no answer yet')).toHaveLength(3);
    // A genuine delivery is small enough to pass beside the three that are held.
    expect((await genuine(h)).status).toBe(202);
  });

  it('refuses a body of undeclared length before reading it', async () => {
    h = await startHarness({ webhooks: true });
    const { hostname, port } = new URL(h.webhookUrl);
    const chunk = 'x'.repeat(64 * 1024);
    const first = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          'POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
            `x-github-event: workflow_job\r\nx-github-delivery: ${randomUUID()}\r\ntransfer-encoding: chunked\r\n\r\n`,
        );
        // Up to 2 MiB, while the listener takes 1 MiB.
        for (let i = 0; i < 32; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      });
      let text = '';
      socket.on('data', (data) => {
        text += data.toString();
        if (text.includes('\r\n')) resolve(text.split('\r\n')[0] ?? '');
      });
      socket.on('error', reject);
      sockets.push(socket);
    });
    expect(first).toBe('HTTP/1.1 411 Length Required');
  });

  it('cuts off a client that sends its headers too slowly', async () => {
    h = await startHarness({
      webhooks: true,
      listenerLimits: { headersTimeoutMs: 300, requestTimeoutMs: 600, checkEveryMs: 100 },
    });
    const socket = await holdOpen(h.webhookUrl, 'POST /webhooks/github HTTP/1.1\r\nhost: x\r\n');
    sockets.push(socket);
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      // Read what comes (a 408), so that the end of the connection is seen.
      socket.resume();
      socket.on('close', () => resolve(Date.now() - started));
      setTimeout(() => resolve(-1), 3_000);
    });
    expect(closedAfter).toBeGreaterThan(0);
    expect(closedAfter).toBeLessThan(2_000);
  });
});
