import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BODY_LIMIT_BYTES, jsonTooDeep, MAX_JSON_DEPTH } from '../../../src/http/body-limits.ts';
import { createHttpServer } from '../../../src/http/server.ts';

describe('HTTP server', () => {
  it('answers liveness always and readiness only when ready', async () => {
    let ready = false;
    const app = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => ready,
    });
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect((await app.inject('/readyz')).statusCode).toBe(503);
    ready = true;
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    await app.close();
  });

  it('serves the registry in the Prometheus text format', async () => {
    const metrics = new Registry();
    new Counter({ name: 'gantry_example_total', help: 'An example.', registers: [metrics] }).inc(3);
    const app = createHttpServer({ logger: pino({ level: 'silent' }), metrics, isReady: () => true });
    const res = await app.inject('/metrics');
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('gantry_example_total 3');
    await app.close();
  });
});

describe('status page and state endpoint', () => {
  const report = {
    generatedAt: '2026-01-15T12:00:00.000Z',
    classes: [
      {
        name: 'lint',
        queued: 3,
        starting: 1,
        idle: 2,
        busy: 4,
        terminating: 0,
        admitted: 0,
        maxRunners: 20,
        queueP95Seconds: 12.5,
        costTodayDollars: 1.234,
      },
    ],
    events: [
      { at: '2026-01-15T11:59:58.000Z', class: 'lint', message: 'job queued: acme/app <script>x</script>' },
    ],
  };

  it('serves the report as JSON and as an escaped HTML page', async () => {
    const app = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => true,
      status: () => report,
    });
    expect((await app.inject('/api/status')).json()).toEqual(report);
    const page = await app.inject('/');
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('<td class="class">lint</td>');
    expect(page.body).toContain('$1.23');
    expect(page.body).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(page.body).not.toContain('<script>');
    await app.close();
  });
});

describe('request body limits', () => {
  const withEchoRoute = () => {
    const app = createHttpServer({
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      isReady: () => true,
    });
    const received: unknown[] = [];
    app.post('/echo', async (request) => {
      received.push(request.body);
      return { ok: true };
    });
    return { app, received };
  };
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('refuses a body over the default limit with 413 and does not run the handler', async () => {
    const { app, received } = withEchoRoute();
    const payload = JSON.stringify({ text: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES) });
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode).toBe(413);
    expect(received).toHaveLength(0);
    await app.close();
  });

  it('refuses JSON nested too deep with 400 naming the limit, and parses JSON within it', async () => {
    const { app, received } = withEchoRoute();
    const post = (payload: string) =>
      app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload });
    const deep = await post(`{"a":${nested(MAX_JSON_DEPTH)}}`);
    expect(deep.statusCode).toBe(400);
    expect(deep.json().message).toBe(`JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(received).toHaveLength(0);
    // Brackets inside strings, escaped quotes included, do not count.
    const ok = await post(`{"a":${nested(MAX_JSON_DEPTH - 1)},"s":"\\"[[[[${'['.repeat(100)}"}`);
    expect(ok.statusCode).toBe(200);
    expect(received).toHaveLength(1);
    await app.close();
  });

  it('still refuses prototype poisoning', async () => {
    const { app, received } = withEchoRoute();
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"admin":true}}',
    });
    expect(res.statusCode).toBe(400);
    expect(received).toHaveLength(0);
    await app.close();
  });
});

describe('jsonTooDeep', () => {
  it('counts objects and arrays outside strings', () => {
    expect(jsonTooDeep('{"a":{"b":[1]}}', 3)).toBe(false);
    expect(jsonTooDeep('{"a":{"b":[[1]]}}', 3)).toBe(true);
    expect(jsonTooDeep('{"a":"{{{{\\\\"}', 1)).toBe(false);
    expect(jsonTooDeep('[{},{},{}]', 2)).toBe(false);
  });
});
