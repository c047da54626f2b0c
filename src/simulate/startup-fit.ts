import { readFile } from 'node:fs/promises';
import type { Distribution } from '../util/distribution.ts';
import { InputError } from '../util/input-error.ts';
import { withRetry } from '../util/retry.ts';
import { CALL_RETRIES } from '../util/schedules.ts';

/**
 * Start-up times fitted from Gantry's own `gantry_runner_startup_seconds` histogram (pod created →
 * container running), per class: the bucket counts are the cumulative distribution at the bucket
 * bounds, and times within a bucket are taken as spread evenly. What lies beyond the largest finite
 * bound is spread up to twice that bound (the histogram does not say how far it reaches).
 */

const METRIC = 'gantry_runner_startup_seconds_bucket';
const FETCH_TIMEOUT_MS = 10_000;

/** Parses Prometheus text exposition; per class, the fitted distribution (classes with no sample left out). */
export function fitStartupHistogram(text: string, where: string): Map<string, Distribution> {
  const buckets = new Map<string, Map<number, number>>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${METRIC}{`)) continue;
    const match = /^[^{]+\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    const className = labels.class;
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    const count = Number(match[2]);
    if (className === undefined || Number.isNaN(le) || !Number.isFinite(count)) continue;
    const byBound = buckets.get(className) ?? new Map<number, number>();
    byBound.set(le, count);
    buckets.set(className, byBound);
  }
  if (buckets.size === 0) throw new InputError(`${where}: no ${METRIC} series (is it a Gantry's /metrics?)`);
  const fitted = new Map<string, Distribution>();
  for (const [className, byBound] of buckets) {
    const bounds = [...byBound.keys()].sort((a, b) => a - b);
    const total = byBound.get(Number.POSITIVE_INFINITY) ?? Math.max(...byBound.values());
    if (!(total > 0)) continue;
    const finite = bounds.filter(Number.isFinite);
    const largest = finite.at(-1) ?? 1;
    const points: [number, number][] = [];
    let last = 0;
    for (const bound of bounds) {
      const fraction = Math.min(1, (byBound.get(bound) ?? 0) / total);
      // Empty buckets add no point: the distribution stays flat across them.
      if (fraction <= last) continue;
      points.push([Number.isFinite(bound) ? bound : largest * 2, fraction]);
      last = fraction;
    }
    fitted.set(className, { kind: 'empirical', points });
  }
  return fitted;
}

/** Reads the histogram from a file or from a running Gantry's /metrics (a URL). */
export async function loadStartupFit(source: string): Promise<Map<string, Distribution>> {
  if (/^https?:\/\//.test(source)) {
    const url = new URL(source);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/metrics';
    const text = await withRetry(
      async () => {
        const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
        if (res.status >= 500) throw new RetryableFetchError(`${url}: HTTP ${res.status}`);
        if (!res.ok) throw new InputError(`${url}: HTTP ${res.status}`);
        return res.text();
      },
      {
        ...CALL_RETRIES.commandFetch,
        isRetryable: (err) =>
          err instanceof RetryableFetchError ||
          (err as Error).name === 'TimeoutError' ||
          err instanceof TypeError,
      },
    ).catch((err: unknown) => {
      if (err instanceof InputError) throw err;
      throw new InputError(`cannot read start-up times from ${url}: ${(err as Error).message}`);
    });
    return fitStartupHistogram(text, String(url));
  }
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      `cannot read start-up times from ${source}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  return fitStartupHistogram(text, source);
}

class RetryableFetchError extends Error {}
