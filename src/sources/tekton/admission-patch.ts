import { SANDBOX_FLOOR } from '../../classes/sandbox.ts';
import type { RunnerClass } from '../../classes/schema.ts';
import type { JsonPatchOperation } from './admission-review.ts';
import {
  canonicalJson,
  describe,
  isObject,
  isObjectOrAbsent,
  isUnset,
  type JsonObject,
  own,
} from './json-reading.ts';
import { pointerKey } from './pipeline-run.ts';
import { classManagedFields, POD_TEMPLATE, sameToleration } from './pod-settings.ts';

/**
 * The JSON patch that puts a class's pod settings into a new run. Minimal: it adds what is absent and
 * never replaces an object the author wrote, because tekton-kueue's whole-object patches leaked zero
 * values into runs and broke Tekton's own defaulting. Values the author set are kept, with a warning
 * where they differ (an enforcing class has refused such a run before this runs).
 */

/** An object in the run at `path`; `created` when this patch adds it, so its fields go in its value. */
export interface Target {
  path: string;
  object: JsonObject;
  created: boolean;
}

/**
 * Collects the operations against the run. A container the run lacks is added once, holding everything
 * later put into it; fields of a container the run has are added one by one, so nothing the user wrote
 * is replaced wholesale.
 */
export class PatchBuilder {
  readonly operations: JsonPatchOperation[] = [];
  readonly #run: JsonObject;

  constructor(run: JsonObject) {
    this.#run = run;
  }

