import { z } from 'zod';

/**
 * Gantry's configuration: the daemon's config file and, rendered from them, the Helm values.
 * Every field has a default so an empty file is a valid configuration; unknown keys are refused
 * so a typo never silently falls back to a default.
 */
export const configSchema = z.strictObject({
  http: z
    .strictObject({
      address: z.string().min(1).default('0.0.0.0').describe('Address the HTTP server listens on.'),
      port: z.int().min(0).max(65535).default(8080).describe('Port for webhooks, metrics and health.'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info')
        .describe('Lowest level that is logged.'),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
