import { z } from 'zod';
import { githubConfigSchema } from '../sources/github/config.ts';
import { classesSchema } from './classes.ts';

/**
 * Gantry's configuration: the daemon's config file and, rendered from them, the Helm values.
 * Every field has a default so an empty file is a valid configuration; unknown keys are refused
 * so a typo never silently falls back to a default.
 */
export const configSchema = z
  .strictObject({
    github: githubConfigSchema.prefault({}),
    classes: classesSchema,
    controller: z
      .strictObject({
        startTimeoutSeconds: z
          .int()
          .positive()
          .default(600)
          .describe('A runner pod not Running this long after its creation is stuck, and replaced.'),
        deadlineGraceSeconds: z
          .int()
          .min(0)
          .default(60)
          .describe(
            'Beyond a class’s activeDeadlineSeconds, how long a busy runner may still run before it is stuck.',
          ),
        reconcilePeriodSeconds: z
          .number()
          .positive()
          .default(1)
          .describe('Longest time between two planning passes (changes trigger one sooner).'),
        concurrency: z
          .int()
          .positive()
          .default(8)
          .describe('Runner creations and removals carried out at once.'),
      })
      .prefault({}),
    kubernetes: z
      .strictObject({
        requestTimeoutSeconds: z
          .number()
          .positive()
          .default(15)
          .describe('Upper bound of one Kubernetes API request (watches excepted).'),
      })
      .prefault({}),
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
  })
  .superRefine((config, ctx) => {
    if (!config.github.enabled || config.github.runners.org) return;
    for (const [name, runnerClass] of Object.entries(config.classes)) {
      if (runnerClass.scope === 'org' && runnerClass.match.github) {
        ctx.addIssue({
          code: 'custom',
          path: ['github', 'runners', 'org'],
          message: `required: class ${name} registers its runners in the organisation (scope org)`,
        });
        return;
      }
    }
  });

export type Config = z.output<typeof configSchema>;
