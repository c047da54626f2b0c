import type { RunnerClass, RunnerClasses } from '../../config/classes.ts';
import { buildClassifier } from '../../planner/classify.ts';
import {
  ANNOTATION_ADMITTED_AT,
  ANNOTATION_CANCEL_REASON,
  ANNOTATION_CLASS,
  ANNOTATION_HELD,
  ANNOTATION_QUEUED_AT,
  LABEL_CLASS,
  PENDING,
  pointerKey,
  TEKTON_GROUP,
  TEKTON_VERSION,
} from './pipeline-run.ts';

/**
 * The decision of Gantry's mutating admission webhook on Tekton PipelineRun CREATE: which class a new
 * run belongs to, and the JSON patch that queues it (pending, stamped with its queue time) and puts the
 * class's pod settings into its pod template. Tekton freezes a run's spec once it exists, pending runs
 * included, so creation is the only moment those settings can be set.
 *
 * Pure but for the clock and the queued-at counter; the HTTPS server hands it the parsed body and sends
 * back what it answers. The patch is minimal: it adds what is absent and never replaces an object the
 * user wrote, because tekton-kueue's whole-object patches leaked zero values into runs and broke
 * Tekton's own defaulting.
 *
 * Not idempotent: a run that is already pending at creation counts as held by its author, so a second
 * call on a run this webhook queued would mark it held. The webhook configuration must keep
 * reinvocationPolicy Never (the default), and match tekton.dev/v1 with matchPolicy Equivalent.
 */

export interface AdmissionOptions {
  classes: RunnerClasses;
  /** Epoch milliseconds. */
  now: () => number;
}

/** What the HTTPS server sends: the status code and the JSON body. */
export interface AdmissionAnswer {
  httpStatus: number;
  body: unknown;
}

/** The operations this webhook emits (RFC 6902). */
export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON array of operations. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReviewAnswer {
  apiVersion: typeof REVIEW_API_VERSION;
  kind: typeof REVIEW_KIND;
  response: AdmissionResponse;
}

const REVIEW_API_VERSION = 'admission.k8s.io/v1';
const REVIEW_KIND = 'AdmissionReview';
const PIPELINE_RUN_KIND = 'PipelineRun';
/** Where Tekton v1 keeps the pod template of every TaskRun of the run; named so in warnings. */
const POD_TEMPLATE = 'podTemplate';

type JsonObject = Record<string, unknown>;

