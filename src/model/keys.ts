/**
 * Every label and annotation key Gantry reads or writes, and the values it stamps: one place to see
 * what Gantry puts on objects. The managed-by and component labels let it find every runner pod (and
 * its Secret) again after a restart.
 */

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const MANAGED_BY_GANTRY = 'gantry';
export const COMPONENT_RUNNER = 'runner';
export const COMPONENT_JIT_CONFIG = 'runner-jit-config';

/** Label selector for every runner pod Gantry manages. */
export const RUNNER_POD_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_GANTRY},${LABEL_COMPONENT}=${COMPONENT_RUNNER}`;
/** Label selector for every JIT config secret Gantry manages. */
export const JIT_CONFIG_SECRET_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_GANTRY},${LABEL_COMPONENT}=${COMPONENT_JIT_CONFIG}`;

/** Every key under it is Gantry's: a class may not set such pod labels. */
export const RESERVED_KEY_PREFIX = 'gantry.dev/';

/** A runner pod's class; on a PipelineRun, the class its author asks for by name. */
export const LABEL_CLASS = 'gantry.dev/class';
export const LABEL_SOURCE = 'gantry.dev/source';
/** Sanitised (`owner_name`); the exact repository is in ANNOTATION_REPO. */
export const LABEL_REPO = 'gantry.dev/repo';
/** Sanitised job key of the job the runner was planned for; the exact key is in ANNOTATION_JOB. */
export const LABEL_JOB = 'gantry.dev/job';
/** On a JIT config secret: the runner pod it belongs to. */
export const LABEL_RUNNER = 'gantry.dev/runner';

export const ANNOTATION_REPO = 'gantry.dev/repo';
export const ANNOTATION_JOB = 'gantry.dev/job';
export const ANNOTATION_NAME_SEED = 'gantry.dev/name-seed';

/** The class the admission webhook put a PipelineRun in. */
export const ANNOTATION_CLASS = 'gantry.dev/class';
/** When the webhook queued the run (RFC 3339 with milliseconds); absent on runs Gantry does not hold. */
export const ANNOTATION_QUEUED_AT = 'gantry.dev/queued-at';
/** When Gantry let the run start. */
export const ANNOTATION_ADMITTED_AT = 'gantry.dev/admitted-at';
/** `user`: the run was created pending by its author; Gantry never releases it. */
export const ANNOTATION_HELD = 'gantry.dev/held';
/** Why Gantry cancelled a queued run, e.g. `max-queue-age`. */
export const ANNOTATION_CANCEL_REASON = 'gantry.dev/cancel-reason';

/** On the Lease: the URL its holder serves webhooks on, for followers to forward deliveries to. */
export const LEADER_URL_ANNOTATION = 'gantry.dev/leader-url';

/** The annotations that keep node autoscalers from removing a node under a running runner. */
export const DO_NOT_DISRUPT_ANNOTATIONS: Readonly<Record<string, string>> = {
  'karpenter.sh/do-not-disrupt': 'true',
  'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
};
