import { Gauge, type Registry } from 'prom-client';

/** `gantry_leader`: 1 while this replica plans and acts, else 0. */
export function leaderMetric(registry: Registry): { set(leading: boolean): void } {
  const gauge = new Gauge({
    name: 'gantry_leader',
    help: '1 while this replica is the leader (plans and acts), else 0.',
    registers: [registry],
  });
  gauge.set(0);
  return { set: (leading) => gauge.set(leading ? 1 : 0) };
}
