import type { RunnerClass } from '../../classes/schema.ts';
import { isObject, own } from './json-reading.ts';

/**
 * The pod settings a Tekton class stands for: its own (runtime class, priority, placement, service
 * account) and Gantry's floor for every class, the same as for its runner pods (Pod Security
 * "restricted" as far as a pod template can say it, no service-account token). The webhook adds them
 * where a run leaves them out; an enforcing class also refuses runs that say otherwise.
 */

/** Where Tekton v1 keeps the pod template of every TaskRun of a run (and of one task). */
export const POD_TEMPLATE = 'podTemplate';

/** Pod-template fields whose values the class sets, by name, for messages and per-task overrides. */
export function classManagedFields(runnerClass: RunnerClass): string[] {
  return [
    ...(runnerClass.runtimeClassName !== undefined ? ['runtimeClassName'] : []),
    ...(runnerClass.priorityClassName !== undefined ? ['priorityClassName'] : []),
    ...(Object.keys(runnerClass.nodeSelector).length > 0 ? ['nodeSelector'] : []),
    ...(runnerClass.tolerations.length > 0 ? ['tolerations'] : []),
    ...(runnerClass.affinity !== undefined ? ['affinity'] : []),
    'securityContext',
    'automountServiceAccountToken',
  ];
}

/** Kubernetes treats an empty operator as Equal and absent strings as empty. */
export function sameToleration(existing: unknown, wanted: RunnerClass['tolerations'][number]): boolean {
  if (!isObject(existing)) return false;
  const text = (value: unknown) => (value === undefined || value === null ? '' : value);
  const operator = text(own(existing, 'operator'));
  return (
    text(own(existing, 'key')) === text(wanted.key) &&
    (operator === '' ? 'Equal' : operator) === wanted.operator &&
    text(own(existing, 'value')) === text(wanted.value) &&
    text(own(existing, 'effect')) === text(wanted.effect) &&
    (own(existing, 'tolerationSeconds') ?? undefined) === wanted.tolerationSeconds
  );
}
