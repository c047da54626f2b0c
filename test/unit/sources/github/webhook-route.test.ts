import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../../../src/http/body-limits.ts';
import { signWebhookBody, verifyWebhookSignature } from '../../../../src/sources/github/webhook-signature.ts';
import { loadOpenApiValidators, workflowJobExamples } from '../../../support/fake-github/index.ts';
import type { WebhookExample } from '../../../support/fake-github/webhooks.ts';
import { type Harness, startHarness, WEBHOOK_SECRET } from '../../../support/github-harness.ts';

interface Delivery {
  body: string | Buffer;
  event?: string;
  id?: string;
  contentType?: string;
  signature?: string | null;
}

async function deliver(h: Harness, d: Delivery) {
  const headers: Record<string, string> = {
    'content-type': d.contentType ?? 'application/json',
    'x-github-event': d.event ?? 'workflow_job',
    'x-github-delivery': d.id ?? randomUUID(),
  };
  const signature = d.signature === undefined ? signWebhookBody(WEBHOOK_SECRET, d.body) : d.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  return h.http.inject({ method: 'POST', url: '/webhooks/github', headers, payload: d.body });
}

/** The harness's default github.webhook.maxBodyBytes. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Points a payload at a run the fake knows, in Gantry's installation and organisation: the source
 * holds a job back until it could look its run up (fork or not), the examples' own runs do not exist
 * in the fake, and deliveries of other installations and repositories are ignored. A queued example
 * is dated now: the examples' dates are years old, and a queued delivery that old is stale.
 */
function atKnownRun(h: Harness, payload: WebhookExample): WebhookExample {
  h.fake.faults.dropWebhooks = true;
  const { runIds } = h.fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted'], count: 1 });
  h.fake.faults.dropWebhooks = false;
  payload.repository.full_name = 'acme/app';
  payload.workflow_job.run_id = runIds[0];
  if (payload.installation) payload.installation.id = h.fake.installationId;
  if (payload.action === 'queued' || payload.action === 'waiting') {
    const now = new Date(h.clock.now()).toISOString().replace(/\.\d+Z$/, 'Z');
    payload.workflow_job.created_at = now;
    payload.workflow_job.started_at = now;
  }
  return payload;
}

const selfHostedQueued = (h: Harness) => {
  const example = workflowJobExamples().find((e) => e.action === 'waiting');
  if (!example) throw new Error('no example');
  const payload = atKnownRun(h, structuredClone(example));
  payload.action = 'queued';
  payload.workflow_job.status = 'queued';
  return payload;
};

