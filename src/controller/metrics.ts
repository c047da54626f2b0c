import { Counter, Gauge, type Registry } from 'prom-client';
import type { DiscardReason } from '../launcher/kube-launcher.ts';

/** Where Gantry's calls go, each with a concurrency limit of its own. */
export type Destination = 'kubernetes' | 'github';

/** How runners are launched: the adaptive concurrency limits and the registrations a launch wasted. */
export function createLaunchMetrics(registry: Registry) {
  const registers = [registry];
  const limit = new Gauge({
    name: 'gantry_concurrency_limit',
    help:
      'Calls let be under way at once, as the adaptive limit stands: runner actions against the ' +
      'Kubernetes API (destination kubernetes) and runner registrations with GitHub (github).',
    labelNames: ['destination'] as const,
    registers,
  });
  const discarded = new Counter({
    name: 'gantry_runner_registrations_discarded_total',
    help:
      'Runner registrations made alongside a pod create and removed again because the pod was not ' +
      'created (reason: quota-exceeded, refused, failed, pod-exists); removed="false" when the removal ' +
      'failed and is left to the runner sweep.',
    labelNames: ['class', 'reason', 'removed'] as const,
    registers,
  });
  return {
    setLimit(destination: Destination, value: number): void {
      limit.set({ destination }, value);
    },
    registrationDiscarded(className: string, reason: DiscardReason, removed: boolean): void {
      discarded.inc({ class: className, reason, removed: String(removed) });
    },
  };
}

export type LaunchMetrics = ReturnType<typeof createLaunchMetrics>;
