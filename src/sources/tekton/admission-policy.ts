import { SANDBOX_FLOOR } from '../../classes/sandbox.ts';
import type { RunnerClass } from '../../classes/schema.ts';
import {
  arrayAt,
  canonicalJson,
  describe,
  isObject,
  isObjectOrAbsent,
  isUnset,
  own,
  ownPath,
} from './json-reading.ts';
import { POD_TEMPLATE, sameToleration } from './pod-settings.ts';

/**
 * What a class with `enforce: true` refuses in a new PipelineRun (tekton.dev/v1), as messages that
 * name the field by its path in the run. Pure: the run's spec and the class in, the reasons out.
 *
 * Judged: the run's pod template (spec.taskRunTemplate) and every per-task one (spec.taskRunSpecs[])
 * against the class's settings and Gantry's floor; and the containers of every Task embedded in the
 * run (pipelineSpec.tasks[] and finally[], their taskSpec's steps, sidecars and stepTemplate, nested
 * pipelineSpecs too), whose own securityContext wins over the pod's. Not judged, because it is not in
 * the run: Tasks and Pipelines it references (taskRef, pipelineRef, resolvers, StepActions). Pod
 * Security on the namespace is what refuses their pods.
 */
export function enforcementViolations(spec: unknown, className: string, runnerClass: RunnerClass): string[] {
  if (!isObjectOrAbsent(spec)) return ['spec: expected an object'];
  const judge: Judge = { ofClass: `class ${className}'s`, runnerClass, found: [] };
  const template = ownPath(spec, 'taskRunTemplate');
  if (!isObjectOrAbsent(template)) judge.found.push('spec.taskRunTemplate: expected an object');
  checkServiceAccount(judge, ownPath(template, 'serviceAccountName'), 'spec.taskRunTemplate');
  checkPodTemplate(judge, ownPath(template, POD_TEMPLATE), `spec.taskRunTemplate.${POD_TEMPLATE}`, false);

  arrayAt(spec, 'taskRunSpecs').forEach((taskRunSpec, index) => {
    const where = `spec.taskRunSpecs[${index}]`;
    checkServiceAccount(judge, ownPath(taskRunSpec, 'serviceAccountName'), where);
    checkPodTemplate(judge, ownPath(taskRunSpec, POD_TEMPLATE), `${where}.${POD_TEMPLATE}`, true);
  });

  checkPipelineSpec(judge, ownPath(spec, 'pipelineSpec'), 'spec.pipelineSpec', 0);
  return judge.found;
}

/** The reasons as one message, the first few in full (an apiserver error should stay readable). */
export function enforcementMessage(className: string, violations: readonly string[]): string {
  const shown = violations.slice(0, MAX_REASONS_SHOWN);
  const more = violations.length - shown.length;
  return `class ${className} enforces its pod settings: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

const MAX_REASONS_SHOWN = 8;
/** Pipelines embedded in pipelines (an alpha feature) rarely nest; deeper ones are refused unread. */
const MAX_PIPELINE_NESTING = 8;

interface Judge {
  /** "class <name>'s", for messages. */
  ofClass: string;
  runnerClass: RunnerClass;
  found: string[];
}

const unset = (value: unknown) => value === undefined || value === null;

function checkServiceAccount(judge: Judge, value: unknown, where: string): void {
  const wanted = judge.runnerClass.serviceAccountName;
  if (wanted === undefined || isUnset(value) || value === wanted) return;
  judge.found.push(
    `${where}.serviceAccountName ${describe(value)} is not ${judge.ofClass} ${describe(wanted)}`,
  );
}

/**
 * One pod template. The run's gets Gantry's patch, which fills in what it leaves out. A task's
 * (`replaces`) goes through Tekton's merge instead (MergePodTemplateWithDefault), where a
 * nodeSelector, affinity or securityContext it sets replaces the run's whole: those must carry the
 * class's values and Gantry's floor themselves.
 */
function checkPodTemplate(judge: Judge, pod: unknown, where: string, replaces: boolean): void {
  if (unset(pod)) return;
  if (!isObject(pod)) {
    judge.found.push(`${where}: expected an object`);
    return;
  }
  const { ofClass, runnerClass, found } = judge;
  for (const field of ['runtimeClassName', 'priorityClassName'] as const) {
    const wanted = runnerClass[field];
    const user = own(pod, field);
    if (wanted !== undefined && !isUnset(user) && user !== wanted) {
      found.push(`${where}.${field} ${describe(user)} is not ${ofClass} ${describe(wanted)}`);
    }
  }

  const nodeSelector = own(pod, 'nodeSelector');
  if (!isObjectOrAbsent(nodeSelector)) found.push(`${where}.nodeSelector: expected an object`);
  else if (isObject(nodeSelector)) {
    for (const [key, wanted] of Object.entries(runnerClass.nodeSelector)) {
      const user = own(nodeSelector, key);
      if (user === undefined && replaces) {
        found.push(
          `${where}.nodeSelector replaces the run's and lacks ${ofClass} ${key}=${describe(wanted)}`,
        );
      } else if (user !== undefined && user !== wanted) {
        found.push(
          `${where}.nodeSelector[${describe(key)}] ${describe(user)} is not ${ofClass} ${describe(wanted)}`,
        );
      }
    }
  }

  // A toleration lets pods onto nodes tainted for others: only the class's own are allowed.
  const tolerations = own(pod, 'tolerations');
  if (!unset(tolerations) && !Array.isArray(tolerations)) found.push(`${where}.tolerations: expected a list`);
  else if (Array.isArray(tolerations)) {
    tolerations.forEach((toleration: unknown, index: number) => {
      if (runnerClass.tolerations.some((wanted) => sameToleration(toleration, wanted))) return;
      const key = ownPath(toleration, 'key') ?? '';
      found.push(
        `${where}.tolerations[${index}] (key ${describe(key)}) is not one of ${ofClass} tolerations`,
      );
    });
  }

  const affinity = own(pod, 'affinity');
  if (
    runnerClass.affinity !== undefined &&
    !unset(affinity) &&
    canonicalJson(affinity) !== canonicalJson(runnerClass.affinity)
  ) {
    found.push(`${where}.affinity differs from ${ofClass}`);
  }

  const context = own(pod, 'securityContext');
  if (!isObjectOrAbsent(context)) found.push(`${where}.securityContext: expected an object`);
  else if (isObject(context)) {
    const runAsNonRoot = own(context, 'runAsNonRoot');
    if (unset(runAsNonRoot) ? replaces : runAsNonRoot !== SANDBOX_FLOOR.runAsNonRoot) {
      found.push(`${where}.securityContext.runAsNonRoot ${describe(runAsNonRoot)}: Gantry requires true`);
    }
    if (own(context, 'runAsUser') === 0) found.push(`${where}.securityContext.runAsUser 0 runs as root`);
    const seccomp = own(context, 'seccompProfile');
    const seccompType = ownPath(seccomp, 'type');
    if (unset(seccomp) ? replaces : seccompType !== SANDBOX_FLOOR.seccompProfile.type) {
      const shown = typeof seccompType === 'string' ? seccompType : seccomp;
      found.push(
        `${where}.securityContext.seccompProfile ${describe(shown)}: Gantry requires RuntimeDefault`,
      );
    }
  }

  const automount = own(pod, 'automountServiceAccountToken');
  if (!unset(automount) && automount !== SANDBOX_FLOOR.automountServiceAccountToken) {
    found.push(`${where}.automountServiceAccountToken ${describe(automount)}: Gantry requires false`);
  }

  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (own(pod, field) === true) found.push(`${where}.${field} true shares the node's namespaces`);
  }
  checkVolumes(judge, own(pod, 'volumes'), `${where}.volumes`);
}