export function createPipelineRunAdmission(options: AdmissionOptions): (body: unknown) => AdmissionAnswer {
  const classify = buildClassifier(options.classes);
  const tektonClasses = Object.keys(options.classes)
    .filter((name) => options.classes[name]?.match.tekton)
    .sort();

  // The class queue is first come, first served by queued-at, so two runs stamped in the same
  // millisecond (or after the clock stepped back) must still get distinct, increasing stamps: a stamp
  // is at least the last one plus 1 ms. This holds within one instance; replicas each keep their own.
  let lastStamp = Number.NEGATIVE_INFINITY;
  const nextQueuedAt = (): string => {
    const now = Math.floor(options.now());
    lastStamp = now > lastStamp ? now : lastStamp + 1;
    return new Date(lastStamp).toISOString();
  };

  const chooseClass = (labels: Record<string, string>): ClassChoice => {
    const requested = Object.hasOwn(labels, LABEL_CLASS) ? (labels[LABEL_CLASS] ?? '') : undefined;
    const classification = classify({
      source: 'tekton',
      labels: [],
      untrusted: false,
      tektonLabels: labels,
      ...(requested !== undefined ? { requestedClass: requested } : {}),
    });
    if (classification.matched) {
      const runnerClass = options.classes[classification.className];
      return runnerClass ? { className: classification.className, runnerClass } : undefined;
    }
    if (requested === undefined) return undefined;
    const served = tektonClasses.length > 0 ? `these do: ${tektonClasses.join(', ')}` : 'none does';
    return {
      denied: `label ${LABEL_CLASS}=${describe(requested)} names no class that takes Tekton runs; ${served}`,
    };
  };

  const decide = (body: unknown): AdmissionAnswer => {
    const review = parseReview(body);
    if ('error' in review) return { httpStatus: 400, body: { error: review.error } };
    const { uid, request } = review;

    const kind = own(request, 'kind');
    if (
      own(request, 'operation') !== 'CREATE' ||
      !isObject(kind) ||
      own(kind, 'group') !== TEKTON_GROUP ||
      own(kind, 'kind') !== PIPELINE_RUN_KIND
    ) {
      return allow(uid);
    }
    // The patch paths are v1's (v1beta1 kept the pod template elsewhere); with matchPolicy Equivalent
    // the apiserver sends every run as v1, so another version means a misconfigured webhook.
    if (own(kind, 'version') !== TEKTON_VERSION) {
      return allow(
        uid,
        [],
        [
          `Gantry queues ${TEKTON_GROUP}/${TEKTON_VERSION} PipelineRuns only; this ${describe(own(kind, 'version'))} run was not queued`,
        ],
      );
    }

    const run = own(request, 'object');
    if (!isObject(run)) return allow(uid);
    const metadata = own(run, 'metadata');
    const annotations = isObject(metadata) ? own(metadata, 'annotations') : undefined;
    const spec = own(run, 'spec');
    // The apiserver refuses such an object by itself; there is nothing sound to patch.
    if (!isObjectOrAbsent(metadata) || !isObjectOrAbsent(annotations) || !isObjectOrAbsent(spec)) {
      return allow(uid);
    }

    const choice = chooseClass(isObject(metadata) ? stringValues(own(metadata, 'labels')) : {});
    if (choice === undefined) return allow(uid);
    if ('denied' in choice) return deny(uid, choice.denied);

    const status = isObject(spec) ? own(spec, 'status') : undefined;
    const queue = status === undefined || status === null || status === '';
    // Any other status (Cancelled, StoppedRunFinally, …): the run never starts, so there is nothing to hold.
    if (!queue && status !== PENDING) return allow(uid);

    const patch = new PatchBuilder(run);
    const root = patch.root();
    const annotationsTarget = patch.childObject(patch.childObject(root, 'metadata'), 'annotations');
    const setAnnotation = (key: string, value: string) => {
      if (own(annotationsTarget.object, key) !== value) patch.put(annotationsTarget, key, value);
    };
    // Gantry's annotations say where a run stands in its queue; values a user wrote would forge that.
    setAnnotation(ANNOTATION_CLASS, choice.className);
    if (queue) {
      setAnnotation(ANNOTATION_QUEUED_AT, nextQueuedAt());
      patch.remove(annotationsTarget, ANNOTATION_HELD);
    } else {
      // The author holds the run on purpose (a template, a manual gate): Gantry must never release it.
      setAnnotation(ANNOTATION_HELD, 'user');
      patch.remove(annotationsTarget, ANNOTATION_QUEUED_AT);
    }
    patch.remove(annotationsTarget, ANNOTATION_ADMITTED_AT);
    patch.remove(annotationsTarget, ANNOTATION_CANCEL_REASON);

    const specTarget = patch.childObject(root, 'spec');
    if (queue) patch.put(specTarget, 'status', PENDING);

    const warnings: string[] = [];
    addPodSettings(patch, specTarget, choice.className, choice.runnerClass, warnings);
    warnTaskOverrides(specTarget.object, choice.className, choice.runnerClass, warnings);
    return allow(uid, patch.operations, warnings);
  };

  return (body) => {
    try {
      return decide(body);
    } catch (error) {
      // A bug still gets an answer (the apiserver then applies the webhook's failurePolicy), not a crash.
      return { httpStatus: 500, body: { error: `admission failed: ${String(error)}` } };
    }
  };
}

type ClassChoice = { className: string; runnerClass: RunnerClass } | { denied: string } | undefined;

// ── The review ─────────────────────────────────────────────────────────────────────────────────────

function parseReview(body: unknown): { uid: string; request: JsonObject } | { error: string } {
  if (!isObject(body)) return { error: `expected an AdmissionReview JSON object, got ${describe(body)}` };
  if (own(body, 'apiVersion') !== REVIEW_API_VERSION) {
    return {
      error: `apiVersion: expected "${REVIEW_API_VERSION}", got ${describe(own(body, 'apiVersion'))}`,
    };
  }
  if (own(body, 'kind') !== REVIEW_KIND) {
    return { error: `kind: expected "${REVIEW_KIND}", got ${describe(own(body, 'kind'))}` };
  }
  const request = own(body, 'request');
  if (!isObject(request)) return { error: `request: expected an object, got ${describe(request)}` };
  const uid = own(request, 'uid');
  if (typeof uid !== 'string' || uid === '') {
    return { error: `request.uid: expected a non-empty string, got ${describe(uid)}` };
  }
  return { uid, request };
}

function allow(uid: string, operations: JsonPatchOperation[] = [], warnings: string[] = []): AdmissionAnswer {
  const response: AdmissionResponse = { uid, allowed: true };
  if (operations.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(operations)).toString('base64');
  }
  if (warnings.length > 0) response.warnings = warnings;
  return answer(response);
}

function deny(uid: string, message: string): AdmissionAnswer {
  return answer({ uid, allowed: false, status: { code: 400, message } });
}

function answer(response: AdmissionResponse): AdmissionAnswer {
  const body: AdmissionReviewAnswer = { apiVersion: REVIEW_API_VERSION, kind: REVIEW_KIND, response };
  return { httpStatus: 200, body };
}

// ── The patch ──────────────────────────────────────────────────────────────────────────────────────

/** An object in the run at `path`; `created` when this patch adds it, so its fields go in its value. */
interface Target {
  path: string;
  object: JsonObject;
  created: boolean;
}

/**
 * Collects the operations against the run. A container the run lacks is added once, holding everything
 * later put into it; fields of a container the run has are added one by one, so nothing the user wrote
 * is replaced wholesale.
 */
