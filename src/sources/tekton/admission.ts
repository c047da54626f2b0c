import { buildClassifier } from '../../classes/matching.ts';
import type { RunnerClass, RunnerClasses } from '../../classes/schema.ts';
import {
  ANNOTATION_ADMITTED_AT,
  ANNOTATION_CANCEL_REASON,
  ANNOTATION_CLASS,
  ANNOTATION_HELD,
  ANNOTATION_QUEUED_AT,
  LABEL_CLASS,
} from '../../model/keys.ts';
import { addPodSettings, PatchBuilder, warnTaskOverrides } from './admission-patch.ts';
import { enforcementMessage, enforcementViolations } from './admission-policy.ts';
import { type AdmissionAnswer, allow, deny, readReview } from './admission-review.ts';
import { describe, isObject, isObjectOrAbsent, type JsonObject, own, stringValues } from './json-reading.ts';
import { PENDING, TEKTON_GROUP, TEKTON_VERSION } from './pipeline-run.ts';

export type {
  AdmissionAnswer,
  AdmissionResponse,
  AdmissionReviewAnswer,
  JsonPatchOperation,
} from './admission-review.ts';

/**
 * The decision of Gantry's mutating admission webhook on Tekton PipelineRun CREATE: which class a new
 * run belongs to, whether the class refuses it, and the JSON patch that queues it (pending, stamped
 * with its queue time) and puts the class's pod settings into its pod template. Tekton freezes a run's
 * spec once it exists, pending runs included, so creation is the only moment those settings can be set.
 *
 * Pure but for the clock and the queued-at counter: the request body's text in, the answer out. The
 * envelope (admission-review.ts), the refusals of an enforcing class (admission-policy.ts) and the
 * patch (admission-patch.ts) each live apart.
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

const PIPELINE_RUN_KIND = 'PipelineRun';

export function createPipelineRunAdmission(options: AdmissionOptions): (body: string) => AdmissionAnswer {
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

  const chooseClass = (labels: Record<string, string>, namespace: string | undefined): ClassChoice => {
    const requested = Object.hasOwn(labels, LABEL_CLASS) ? (labels[LABEL_CLASS] ?? '') : undefined;
    const classification = classify({
      source: 'tekton',
      labels: [],
      untrusted: false,
      tektonLabels: labels,
      ...(namespace !== undefined ? { tektonNamespace: namespace } : {}),
      ...(requested !== undefined ? { requestedClass: requested } : {}),
    });
    if (classification.matched) {
      const runnerClass = options.classes[classification.className];
      return runnerClass ? { className: classification.className, runnerClass } : undefined;
    }
    if (requested === undefined) return undefined;
    if (classification.reason === 'namespace-not-allowed') {
      const bound = options.classes[requested]?.match.tekton?.namespaces ?? [];
      return {
        denied: `class ${requested} takes runs of namespace${bound.length > 1 ? 's' : ''} ${bound.join(', ')} only; this run is in ${describe(namespace)}`,
        code: 403,
      };
    }
    const served = tektonClasses.length > 0 ? `these do: ${tektonClasses.join(', ')}` : 'none does';
    return {
      denied: `label ${LABEL_CLASS}=${describe(requested)} names no class that takes Tekton runs; ${served}`,
      code: 400,
    };
  };

  const decide = (uid: string, request: JsonObject): AdmissionAnswer => {
    const kind = own(request, 'kind');
    if (
      own(request, 'operation') !== 'CREATE' ||
      !isObject(kind) ||
      own(kind, 'group') !== TEKTON_GROUP ||
      own(kind, 'kind') !== PIPELINE_RUN_KIND
    ) {
      return allow(uid);
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
    // The request's namespace is the apiserver's; the object's may be absent at creation.
    const requestNamespace = own(request, 'namespace');
    const namespace = typeof requestNamespace === 'string' ? requestNamespace : undefined;

    const choice = chooseClass(isObject(metadata) ? stringValues(own(metadata, 'labels')) : {}, namespace);
    if (choice === undefined) return allow(uid);
    if ('denied' in choice) return deny(uid, choice.denied, choice.code);
    const { className, runnerClass } = choice;

    // The patch paths are v1's (v1beta1 kept the pod template elsewhere); with matchPolicy Equivalent
    // the apiserver sends every run as v1, so another version means a misconfigured webhook.
    if (own(kind, 'version') !== TEKTON_VERSION) {
      const notice = `Gantry queues ${TEKTON_GROUP}/${TEKTON_VERSION} PipelineRuns only; this ${describe(own(kind, 'version'))} run`;
      if (runnerClass.enforce) {
        return deny(
          uid,
          `${notice} cannot be checked for class ${className} (the webhook needs matchPolicy Equivalent)`,
          403,
        );
      }
      return allow(uid, [], [`${notice} was not queued`]);
    }

    const status = isObject(spec) ? own(spec, 'status') : undefined;
    const queue = status === undefined || status === null || status === '';
    // Any other status (Cancelled, StoppedRunFinally, …): the run never starts, so there is nothing to hold.
    if (!queue && status !== PENDING) return allow(uid);

    if (runnerClass.enforce) {
      const violations = enforcementViolations(spec, className, runnerClass);
      if (violations.length > 0) return deny(uid, enforcementMessage(className, violations), 403);
    }
    return queueRun(uid, run, className, runnerClass, queue);
  };

  const queueRun = (
    uid: string,
    run: JsonObject,
    className: string,
    runnerClass: RunnerClass,
    queue: boolean,
  ): AdmissionAnswer => {
    const patch = new PatchBuilder(run);
    const root = patch.root();
    const annotationsTarget = patch.childObject(patch.childObject(root, 'metadata'), 'annotations');
    const setAnnotation = (key: string, value: string) => {
      if (own(annotationsTarget.object, key) !== value) patch.put(annotationsTarget, key, value);
    };
    // Gantry's annotations say where a run stands in its queue; values a user wrote would forge that.
    setAnnotation(ANNOTATION_CLASS, className);
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
    addPodSettings(patch, specTarget, className, runnerClass, warnings);
    // An enforcing class has judged the per-task templates against its settings already.
    if (!runnerClass.enforce) warnTaskOverrides(specTarget.object, className, runnerClass, warnings);
    return allow(uid, patch.operations, warnings);
  };

  return (body) => {
    const review = readReview(body);
    if (!review.ok) return deny(review.uid, review.problem);
    try {
      return decide(review.uid, review.request);
    } catch (error) {
      // A bug still gets an answer (the apiserver then applies the webhook's failurePolicy), not a crash.
      return { httpStatus: 500, body: { error: `admission failed: ${String(error)}` } };
    }
  };
}

type ClassChoice =
  | { className: string; runnerClass: RunnerClass }
  | { denied: string; code: 400 | 403 }
  | undefined;