function checkVolumes(judge: Judge, volumes: unknown, where: string): void {
  if (!Array.isArray(volumes)) return;
  volumes.forEach((volume: unknown, index: number) => {
    if (isObject(volume) && !isUnset(own(volume, 'hostPath'))) {
      judge.found.push(`${where}[${index}] (${describe(own(volume, 'name'))}) is a hostPath volume`);
    }
  });
}

function checkPipelineSpec(judge: Judge, pipelineSpec: unknown, where: string, nesting: number): void {
  if (!isObject(pipelineSpec)) return;
  if (nesting >= MAX_PIPELINE_NESTING) {
    judge.found.push(`${where}: pipelines nested more than ${MAX_PIPELINE_NESTING} deep are not checked`);
    return;
  }
  for (const list of ['tasks', 'finally'] as const) {
    arrayAt(pipelineSpec, list).forEach((task: unknown, index: number) => {
      const at = `${where}.${list}[${index}]`;
      checkTaskSpec(judge, ownPath(task, 'taskSpec'), `${at}.taskSpec`);
      checkPipelineSpec(judge, ownPath(task, 'pipelineSpec'), `${at}.pipelineSpec`, nesting + 1);
    });
  }
}

/** An embedded Task (a custom task's spec, with apiVersion and kind, has no steps to judge). */
function checkTaskSpec(judge: Judge, taskSpec: unknown, where: string): void {
  if (!isObject(taskSpec)) return;
  for (const list of ['steps', 'sidecars'] as const) {
    arrayAt(taskSpec, list).forEach((container: unknown, index: number) => {
      checkContainer(judge, container, `${where}.${list}[${index}]`);
    });
  }
  checkContainer(judge, own(taskSpec, 'stepTemplate'), `${where}.stepTemplate`);
  checkVolumes(judge, own(taskSpec, 'volumes'), `${where}.volumes`);
}

/** A container's own securityContext wins over the pod's: it must not undo Gantry's floor. */
function checkContainer(judge: Judge, container: unknown, where: string): void {
  const context = ownPath(container, 'securityContext');
  if (!isObject(context)) return;
  const at = `${where}.securityContext`;
  const { found } = judge;
  if (own(context, 'privileged') === true) found.push(`${at}.privileged true`);
  const added = ownPath(context, 'capabilities', 'add');
  if (Array.isArray(added) && added.length > 0) {
    const shown = added.slice(0, 3).map(describe).join(', ');
    found.push(`${at}.capabilities.add ${shown}${added.length > 3 ? ', …' : ''}`);
  }
  if (own(context, 'runAsUser') === 0) found.push(`${at}.runAsUser 0 runs as root`);
  if (own(context, 'runAsNonRoot') === false) found.push(`${at}.runAsNonRoot false`);
  if (ownPath(context, 'seccompProfile', 'type') === 'Unconfined')
    found.push(`${at}.seccompProfile Unconfined`);
}
