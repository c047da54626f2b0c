import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/http/server.ts';

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
