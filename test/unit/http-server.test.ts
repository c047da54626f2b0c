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
