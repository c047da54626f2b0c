import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per Gantry instance (not prom-client's global), so tests and embedders stay isolated. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gantry_process_' });
  return registry;
}
