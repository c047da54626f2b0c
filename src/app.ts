import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import type { Config } from './config/schema.ts';
import { createHttpServer } from './http/server.ts';
import { createMetricsRegistry } from './metrics/registry.ts';

export interface App {
  logger: Logger;
  http: FastifyInstance;
  start(): Promise<{ url: string }>;
  stop(): Promise<void>;
}

/** Composition root: builds and wires the parts; holds no policy of its own. */
export function createApp(config: Config, logger: Logger = pino({ level: config.log.level })): App {
  const metrics = createMetricsRegistry();
  let ready = false;
  const http = createHttpServer({ logger, metrics, isReady: () => ready });
  return {
    logger,
    http,
    async start() {
      const url = await http.listen({ host: config.http.address, port: config.http.port });
      ready = true;
      logger.info({ url }, 'gantry started');
      return { url };
    },
    async stop() {
      ready = false;
      await http.close();
      logger.info('gantry stopped');
    },
  };
}
