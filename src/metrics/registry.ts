import { collectDefaultMetrics, Registry } from 'prom-client';

const PREFIX = 'gantry_process_';
/**
 * prom-client's default set has three gauges named like counters (`_total`), which Prometheus's own
 * checks reject; their untotalled twins (`nodejs_active_handles`, …) carry the same counts by type.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** One registry per Gantry instance (not prom-client's global), so tests and embedders stay isolated. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(`${PREFIX}${name}`);
  return registry;
}
