/**
 * The organisation the simulator's benchmark and the warm-pool comparison replay: the three kinds of
 * job of the synthetic trace (src/trace/synthetic.ts), one class each, at typical cloud prices, and
 * runner pods that take 40 s to start at the median (75 s at the 95th percentile: an image pull, now
 * and then a node to add), slower than a 30 s queue-time objective allows without warm runners.
 */
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { modelSchema, type SimulationModel } from '../../src/simulate/model.ts';

export const CLASS_NAMES = ['build', 'e2e', 'lint'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];

export const OBJECTIVE_SECONDS = 30;

/** Per class a fixed minIdle, or (`objective`) a warm pool sized for p95 <= 30 s. */
export function syntheticOrgConfig(warm: 'objective' | Partial<Record<ClassName, number>>): Config {
  const pool = (name: ClassName) =>
    warm === 'objective'
      ? { warmPool: { queueTimeObjective: { p95: `${OBJECTIVE_SECONDS}s` } } }
      : { minIdle: warm[name] ?? 0 };
  const cls = (name: ClassName, maxRunners: number) => ({
    namespace: 'ci',
    match: { github: { labels: ['self-hosted', 'linux', name] } },
    maxRunners,
    idleTimeout: '2m',
    resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '4Gi' } },
    // On-demand prices of a general-purpose cloud instance, per vCPU-hour and GiB-hour.
    cost: { perVcpuHour: 0.0416, perGibHour: 0.0052 },
    ...pool(name),
  });
  return parseConfig({ classes: { lint: cls('lint', 300), build: cls('build', 200), e2e: cls('e2e', 100) } });
}

export function syntheticModel(): SimulationModel {
  return modelSchema.parse({ startup: { lognormal: { median: '40s', p95: '75s' } } });
}
