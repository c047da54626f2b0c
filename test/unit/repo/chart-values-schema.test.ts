import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  chartValuesSchema,
  PATTERNS,
  renderValuesSchema,
  VALUES_SCHEMA_PATH,
} from '../../../hack/chart/values-schema.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { isDnsLabel, isDnsSubdomain, isLabelValue, isQualifiedName } from '../../../src/model/kube-names.ts';
import { parseQuantity } from '../../../src/model/quantity.ts';

// The chart's values schema is generated from Gantry's config schema; these tests keep the committed
// file equal to it, and the patterns standing in for Gantry's check functions equal to them.

const CHART_DIR = dirname(VALUES_SCHEMA_PATH);

describe('chart/values.schema.json', () => {
  it('is what hack/chart/values-schema.ts generates (run it after changing the config schema)', () => {
    expect(readFileSync(VALUES_SCHEMA_PATH, 'utf8')).toBe(renderValuesSchema());
  });

  it('puts Gantry’s own schema under config, with its descriptions and defaults', () => {
    const schema = JSON.parse(renderValuesSchema());
    const runnerClass =
      schema.properties.config.properties.classes.patternProperties[PATTERNS.classNameLabel];
    expect(runnerClass.additionalProperties).toBe(false);
    expect(runnerClass.properties.maxRunners).toMatchObject({ type: 'integer', minimum: 0, default: 10 });
    expect(runnerClass.properties.namespace).toMatchObject({ pattern: PATTERNS.dnsLabel, maxLength: 63 });
    expect(schema.properties.config.properties.classes.additionalProperties).toBe(false);
    expect(schema.additionalProperties).toBe(false);
  });

  it('describes the chart’s Tekton keys: the webhook’s failure policy, timeout and certificate source', () => {
    const schema = JSON.parse(renderValuesSchema());
    const webhook = schema.properties.tekton.properties.webhook;
    expect(webhook.additionalProperties).toBe(false);
    expect(webhook.properties.failurePolicy).toMatchObject({ type: 'string', enum: ['Ignore', 'Fail'] });
    expect(webhook.properties.timeoutSeconds).toMatchObject({ type: 'integer', minimum: 1, maximum: 30 });
    expect(webhook.properties.certManager.properties.enabled).toMatchObject({ type: 'boolean' });
    // Gantry's own side of it sits under config, from its schema.
    expect(schema.properties.config.properties.tekton.properties.webhook.properties.port).toMatchObject({
      default: 8443,
    });
  });

  it('accepts the Tekton defaults of values.yaml, and refuses a failure policy the apiserver lacks', () => {
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { tekton: unknown };
    const tekton = chartValuesSchema.shape.tekton;
    expect(tekton.safeParse(values.tekton).error?.issues).toBeUndefined();
    expect(values.tekton).toEqual({
      webhook: { failurePolicy: 'Ignore', timeoutSeconds: 5, certManager: { enabled: true } },
    });
    expect(tekton.safeParse({ webhook: { failurePolicy: 'Sometimes' } }).error?.issues).toMatchObject([
      { path: ['webhook', 'failurePolicy'], message: 'Invalid option: expected one of "Ignore"|"Fail"' },
    ]);
  });
});

/**
 * Strings over an alphabet that reaches both sides of each naming rule, including the 63-character
 * limits; at most 240 characters, below the 253 of a prefix, which the patterns leave to maxLength.
 */
const nameLike = fc.string({
  unit: fc.constantFrom(...'abz09-._/AZ'.split(''), 'k8s.io/', 'a'.repeat(40)),
  maxLength: 6,
});

function matches(pattern: string, value: string, maxLength: number): boolean {
  return value.length <= maxLength && new RegExp(pattern).test(value);
}

describe('patterns standing in for Gantry’s checks', () => {
  it('accept exactly the DNS labels, subdomains, label values and qualified names Gantry accepts', () => {
    fc.assert(
      fc.property(nameLike, (value) => {
        expect(matches(PATTERNS.dnsLabel, value, 63)).toBe(isDnsLabel(value));
        expect(matches(PATTERNS.classNameLabel, value, Number.POSITIVE_INFINITY)).toBe(isDnsLabel(value));
        expect(matches(PATTERNS.dnsSubdomain, value, 253)).toBe(isDnsSubdomain(value));
        expect(matches(PATTERNS.labelValue, value, 63)).toBe(isLabelValue(value));
        expect(matches(PATTERNS.qualifiedName, value, 317)).toBe(isQualifiedName(value));
      }),
      { numRuns: 2_000 },
    );
  });

  it('accept exactly the quantities Gantry accepts, none negative', () => {
    const quantityLike = fc
      .string({
        unit: fc.constantFrom(...'0123456789.+-eEmkMGKiu '.split(''), 'Gi', 'Mi', 'Ei'),
        maxLength: 8,
      })
      // A pattern cannot bound a magnitude: exponents past a double's range (1e309) pass the schema
      // and are refused by Gantry's loader at start, with the key named.
      .filter((value) => !/[eE][-+]?\d{3,}/.test(value));
    fc.assert(
      fc.property(quantityLike, (value) => {
        expect(new RegExp(PATTERNS.quantity).test(value)).toBe(parseQuantity(value) !== undefined);
      }),
      { numRuns: 3_000 },
    );
    for (const negative of ['-1', '-500m', '-2Gi'])
      expect(new RegExp(PATTERNS.quantity).test(negative)).toBe(false);
  });

  it('accept exactly the durations Gantry accepts', () => {
    const durationLike = fc.string({ unit: fc.constantFrom(...'0123456789hms -'.split('')), maxLength: 7 });
    const gantryAccepts = (value: string) => {
      try {
        parseConfig({ classes: { c: { match: { github: { labels: ['x'] } }, idleTimeout: value } } });
        return true;
      } catch {
        return false;
      }
    };
    fc.assert(
      fc.property(durationLike, (value) => {
        expect(new RegExp(PATTERNS.duration).test(value)).toBe(gantryAccepts(value));
      }),
      { numRuns: 2_000 },
    );
  });
});
