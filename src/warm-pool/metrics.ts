import { Gauge, type Registry } from 'prom-client';
import type { WarmPoolLearner } from './learner.ts';

/** gantry_class_warm_pool_target: the warm pool each objective-driven class keeps now (read at scrape). */
export function registerWarmPoolMetrics(registry: Registry, learner: WarmPoolLearner): void {
  new Gauge({
    name: 'gantry_class_warm_pool_target',
    help:
      'Idle runners the class keeps warm now: the least that meets its warmPool queue-time objective for ' +
      'the arrivals learned for this hour of the week (its minIdle to the planner).',
    labelNames: ['class'] as const,
    registers: [registry],
    collect() {
      for (const className of learner.classNames) this.set({ class: className }, learner.targetOf(className));
    },
  });
}