describe('webhook signature', () => {
  it("matches GitHub's documented test vector", () => {
    const signature = signWebhookBody("It's a Secret to Everybody", 'Hello, World!');
    expect(signature).toBe('sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
    expect(
      verifyWebhookSignature("It's a Secret to Everybody", Buffer.from('Hello, World!'), signature),
    ).toBe(true);
  });

  it('refuses missing, malformed, wrong-secret and sha1 signatures', () => {
    const body = Buffer.from('{"a":1}');
    const good = signWebhookBody('s', body);
    expect(verifyWebhookSignature('s', body, undefined)).toBe(false);
    expect(verifyWebhookSignature('s', body, 'sha256=abc')).toBe(false);
    expect(verifyWebhookSignature('other', body, good)).toBe(false);
    expect(verifyWebhookSignature('s', Buffer.from('{"a":2}'), good)).toBe(false);
    expect(
      verifyWebhookSignature('s', body, `sha1=${createHmac('sha1', 's').update(body).digest('hex')}`),
    ).toBe(false);
    expect(verifyWebhookSignature('s', body, good.toUpperCase().replace('SHA256', 'sha256'))).toBe(true);
  });
});

describe('POST /webhooks/github', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ webhooks: true });
  });
  afterAll(async () => {
    await h.close();
  });

  // A source of its own per example: seconds, more on a loaded machine.
  it('accepts every schema-valid workflow_job example and maps it to the right event', {
    timeout: 30_000,
  }, async () => {
    const validators = loadOpenApiValidators();
    const valid = workflowJobExamples().filter((e) =>
      validators.webhook(`workflow-job-${e.action.replace('_', '-')}`)(e),
    );
    // Seven of the eight published examples follow the schema (one predates four required fields).
    expect(valid.length).toBeGreaterThanOrEqual(7);
    const actions = new Set<string>();
    for (const original of valid) {
      // A fresh source per example: several examples reuse one job id in different phases.
      const fresh = await startHarness({ webhooks: true });
      try {
        const example = atKnownRun(fresh, structuredClone(original));
        const response = await deliver(fresh, { body: JSON.stringify(example) });
        expect(response.statusCode).toBe(202);
        await fresh.settle();
        const job = example.workflow_job as {
          id: number;
          run_id: number;
          status: string;
          labels: string[];
          name: string;
          conclusion: string | null;
          created_at: string;
          started_at: string;
          completed_at: string | null;
          runner_name: string | null;
          run_attempt: number;
        };
        actions.add(example.action);
        const waiting = example.action === 'waiting' || job.status === 'waiting';
        if (waiting) {
          // Environment approval: accepted, but no demand yet.
          expect(fresh.events).toEqual([]);
          continue;
        }
        expect(fresh.events).toHaveLength(1);
        const event = fresh.events[0];
        const kind = { queued: 'queued', in_progress: 'started', completed: 'completed' }[example.action];
        expect(event?.kind).toBe(kind);
        expect(event?.job).toMatchObject({
          source: 'github',
          key: `github:${job.id}`,
          repo: example.repository.full_name,
          labels: job.labels,
          runId: String(job.run_id),
          untrusted: false,
          runAttempt: job.run_attempt,
          name: job.name,
        });
        expect(event?.via).toBe('webhook');
        expect(event?.createdAt).toBe(Date.parse(job.created_at));
        if (event?.kind === 'started') {
          expect(event.startedAt).toBe(Date.parse(job.started_at));
          expect(event.runnerName).toBe(job.runner_name);
        }
        if (event?.kind === 'completed') {
          expect(event.completedAt).toBe(Date.parse(job.completed_at as string));
          expect(event.conclusion).toBe(job.conclusion);
          expect(event.startedAt).toBe(Date.parse(job.started_at));
        }
      } finally {
        await fresh.close();
      }
    }
    expect([...actions].sort()).toEqual(['completed', 'in_progress', 'queued', 'waiting']);
  });

  it('answers before the work is done, and applies it after', async () => {
    const payload = selfHostedQueued(h);
    payload.workflow_job.id = 990001;
    const response = await deliver(h, { body: JSON.stringify(payload) });
    expect(response.statusCode).toBe(202);
    expect(h.events.filter((e) => e.job.key === 'github:990001')).toHaveLength(0);
    await h.settle();
    expect(h.events.filter((e) => e.job.key === 'github:990001')).toHaveLength(1);
  });

  it('applies a redelivered X-GitHub-Delivery once', async () => {
    const payload = selfHostedQueued(h);
    payload.workflow_job.id = 990002;
    const id = randomUUID();
    const body = JSON.stringify(payload);
    expect((await deliver(h, { body, id })).statusCode).toBe(202);
    const again = await deliver(h, { body, id });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: 'duplicate' });
    await h.settle();
    expect(h.events.filter((e) => e.job.key === 'github:990002')).toHaveLength(1);
  });

  describe('bad deliveries get the right status and change nothing', () => {
    const body = () => {
      const payload = selfHostedQueued(h);
      payload.workflow_job.id = 990100;
      return JSON.stringify(payload);
    };
    const large = () => Buffer.alloc(MAX_BODY_BYTES + 1024, 0x20);
    const deep = () =>
      body().replace('{', `{"nested":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)},`);
    const cases: { name: string; status: number; delivery: () => Delivery }[] = [
      { name: 'missing signature', status: 401, delivery: () => ({ body: body(), signature: null }) },
      {
        name: 'wrong signature',
        status: 401,
        delivery: () => ({ body: body(), signature: signWebhookBody('not-the-secret', body()) }),
      },
      {
        name: 'body truncated in transit (signature of the whole body)',
        status: 401,
        delivery: () => ({ body: body().slice(0, 200), signature: signWebhookBody(WEBHOOK_SECRET, body()) }),
      },
      { name: 'signed but truncated JSON', status: 400, delivery: () => ({ body: body().slice(0, 200) }) },
      {
        name: 'wrong content type',
        status: 400,
        delivery: () => ({ body: body(), contentType: 'text/plain' }),
      },
      {
        name: 'form-encoded delivery',
        status: 400,
        delivery: () => ({
          body: `payload=${encodeURIComponent(body())}`,
          contentType: 'application/x-www-form-urlencoded',
        }),
      },
      {
        name: 'unknown action',
        status: 202,
        delivery: () => ({ body: body().replace('"action":"queued"', '"action":"frobnicated"') }),
      },
      { name: 'another event', status: 202, delivery: () => ({ body: body(), event: 'push' }) },
      {
        name: 'payload without labels',
        status: 400,
        delivery: () => ({ body: body().replace('"labels":', '"labelz":') }),
      },
      {
        name: 'unparseable created_at',
        status: 400,
        delivery: () => ({ body: body().replace(/"created_at":"[^"]+"/, '"created_at":"yesterday"') }),
      },
      { name: 'oversize body', status: 413, delivery: () => ({ body: large(), signature: null }) },
      {
        name: 'more than 100 labels',
        status: 400,
        delivery: () => ({
          body: body().replace(
            '"labels":[',
            `"labels":[${Array.from({ length: 101 }, () => '"x"').join(',')},`,
          ),
        }),
      },
      {
        name: 'a repository name that is a path',
        status: 400,
        delivery: () => ({ body: body().replaceAll('"full_name":"acme/app"', '"full_name":"../.."') }),
      },
      { name: 'signed but nested too deep', status: 400, delivery: () => ({ body: deep() }) },
    ];

    for (const c of cases) {
      it(`${c.name} → ${c.status}`, async () => {
        const id = randomUUID();
        const before = h.events.length;
        const response = await deliver(h, { ...c.delivery(), id });
        expect(response.statusCode).toBe(c.status);
        await h.settle();
        expect(h.events.length).toBe(before);
        // Nothing was remembered either: the genuine delivery with the same id is still applied.
        const genuine = await deliver(h, {
          body: body().replace('990100', String(990200 + cases.indexOf(c))),
          id,
        });
        expect(genuine.statusCode).toBe(202);
        await h.settle();
        expect(h.events.length).toBe(before + 1);
      });
    }

    it('names the nesting limit, and accepts a body nested just within it', async () => {
      const refused = await deliver(h, { body: deep() });
      expect(refused.json().error).toBe(`JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
      const within = body().replace(
        '{',
        `{"nested":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)},`,
      );
      expect((await deliver(h, { body: within.replace('990100', '990300') })).statusCode).toBe(202);
    });

    it('ignores signed deliveries of another installation or repository, or of a job queued long ago', async () => {
      const ignored = [
        body().replace(/"installation":\{"id":\d+/, '"installation":{"id":999'),
        body().replaceAll('"full_name":"acme/app"', '"full_name":"evil/app"'),
        body().replace(/"created_at":"[^"]+"/, '"created_at":"2020-01-01T00:00:00Z"'),
      ];
      await h.settle();
      const before = h.events.length;
      const reasons: string[] = [];
      for (const delivery of ignored) {
        const response = await deliver(h, { body: delivery });
        expect(response.statusCode).toBe(202);
        expect(response.json().status).toBe('ignored');
        reasons.push(response.json().reason);
      }
      await h.settle();
      expect(h.events.length).toBe(before);
      expect(reasons).toEqual([
        'installation 999 is not the one configured',
        'repository evil/app is not in organisation acme',
        'job queued at 2020-01-01T00:00:00Z, too long ago: a stale or replayed delivery',
      ]);
    });

    it('answers an unused event and an oversize body before reading it, and closes the connection', async () => {
      const event = await deliver(h, { body: large(), event: 'push', signature: null });
      expect(event.statusCode).toBe(202);
      expect(event.headers.connection).toBe('close');
      const oversize = await deliver(h, { body: large(), signature: null });
      expect(oversize.statusCode).toBe(413);
      expect(oversize.headers.connection).toBe('close');
    });

    it('names the field that is wrong', async () => {
      const response = await deliver(h, { body: body().replace('"labels":', '"labelz":') });
      expect(response.json().error).toMatch(/workflow_job\.labels/);
    });

    it('counts refused deliveries by outcome', async () => {
      expect(
        await h.metricValue('gantry_github_webhook_deliveries_total', { result: 'unauthorized' }),
      ).toBeGreaterThan(0);
      expect(
        await h.metricValue('gantry_github_webhook_deliveries_total', { result: 'bad_request' }),
      ).toBeGreaterThan(0);
    });
  });
});
