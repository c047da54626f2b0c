import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createGithubApi } from '../../../../src/sources/github/api.ts';
import { createGithubClient } from '../../../../src/sources/github/client.ts';
import { GithubApiError } from '../../../../src/sources/github/errors.ts';
import { createGithubMetrics } from '../../../../src/sources/github/metrics.ts';
import { ManualClock } from '../../../support/fake-github/index.ts';
import { capturingLogger } from '../../../support/github-harness.ts';

/** A server on loopback that answers every request with `answer`, recording what it was asked. */
async function server(
  answer: (url: string) => { status: number; headers?: Record<string, string>; body: unknown },
) {
  const seen: { url: string; ifNoneMatch: string | undefined }[] = [];
  const http: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', ifNoneMatch: req.headers['if-none-match'] });
    const { status, headers, body } = answer(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return { origin, seen, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

function client(baseUrl: string, etagCacheBytes?: number) {
  const { logger } = capturingLogger();
  const github = createGithubClient({
    baseUrl,
    authorize: async () => 'token ghs_secret',
    onUnauthorized: () => false,
    clock: new ManualClock(),
    logger,
    metrics: createGithubMetrics(new Registry()),
    timeoutMs: 2_000,
    maxRetries: 0,
    ...(etagCacheBytes !== undefined ? { etagCacheBytes } : {}),
  });
  return { github, api: createGithubApi(github, 100) };
}

describe('the GitHub client', () => {
  const servers: { close: () => Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('never follows a next page to another origin, so the token stays with the API', async () => {
    const elsewhere = await server(() => ({ status: 200, body: { total_count: 0, workflow_runs: [] } }));
    const api = await server(() => ({
      status: 200,
      headers: { link: `<${elsewhere.origin}/steal?page=2>; rel="next"` },
      body: { total_count: 2, workflow_runs: [] },
    }));
    servers.push(elsewhere, api);
    await expect(client(api.origin).api.listWorkflowRuns('acme/app', 'queued')).rejects.toThrow(
      GithubApiError,
    );
    await expect(client(api.origin).api.listWorkflowRuns('acme/app', 'queued')).rejects.toThrow(
      /next page http:\/\/127\.0\.0\.1:\d+\/steal\?page=2 is not on http:\/\/127\.0\.0\.1:\d+; not followed/,
    );
    expect(elsewhere.seen).toEqual([]);
    expect(api.seen.length).toBeGreaterThan(0);
  });

  it('keeps the ETag cache within its byte bound, dropping the oldest bodies', async () => {
    // Three runs of about 40 KB each under a 100 KB bound: the first is evicted, so asked again in full.
    const big = 'x'.repeat(40_000);
    const api = await server((url) => {
      const id = Number(url.split('/').pop());
      return { status: 200, headers: { etag: `"run-${id}"` }, body: { id, event: 'push', padding: big } };
    });
    servers.push(api);
    const run1 = () => api.seen.filter((s) => s.url.endsWith('/runs/1')).map((s) => s.ifNoneMatch);
    const bounded = client(api.origin, 100_000).api;
    for (const id of [1, 2, 3, 1]) await bounded.getRun('acme/app', id);
    // Run 1's body was evicted to stay in bounds: the second GET cannot be conditional.
    expect(run1()).toEqual([undefined, undefined]);
    api.seen.length = 0;
    const roomy = client(api.origin, 1_000_000).api;
    for (const id of [1, 2, 3, 1]) await roomy.getRun('acme/app', id);
    expect(run1()).toEqual([undefined, '"run-1"']);
  });
});