class PatchBuilder {
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
 * The class's pod settings and Gantry's sandbox defaults, in spec.taskRunTemplate.podTemplate, where
 * Tekton takes them for every TaskRun pod. The user's values win; a differing one earns a warning.
 */
function addPodSettings(
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
  const target = patch.childObject(patch.childObject(spec, 'taskRunTemplate'), POD_TEMPLATE);
  const kept = (field: string, user: unknown, wanted: string) =>
    warnings.push(`${POD_TEMPLATE}.${field} ${describe(user)} kept (${wanted})`);
  const ofClass = `class ${className}`;

  for (const field of ['runtimeClassName', 'priorityClassName'] as const) {
    const wanted = runnerClass[field];
    if (wanted === undefined) continue;
    const user = own(target.object, field);
    if (isUnset(user)) patch.put(target, field, wanted);
    else if (user !== wanted) kept(field, user, `${ofClass}: ${describe(wanted)}`);
  }

  const nodeSelector = Object.entries(runnerClass.nodeSelector);
  if (nodeSelector.length > 0) {
    const user = own(target.object, 'nodeSelector');
    if (!isObjectOrAbsent(user)) {
      kept('nodeSelector', user, `${ofClass}'s not applied`);
    } else {
      const selector = patch.childObject(target, 'nodeSelector');
      for (const [key, wanted] of nodeSelector) {
        if (!Object.hasOwn(selector.object, key)) patch.put(selector, key, wanted);
        else if (selector.object[key] !== wanted) {
          kept(`nodeSelector[${describe(key)}]`, selector.object[key], `${ofClass}: ${describe(wanted)}`);
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
      kept('tolerations', user, `${ofClass}'s not applied`);
    }
  }

  if (runnerClass.affinity !== undefined) {
    const user = own(target.object, 'affinity');
    if (user === undefined || user === null)
      patch.put(target, 'affinity', structuredClone(runnerClass.affinity));
    else if (canonicalJson(user) !== canonicalJson(runnerClass.affinity)) {
      kept('affinity', user, `${ofClass}'s not applied`);
    }
  }

  // Gantry's sandbox floor for every class, as for its own runner pods (Pod Security "restricted").
  const context = own(target.object, 'securityContext');
  if (!isObjectOrAbsent(context)) {
    kept('securityContext', context, 'Gantry: runAsNonRoot, seccomp RuntimeDefault');
  } else {
    const securityContext = patch.childObject(target, 'securityContext');
    const runAsNonRoot = own(securityContext.object, 'runAsNonRoot');
    if (runAsNonRoot === undefined || runAsNonRoot === null) patch.put(securityContext, 'runAsNonRoot', true);
    else if (runAsNonRoot !== true) kept('securityContext.runAsNonRoot', runAsNonRoot, 'Gantry: true');
    const seccomp = own(securityContext.object, 'seccompProfile');
    if (seccomp === undefined || seccomp === null) {
      patch.put(securityContext, 'seccompProfile', { type: 'RuntimeDefault' });
    } else if (!isObject(seccomp) || own(seccomp, 'type') !== 'RuntimeDefault') {
      kept('securityContext.seccompProfile', seccomp, 'Gantry: RuntimeDefault');
    }
  }

  // A CI step has no business with the cluster's API unless its author says so.
  const automount = own(target.object, 'automountServiceAccountToken');
  if (automount === undefined || automount === null) patch.put(target, 'automountServiceAccountToken', false);
  else if (automount !== false) kept('automountServiceAccountToken', automount, 'Gantry: false');
}

/** Fields of a per-task pod template replace the run's for that task (Tekton merges field by field). */
function warnTaskOverrides(
  spec: JsonObject,
  className: string,
  runnerClass: RunnerClass,
  warnings: string[],
): void {
  const taskRunSpecs = own(spec, 'taskRunSpecs');
  if (!Array.isArray(taskRunSpecs)) return;
  const managed = [
    ...(runnerClass.runtimeClassName !== undefined ? ['runtimeClassName'] : []),
    ...(runnerClass.priorityClassName !== undefined ? ['priorityClassName'] : []),
    ...(Object.keys(runnerClass.nodeSelector).length > 0 ? ['nodeSelector'] : []),
    ...(runnerClass.tolerations.length > 0 ? ['tolerations'] : []),
    ...(runnerClass.affinity !== undefined ? ['affinity'] : []),
    'securityContext',
    'automountServiceAccountToken',
  ];
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

/** Kubernetes treats an empty operator as Equal and absent strings as empty. */
function sameToleration(existing: unknown, wanted: RunnerClass['tolerations'][number]): boolean {
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

// ── Reading untrusted JSON ─────────────────────────────────────────────────────────────────────────

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isObjectOrAbsent(value: unknown): boolean {
  return value === undefined || value === null || isObject(value);
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A field of the object itself, never one inherited (`constructor`, `__proto__`, …). */
function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** The string-valued entries of a label map; the apiserver refuses any other value later. */
function stringValues(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const labels: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'string') labels[key] = entry;
  }
  return labels;
}

/** Keys sorted, so that equal JSON compares equal whatever order it was written in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A value for a message: short (warnings over 120 characters may be cut), quoted when a string. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 39)}…` : value);
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}