  root(): Target {
    return { path: '', object: this.#run, created: false };
  }

  /** The object at `key`, added empty when absent (or null). Callers checked it is not something else. */
  childObject(parent: Target, key: string): Target {
    const value = own(parent.object, key);
    const path = `${parent.path}/${pointerKey(key)}`;
    if (isObject(value)) return { path, object: value, created: parent.created };
    const object: JsonObject = {};
    this.put(parent, key, object);
    return { path, object, created: true };
  }

  /** Sets a field; on the user's objects only ever a field that is absent or holds no object. */
  put(target: Target, key: string, value: unknown): void {
    if (target.created) {
      target.object[key] = value;
      return;
    }
    const op = Object.hasOwn(target.object, key) ? 'replace' : 'add';
    this.operations.push({ op, path: `${target.path}/${pointerKey(key)}`, value });
  }

  remove(target: Target, key: string): void {
    if (!Object.hasOwn(target.object, key)) return;
    if (target.created) delete target.object[key];
    else this.operations.push({ op: 'remove', path: `${target.path}/${pointerKey(key)}` });
  }

  append(target: Target, key: string, value: unknown): void {
    this.operations.push({ op: 'add', path: `${target.path}/${pointerKey(key)}/-`, value });
  }
}

/**
 * The class's pod settings and Gantry's floor, in spec.taskRunTemplate, where Tekton takes them for
 * every TaskRun pod. The user's values win; a differing one earns a warning.
 */
export function addPodSettings(
  patch: PatchBuilder,
  spec: Target,
  className: string,
  runnerClass: RunnerClass,
  warnings: string[],
): void {
  const template = own(spec.object, 'taskRunTemplate');
  const pod = isObject(template) ? own(template, POD_TEMPLATE) : undefined;
  if (!isObjectOrAbsent(template) || !isObjectOrAbsent(pod)) {
    warnings.push(
      `spec.taskRunTemplate.${POD_TEMPLATE} is not an object; class ${className}'s pod settings not applied`,
    );
    return;
  }
  const taskRunTemplate = patch.childObject(spec, 'taskRunTemplate');
  const kept = (field: string, user: unknown, wanted: string) =>
    warnings.push(`${field} ${describe(user)} kept (${wanted})`);
  const ofClass = `class ${className}`;

  // Set before Tekton's own defaulting, which fills in default-service-account only when none is named.
  if (runnerClass.serviceAccountName !== undefined) {
    const user = own(taskRunTemplate.object, 'serviceAccountName');
    if (isUnset(user)) patch.put(taskRunTemplate, 'serviceAccountName', runnerClass.serviceAccountName);
    else if (user !== runnerClass.serviceAccountName) {
      kept(
        'taskRunTemplate.serviceAccountName',
        user,
        `${ofClass}: ${describe(runnerClass.serviceAccountName)}`,
      );
    }
  }

  const target = patch.childObject(taskRunTemplate, POD_TEMPLATE);
  const keptInPod = (field: string, user: unknown, wanted: string) =>
    kept(`${POD_TEMPLATE}.${field}`, user, wanted);

  for (const field of ['runtimeClassName', 'priorityClassName'] as const) {
    const wanted = runnerClass[field];
    if (wanted === undefined) continue;
    const user = own(target.object, field);
    if (isUnset(user)) patch.put(target, field, wanted);
    else if (user !== wanted) keptInPod(field, user, `${ofClass}: ${describe(wanted)}`);
  }

  const nodeSelector = Object.entries(runnerClass.nodeSelector);
  if (nodeSelector.length > 0) {
    const user = own(target.object, 'nodeSelector');
    if (!isObjectOrAbsent(user)) {
      keptInPod('nodeSelector', user, `${ofClass}'s not applied`);
    } else {
      const selector = patch.childObject(target, 'nodeSelector');
      for (const [key, wanted] of nodeSelector) {
        if (!Object.hasOwn(selector.object, key)) patch.put(selector, key, wanted);
        else if (selector.object[key] !== wanted) {
          keptInPod(
            `nodeSelector[${describe(key)}]`,
            selector.object[key],
            `${ofClass}: ${describe(wanted)}`,
          );
        }
      }
    }
  }

  if (runnerClass.tolerations.length > 0) {
    const user = own(target.object, 'tolerations');
    if (user === undefined || user === null) {
      patch.put(target, 'tolerations', structuredClone(runnerClass.tolerations));
    } else if (Array.isArray(user)) {
      for (const toleration of runnerClass.tolerations) {
        if (!user.some((existing) => sameToleration(existing, toleration))) {
          patch.append(target, 'tolerations', structuredClone(toleration));
        }
      }
    } else {
      keptInPod('tolerations', user, `${ofClass}'s not applied`);
    }
  }

  if (runnerClass.affinity !== undefined) {
    const user = own(target.object, 'affinity');
    if (user === undefined || user === null)
      patch.put(target, 'affinity', structuredClone(runnerClass.affinity));
    else if (canonicalJson(user) !== canonicalJson(runnerClass.affinity)) {
      keptInPod('affinity', user, `${ofClass}'s not applied`);
    }
  }

  const context = own(target.object, 'securityContext');
  if (!isObjectOrAbsent(context)) {
    keptInPod('securityContext', context, 'Gantry: runAsNonRoot, seccomp RuntimeDefault');
  } else {
    const securityContext = patch.childObject(target, 'securityContext');
    const runAsNonRoot = own(securityContext.object, 'runAsNonRoot');
    if (runAsNonRoot === undefined || runAsNonRoot === null) {
      patch.put(securityContext, 'runAsNonRoot', SANDBOX_FLOOR.runAsNonRoot);
    } else if (runAsNonRoot !== SANDBOX_FLOOR.runAsNonRoot) {
      keptInPod('securityContext.runAsNonRoot', runAsNonRoot, 'Gantry: true');
    }
    const seccomp = own(securityContext.object, 'seccompProfile');
    if (seccomp === undefined || seccomp === null) {
      patch.put(securityContext, 'seccompProfile', { ...SANDBOX_FLOOR.seccompProfile });
    } else if (!isObject(seccomp) || own(seccomp, 'type') !== SANDBOX_FLOOR.seccompProfile.type) {
      keptInPod('securityContext.seccompProfile', seccomp, 'Gantry: RuntimeDefault');
    }
  }

  // A CI step has no business with the cluster's API unless its author says so.
  const automount = own(target.object, 'automountServiceAccountToken');
  if (automount === undefined || automount === null) {
    patch.put(target, 'automountServiceAccountToken', SANDBOX_FLOOR.automountServiceAccountToken);
  } else if (automount !== SANDBOX_FLOOR.automountServiceAccountToken) {
    keptInPod('automountServiceAccountToken', automount, 'Gantry: false');
  }
}

/** Fields of a per-task pod template replace the run's for that task (Tekton merges field by field). */
export function warnTaskOverrides(
  spec: JsonObject,
  className: string,
  runnerClass: RunnerClass,
  warnings: string[],
): void {
  const taskRunSpecs = own(spec, 'taskRunSpecs');
  if (!Array.isArray(taskRunSpecs)) return;
  const managed = classManagedFields(runnerClass);
  taskRunSpecs.forEach((taskRunSpec, index) => {
    const pod = isObject(taskRunSpec) ? own(taskRunSpec, POD_TEMPLATE) : undefined;
    if (!isObject(pod)) return;
    const overridden = managed.filter((field) => !isUnset(own(pod, field)));
    if (overridden.length === 0) return;
    const task = isObject(taskRunSpec) ? own(taskRunSpec, 'pipelineTaskName') : undefined;
    warnings.push(
      `taskRunSpecs[${index}].${POD_TEMPLATE} (task ${describe(task)}) sets ${overridden.join(', ')}: ` +
        `these replace class ${className}'s for that task`,
    );
  });
}
