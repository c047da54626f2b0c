import { createHmac, createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appKeys, FakeGithub, loadOpenApiValidators, ManualClock } from '../../support/fake-github/index.ts';

// The fake's own tests: it must answer like GitHub's published REST description says, sign deliveries
// like GitHub, and account quota like GitHub, or every test built on it proves nothing.

const SECRET = 'fake-webhook-secret';
const APP_ID = 31337;

interface Received {
  headers: Record<string, string>;
  body: string;
}

async function startReceiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({
      headers: req.headers as Record<string, string>,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    res.writeHead(202).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
}

function jwt(key: KeyObject, claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
}

describe('fake GitHub', () => {
  const clock = new ManualClock();
  const keys = appKeys();
  const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let fake: FakeGithub;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let token = '';
  const appPrivateKey = createPrivateKey(keys.privateKeyPem);
  const appJwt = () =>
    jwt(appPrivateKey, {
      iat: Math.floor(clock.now() / 1000) - 60,
      exp: Math.floor(clock.now() / 1000) + 540,
      iss: APP_ID,
    });

  const newToken = async () => {
    const res = await call('POST', `/app/installations/${fake.installationId}/access_tokens`, {
      auth: `Bearer ${appJwt()}`,
    });
    expect(res.status).toBe(201);
    token = res.body.token;
  };

  const call = async (
    method: string,
    path: string,
    init: { body?: unknown; auth?: string; headers?: Record<string, string> } = {},
  ) => {
    const url = path.startsWith('http') ? path : `${fake.apiUrl}${path}`;
    const res = await fetch(url, {
      method,
      headers: {
        authorization: init.auth ?? `token ${token}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    fake = new FakeGithub({
      clock,
      repos: ['acme/app', 'acme/lib', 'acme/docs'],
      app: { appId: APP_ID, publicKey: keys.publicKey },
      webhook: { url: receiver.url, secret: SECRET },
      quotaLimit: 100,
      recordResponses: true,
      runnerGroups: ['ci'],
    });
    await fake.start();
    await newToken();
  });

  afterAll(async () => {
    await fake.stop();
    receiver.server.close();
  });

  it('checks App JWTs: wrong key, expired, too long-lived and wrong issuer are refused', async () => {
    const now = Math.floor(clock.now() / 1000);
    const path = `/app/installations/${fake.installationId}/access_tokens`;
    const cases = [
      jwt(privateKey.privateKey, { iat: now - 60, exp: now + 540, iss: APP_ID }),
      jwt(appPrivateKey, { iat: now - 700, exp: now - 100, iss: APP_ID }),
      jwt(appPrivateKey, { iat: now, exp: now + 1200, iss: APP_ID }),
      jwt(appPrivateKey, { iat: now - 60, exp: now + 540, iss: 1 }),
    ];
    for (const bad of cases) expect((await call('POST', path, { auth: `Bearer ${bad}` })).status).toBe(401);
    expect((await call('POST', path, { auth: `bearer ${appJwt()}` })).status).toBe(201);
  });

  it('expires installation tokens after their lifetime', async () => {
    const res = await call('POST', `/app/installations/${fake.installationId}/access_tokens`, {
      auth: `Bearer ${appJwt()}`,
    });
    const shortLived = res.body.token as string;
    expect(Date.parse(res.body.expires_at) - clock.now()).toBeGreaterThan(3_500_000);
    expect((await call('GET', '/rate_limit', { auth: `token ${shortLived}` })).status).toBe(200);
    clock.advance(3_600_000);
    const expired = await call('GET', '/rate_limit', { auth: `token ${shortLived}` });
    expect(expired.status).toBe(401);
    expect(expired.body.message).toBe('Bad credentials');
    await newToken();
  });

  it('paginates with absolute Link URLs and puts the array first after total_count', async () => {
    const first = await call('GET', '/installation/repositories?per_page=2');
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).slice(0, 2)).toEqual(['total_count', 'repositories']);
    expect(first.body.total_count).toBe(3);
    const next = /<([^<>]+)>;\s*rel="next"/.exec(first.headers.get('link') ?? '')?.[1];
    expect(next).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/installation\/repositories\?.*page=2/);
    const second = await call('GET', next as string);
    expect(second.body.repositories.map((r: { full_name: string }) => r.full_name)).toEqual(['acme/docs']);
    expect(second.headers.get('link')).not.toContain('rel="next"');
  });

  it('answers 304 to a matching If-None-Match without spending quota, and 200 when the data changed', async () => {
    const first = await call('GET', '/repos/acme/app/actions/runs?status=queued');
    const etag = first.headers.get('etag') as string;
    const remaining = Number(first.headers.get('x-ratelimit-remaining'));
    const used = fake.quotaUsed();
    const again = await call('GET', '/repos/acme/app/actions/runs?status=queued', {
      headers: { 'if-none-match': etag },
    });
    expect(again.status).toBe(304);
    expect(Number(again.headers.get('x-ratelimit-remaining'))).toBe(remaining);
    expect(fake.quotaUsed()).toBe(used);
    fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'linux'], count: 1 });
    const changed = await call('GET', '/repos/acme/app/actions/runs?status=queued', {
      headers: { 'if-none-match': etag },
    });
    expect(changed.status).toBe(200);
    expect(Number(changed.headers.get('x-ratelimit-remaining'))).toBe(remaining - 1);
  });

  it('runs a JIT runner through a job and refuses to delete it while busy', async () => {
    const { jobIds, runIds } = fake.queueJobs({
      repo: 'acme/lib',
      labels: ['self-hosted', 'lib'],
      count: 3,
      durationMs: 60_000,
    });
    const groups = await call('GET', '/orgs/acme/actions/runner-groups');
    expect(groups.body.runner_groups.map((g: { name: string }) => g.name)).toEqual(['Default', 'ci']);
    const bad = await call('POST', '/orgs/acme/actions/runners/generate-jitconfig', {
      body: { name: 'x', labels: [] },
    });
    expect(bad.status).toBe(422);
    const created = await call('POST', '/orgs/acme/actions/runners/generate-jitconfig', {
      body: { name: 'gantry-lint-1', runner_group_id: 2, labels: ['self-hosted', 'lib'] },
    });
    expect(created.status).toBe(201);
    expect(created.body.runner).toMatchObject({ name: 'gantry-lint-1', status: 'offline', busy: false });
    expect(JSON.parse(Buffer.from(created.body.encoded_jit_config, 'base64').toString())).toHaveProperty(
      '.runner',
    );
    const dup = await call('POST', '/orgs/acme/actions/runners/generate-jitconfig', {
      body: { name: 'gantry-lint-1', runner_group_id: 2, labels: ['self-hosted'] },
    });
    expect(dup.status).toBe(409);

    expect(fake.startRunner('gantry-lint-1')).toBe(jobIds[0]);
    const jobs = await call('GET', `/repos/acme/lib/actions/runs/${runIds[0]}/jobs?per_page=2`);
    expect(jobs.body.total_count).toBe(3);
    expect(jobs.body.jobs[0]).toMatchObject({
      status: 'in_progress',
      runner_name: 'gantry-lint-1',
      runner_group_name: 'ci',
    });
    expect(jobs.headers.get('link')).toContain('rel="next"');
    const inProgress = await call('GET', '/repos/acme/lib/actions/runs?status=in_progress');
    expect(inProgress.body.workflow_runs.map((r: { id: number }) => r.id)).toContain(runIds[0]);

    const runnerId = created.body.runner.id as number;
    expect((await call('DELETE', `/orgs/acme/actions/runners/${runnerId}`)).status).toBe(422);
    clock.advance(60_000);
    fake.tick();
    const job = await call('GET', `/repos/acme/lib/actions/jobs/${jobIds[0]}`);
    expect(job.body).toMatchObject({ status: 'completed', conclusion: 'success' });
    // A JIT runner is gone after its one job.
    expect((await call('GET', '/orgs/acme/actions/runners')).body.total_count).toBe(0);
    expect((await call('DELETE', `/orgs/acme/actions/runners/${runnerId}`)).status).toBe(404);

    const repoRunner = await call('POST', '/repos/acme/lib/actions/runners/generate-jitconfig', {
      body: { name: 'gantry-repo-1', runner_group_id: 1, labels: ['self-hosted'] },
    });
    expect(repoRunner.status).toBe(201);
    expect((await call('GET', '/repos/acme/lib/actions/runners?name=gantry-repo-1')).body.total_count).toBe(
      1,
    );
    expect(
      (await call('DELETE', `/repos/acme/lib/actions/runners/${repoRunner.body.runner.id}`)).status,
    ).toBe(204);
    expect((await call('GET', `/repos/acme/lib/actions/runs/${runIds[0]}`)).body.status).toBe('in_progress');
  });

  it('runs the quota down, refuses with remaining 0 until the reset, then serves again', async () => {
    fake.exhaustQuota();
    const refused = await call('GET', '/repos/acme/app/actions/runs');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.body.message).toMatch(/API rate limit exceeded/);
    const reset = Number(refused.headers.get('x-ratelimit-reset')) * 1000;
    expect(reset).toBeGreaterThan(clock.now());
    clock.set(reset);
    await newToken();
    const served = await call('GET', '/repos/acme/app/actions/runs');
    expect(served.status).toBe(200);
    expect(Number(served.headers.get('x-ratelimit-remaining'))).toBe(99);
    await newToken();
  });

  it('answers secondary limits (403 and 429 with Retry-After) and 5xx on demand', async () => {
    fake.faults.secondaryLimit = { count: 1, status: 403, retryAfterSeconds: 30 };
    const secondary = await call('GET', '/repos/acme/app/actions/runs');
    expect(secondary.status).toBe(403);
    expect(secondary.headers.get('retry-after')).toBe('30');
    expect(secondary.body.message).toMatch(/secondary rate limit/);
    fake.faults.secondaryLimit = { count: 1, status: 429, retryAfterSeconds: 5 };
    expect((await call('GET', '/repos/acme/app/actions/runs')).status).toBe(429);
    fake.faults.serverErrors = 1;
    expect((await call('GET', '/repos/acme/app/actions/runs')).status).toBe(502);
    expect((await call('GET', '/repos/acme/app/actions/runs')).status).toBe(200);
  });

  it('signs deliveries like GitHub and shapes them like the published workflow_job and workflow_run schemas', async () => {
    // A run of one job, through to its end, so every action of both events is sent.
    fake.registerRunner('r-schemas', ['self-hosted', 'schemas']);
    fake.startRunner('r-schemas');
    fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'schemas'], count: 1, durationMs: 1 });
    clock.advance(10);
    fake.tick();
    await fake.flushWebhooks();
    const before = receiver.received.length;
    fake.faults.dropWebhooks = true;
    fake.queueJobs({ repo: 'acme/docs', labels: ['self-hosted'], count: 1 });
    await fake.flushWebhooks();
    expect(receiver.received.length).toBe(before);
    fake.faults.dropWebhooks = false;

    const validators = loadOpenApiValidators();
    const actions = new Set<string>();
    expect(receiver.received.length).toBeGreaterThan(0);
    for (const delivery of receiver.received) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(delivery.body).digest('hex')}`;
      expect(delivery.headers['x-hub-signature-256']).toBe(expected);
      const event = delivery.headers['x-github-event'];
      expect(['workflow_job', 'workflow_run']).toContain(event);
      expect(delivery.headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
      const payload = JSON.parse(delivery.body);
      actions.add(`${event} ${payload.action}`);
      const validate = validators.webhook(`${event?.replace('_', '-')}-${payload.action.replace('_', '-')}`);
      expect(
        validate(payload),
        `${event} ${payload.action}: ${JSON.stringify(validate.errors?.slice(0, 3))}`,
      ).toBe(true);
    }
    expect([...actions].sort()).toEqual([
      'workflow_job completed',
      'workflow_job in_progress',
      'workflow_job queued',
      'workflow_run completed',
      'workflow_run in_progress',
      'workflow_run requested',
    ]);
  });

  it('sent only responses that GitHub documents, each valid against the REST description', () => {
    const validators = loadOpenApiValidators();
    const basicError = validators.schema('basic-error');
    const checked = new Set<string>();
    expect(fake.responses.length).toBeGreaterThan(20);
    // The validators have teeth: a job without created_at, or with an unknown status, is refused.
    const jobsPage = fake.responses.find((r) => r.route.endsWith('/jobs') && r.status === 200)?.body as {
      jobs: Record<string, unknown>[];
    };
    const validJob = jobsPage.jobs[0] as Record<string, unknown>;
    const validateJobs = validators.response('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs', 200);
    expect(validateJobs({ total_count: 1, jobs: [validJob] })).toBe(true);
    const { created_at: _dropped, ...withoutCreatedAt } = validJob;
    expect(validateJobs({ total_count: 1, jobs: [withoutCreatedAt] })).toBe(false);
    expect(validateJobs({ total_count: 1, jobs: [{ ...validJob, status: 'running' }] })).toBe(false);
    expect(validateJobs({ total_count: 1, jobs: [{ ...validJob, conclusion: null }] })).toBe(true);
    for (const response of fake.responses) {
      const where = `${response.method} ${response.route} ${response.status}`;
      if (validators.documents(response.method, response.route, response.status)) {
        const validate = validators.response(response.method, response.route, response.status);
        expect(validate(response.body), `${where}: ${JSON.stringify(validate.errors?.slice(0, 3))}`).toBe(
          true,
        );
        checked.add(where);
      } else {
        // Errors GitHub sends on every route (401, 403 rate limits, 404, 5xx) use the basic-error shape.
        expect(response.status, where).toBeGreaterThanOrEqual(400);
        expect(basicError(response.body), where).toBe(true);
      }
    }
    for (const route of [
      'POST /app/installations/{installation_id}/access_tokens 201',
      'GET /installation/repositories 200',
      'GET /repos/{owner}/{repo}/actions/runs 200',
      'GET /repos/{owner}/{repo}/actions/runs/{run_id} 200',
      'GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs 200',
      'GET /repos/{owner}/{repo}/actions/jobs/{job_id} 200',
      'GET /orgs/{org}/actions/runner-groups 200',
      'POST /orgs/{org}/actions/runners/generate-jitconfig 201',
      'POST /orgs/{org}/actions/runners/generate-jitconfig 409',
      'POST /orgs/{org}/actions/runners/generate-jitconfig 422',
      'POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig 201',
      'GET /orgs/{org}/actions/runners 200',
      'GET /repos/{owner}/{repo}/actions/runners 200',
      'DELETE /orgs/{org}/actions/runners/{runner_id} 422',
      'GET /rate_limit 200',
    ]) {
      expect(checked, route).toContain(route);
    }
  });
});
