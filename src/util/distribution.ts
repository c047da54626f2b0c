import { z } from 'zod';
import { parseDuration } from './duration.ts';

/**
 * Delays the simulator and the warm-pool estimate draw from: a fixed value, a log-normal given by its
 * median and 95th percentile (start-up times are skewed: most pods start quickly, some wait for an
 * image or a node), a uniform range, or an empirical distribution (points of its cumulative
 * distribution, e.g. fitted from a Prometheus histogram). All in seconds.
 */

export type Random = () => number;

export type Distribution =
  | { kind: 'fixed'; seconds: number }
  | { kind: 'lognormal'; median: number; p95: number }
  | { kind: 'uniform'; min: number; max: number }
  /** Points (seconds, cumulative fraction), increasing in both, the last fraction 1. */
  | { kind: 'empirical'; points: readonly (readonly [seconds: number, fraction: number])[] };

/** z-score of the 95th percentile of the standard normal distribution. */
const Z95 = 1.6448536269514722;

/** A small seeded generator (mulberry32), so a simulation gives the same result every time. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal deviate (Box–Muller). */
function normal(random: Random): number {
  const u = Math.max(random(), Number.MIN_VALUE);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Draws seconds from the distribution. */
export function sample(distribution: Distribution, random: Random): number {
  switch (distribution.kind) {
    case 'fixed':
      return distribution.seconds;
    case 'uniform':
      return distribution.min + random() * (distribution.max - distribution.min);
    case 'lognormal': {
      const mu = Math.log(distribution.median);
      const sigma = Math.max(0, Math.log(distribution.p95 / distribution.median) / Z95);
      return Math.exp(mu + sigma * normal(random));
    }
    case 'empirical':
      return inverseCdf(distribution.points, random());
  }
}

/** Piecewise-linear inverse of the cumulative distribution through the points (from 0 at 0 s). */
function inverseCdf(points: readonly (readonly [number, number])[], u: number): number {
  let previous: readonly [number, number] = [0, 0];
  for (const point of points) {
    if (u <= point[1]) {
      const span = point[1] - previous[1];
      return span <= 0 ? point[0] : previous[0] + ((u - previous[1]) / span) * (point[0] - previous[0]);
    }
    previous = point;
  }
  return previous[0];
}

/** The distribution's median, in seconds. */
export function median(distribution: Distribution): number {
  switch (distribution.kind) {
    case 'fixed':
      return distribution.seconds;
    case 'uniform':
      return (distribution.min + distribution.max) / 2;
    case 'lognormal':
      return distribution.median;
    case 'empirical':
      return inverseCdf(distribution.points, 0.5);
  }
}

export function describeDistribution(distribution: Distribution): string {
  const s = (seconds: number) => `${Number(seconds.toFixed(2))}s`;
  switch (distribution.kind) {
    case 'fixed':
      return s(distribution.seconds);
    case 'uniform':
      return `uniform ${s(distribution.min)}–${s(distribution.max)}`;
    case 'lognormal':
      return `log-normal, median ${s(distribution.median)}, p95 ${s(distribution.p95)}`;
    case 'empirical':
      return `empirical (${distribution.points.length} points), median ${s(median(distribution))}`;
  }
}

const seconds = z
  .union([z.number(), z.string()], { error: 'expected seconds or a duration such as 1.5s, 40s, 2m' })
  .transform((value, ctx) => {
    const parsed = typeof value === 'number' ? value : parseSeconds(value);
    if (parsed === undefined || !Number.isFinite(parsed) || parsed < 0) {
      ctx.addIssue({ code: 'custom', message: 'expected seconds >= 0 or a duration such as 1.5s, 40s, 2m' });
      return z.NEVER;
    }
    return parsed;
  });

/** Seconds from `40`, `40s`, `1.5s`, `2m` or `1m30s`. */
export function parseSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  const fractional = /^(\d+(?:\.\d+)?)s?$/.exec(trimmed);
  if (fractional) return Number(fractional[1]);
  return parseDuration(trimmed);
}

/** How a distribution is written in a model file. */
export const distributionSchema = z.union(
  [
    seconds.transform((value): Distribution => ({ kind: 'fixed', seconds: value })),
    z
      .strictObject({
        lognormal: z
          .strictObject({ median: seconds, p95: seconds })
          .refine((d) => d.median > 0 && d.p95 >= d.median, {
            error: 'expected 0 < median <= p95',
          }),
      })
      .transform((d): Distribution => ({ kind: 'lognormal', ...d.lognormal })),
    z
      .strictObject({
        uniform: z.strictObject({ min: seconds, max: seconds }).refine((d) => d.min <= d.max, {
          error: 'expected min <= max',
        }),
      })
      .transform((d): Distribution => ({ kind: 'uniform', ...d.uniform })),
  ],
  {
    error:
      'expected seconds (40s), { lognormal: { median: 30s, p95: 90s } } or { uniform: { min: 20s, max: 60s } }',
  },
);

/**
 * A distribution as a command-line flag takes it: `40s`, `lognormal:MEDIAN,P95` or
 * `uniform:MIN,MAX`. Undefined when the text is none of these.
 */
export function parseDistributionFlag(text: string): Distribution | undefined {
  const [kind, rest] = text.includes(':')
    ? [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)]
    : ['', text];
  if (kind === '') {
    const value = parseSeconds(rest);
    return value === undefined ? undefined : { kind: 'fixed', seconds: value };
  }
  const [a, b, extra] = rest.split(',').map((part) => parseSeconds(part));
  if (a === undefined || b === undefined || extra !== undefined) return undefined;
  if (kind === 'lognormal' && a > 0 && b >= a) return { kind: 'lognormal', median: a, p95: b };
  if (kind === 'uniform' && a <= b) return { kind: 'uniform', min: a, max: b };
  return undefined;
}
