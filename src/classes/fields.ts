import { z } from 'zod';
import { isDnsLabel, isDnsSubdomain, isLabelValue, isQualifiedName } from '../model/kube-names.ts';
import { parseQuantity } from '../model/quantity.ts';
import { parseDuration } from '../util/duration.ts';

/** Field types the class schemas share: each refuses bad input with what it expected. */

export const count = () =>
  z.int({ error: 'expected a whole number' }).min(0, { error: 'expected a number >= 0' });

/** YAML turns `cpu: 2` into a number; quantities are kept as the text Kubernetes expects. */
export const quantity = z
  .union([z.string(), z.number()], { error: 'expected a Kubernetes quantity such as 500m, 2 or 4Gi' })
  .transform((value) => String(value))
  .refine((value) => parseQuantity(value) !== undefined, {
    error: 'expected a Kubernetes quantity such as 500m, 2 or 4Gi',
  });

/** Seconds, or a duration such as 90s, 5m, 1h30m. */
export const duration = z
  .union([z.number(), z.string()], { error: 'expected seconds or a duration such as 90s, 5m, 1h30m' })
  .transform((value, ctx) => {
    const seconds = typeof value === 'number' ? value : parseDuration(value);
    if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
      ctx.addIssue({ code: 'custom', message: 'expected seconds >= 0 or a duration such as 90s, 5m, 1h30m' });
      return z.NEVER;
    }
    return seconds;
  });

/** YAML turns `FOO: 1` into a number; environment and annotation values are strings. */
export const stringish = z
  .union([z.string(), z.number(), z.boolean()], { error: 'expected a string' })
  .transform((value) => String(value));

export const dnsLabel = z.string().refine(isDnsLabel, {
  error: 'expected a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters)',
});
export const dnsSubdomain = z.string().refine(isDnsSubdomain, {
  error: 'expected a DNS-1123 subdomain (lowercase letters, digits, "-" and ".")',
});
export const absolutePath = z
  .string()
  .refine((path) => path.startsWith('/') && !path.split('/').includes('..'), {
    error: 'expected an absolute path without ".."',
  });

export const labelMap = z.record(z.string(), stringish).superRefine((labels, ctx) => {
  for (const [key, value] of Object.entries(labels)) {
    if (!isQualifiedName(key)) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'expected a label key such as example.com/name' });
    } else if (!isLabelValue(value)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message:
          'expected a label value (at most 63 letters, digits, "-", "_" or ".", alphanumeric at both ends)',
      });
    }
  }
});

export const annotationMap = z.record(z.string(), stringish).superRefine((annotations, ctx) => {
  for (const key of Object.keys(annotations)) {
    if (!isQualifiedName(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'expected an annotation key such as example.com/name',
      });
    }
  }
});

export const resourceList = z.strictObject({
  cpu: quantity.optional().describe('CPU, e.g. 500m or 2.'),
  memory: quantity.optional().describe('Memory, e.g. 512Mi or 4Gi.'),
  'ephemeral-storage': quantity.optional().describe('Node-local scratch space, e.g. 20Gi.'),
});
export type ResourceName = keyof z.output<typeof resourceList>;

/** Environment variables by name; YAML numbers and booleans become the strings Kubernetes expects. */
export const envMap = z.record(z.string(), stringish).superRefine((env, ctx) => {
  for (const name of Object.keys(env)) {
    if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'expected an environment variable name' });
    }
  }
});

export { parseDuration };
