import type { JobOrigin } from '../model/job.ts';
import type { ClassifiableJob } from '../model/ledger-snapshot.ts';
import { isSandboxTier, type RunnerClass, type RunnerClasses, type TektonSelector } from './schema.ts';

/**
 * Which runner class a job belongs to: exactly one class, or a reason it has none.
 *
 * GitHub: a class matches when every `runs-on` label of the job is among the class's labels
 * (case-insensitive). Of several matches the most specific wins, the one with the fewest labels the
 * job did not ask for; ties go to the first name in alphabetical order.
 *
 * Tekton: a class matches when its selector selects the PipelineRun's labels. Of several matches the
 * one with the most requirements wins; ties go to the first name. A class bound to namespaces
 * selects only runs of those. A run that names its class (`requestedClass`) gets that class when the
 * class serves Tekton in the run's namespace, and no class otherwise.
 *
 * GitHub scale sets: a job a class's scale set took names that class (`requestedClass`); it gets the
 * class unless its trust forbids (see below), whatever its labels.
 *
 * Trust: an untrusted job (see the GitHub trust policy) may only go to a class marked `untrusted`, and
 * only if that class matches it like any other job; trusted jobs never go to those classes. So an
 * untrusted class may repeat a trusted class's labels and still be unambiguous. A trusted-only class
 * takes only the trusted jobs its allowed events and refs admit.
 *
 * This decides what Gantry plans. GitHub decides which runner takes a job (any idle one whose labels
 * and runner group fit), so `checkRunnerTrust` judges, when a job starts, whether the runner that took
 * it was one the job may use.
 */

export type UnmatchedReason =
  /** No class (of the job's trust) matches its labels. */
  | 'no-matching-class'
  /** An untrusted job whose labels match trusted-only classes and nothing it may use. */
  | 'untrusted-trusted-only'
  /** An untrusted job the untrusted class does not match, or there is no untrusted class. */
  | 'untrusted-no-class'
  /** The job names a class that does not exist or does not serve its source. */
  | 'unknown-class'
  /** A PipelineRun names a Tekton class bound to namespaces other than the run's. */
  | 'namespace-not-allowed'
  /** A trusted job whose labels match only trusted-only classes whose events or refs exclude it. */
  | 'not-allowed-on-trusted-only';

export type Classification =
  | { matched: true; className: string }
  | { matched: false; reason: UnmatchedReason };

export type Classifier = (job: ClassifiableJob) => Classification;

/** The part of the GitHub trust policy the classes' rules need. */
export interface ClassTrustPolicy {
  /** Events whose runs never get trusted-only runners (unless a class lists its own allowedEvents). */
  trustedOnlyDeniedEvents: readonly string[];
}

const NO_DENIED_EVENTS: ClassTrustPolicy = { trustedOnlyDeniedEvents: [] };

interface Candidate {
  name: string;
  untrusted: boolean;
  /** Untrusted, or a trusted class isolated as if it were (sandboxed). */
  sandboxTier: boolean;
  trustedOnly: boolean;
  /** For trusted-only classes: whether a trusted job's origin is one the class admits. */
  admits: (job: ClassifiableJob) => boolean;
  githubLabels?: ReadonlySet<string>;
  tekton?: TektonSelector;
  tektonRequirements: number;
}

/** Whether a Tekton class takes runs of the job's namespace (a class bound to none takes any). */
function takesNamespace(selector: TektonSelector, job: ClassifiableJob): boolean {
  if (selector.namespaces.length === 0) return true;
  return job.tektonNamespace !== undefined && selector.namespaces.includes(job.tektonNamespace);
}

/** Prepares the classes once, so classifying many jobs does not redo the label work. */
export function buildClassifier(classes: RunnerClasses, policy = NO_DENIED_EVENTS): Classifier {
  const candidates: Candidate[] = Object.keys(classes)
    .sort()
    .flatMap((name) => {
      const runnerClass = classes[name];
      if (!runnerClass) return [];
      const { github, tekton } = runnerClass.match;
      return [
        {
          name,
          untrusted: runnerClass.untrusted,
          sandboxTier: isSandboxTier(runnerClass),
          trustedOnly: runnerClass.trustedOnly,
          admits: trustedOnlyAdmission(runnerClass, policy),
          ...(github ? { githubLabels: new Set(github.labels.map((label) => label.toLowerCase())) } : {}),
          ...(tekton ? { tekton } : {}),
          // Being bound to namespaces makes a class more specific, like one more requirement.
          tektonRequirements: tekton
            ? Object.keys(tekton.matchLabels).length +
              tekton.matchExpressions.length +
              (tekton.namespaces.length > 0 ? 1 : 0)
            : 0,
        },
      ];
    });

  return (job) => {
    if (job.requestedClass !== undefined) {
      const named = candidates.find((c) => c.name === job.requestedClass);
      const serves = job.source === 'github' ? named?.githubLabels : named?.tekton;
      if (!serves) return { matched: false, reason: 'unknown-class' };
      if (job.source === 'tekton' && named?.tekton && !takesNamespace(named.tekton, job)) {
        return { matched: false, reason: 'namespace-not-allowed' };
      }
      if (job.source === 'github' && named) {
        // A runner scale set took the job: only the class's runners can run it, so only trust keeps it
        // from the class. An untrusted job gets the sandbox tier alone; a trusted job gets a trusted-only
        // class when its origin is one the class admits, and any other class (an untrusted class's
        // runner is counted as a trusted job on it, not stopped).
        if (job.untrusted && !named.sandboxTier) {
          return {
            matched: false,
            reason: named.trustedOnly ? 'untrusted-trusted-only' : 'untrusted-no-class',
          };
        }
        if (!job.untrusted && named.trustedOnly && !named.admits(job)) {
          return { matched: false, reason: 'not-allowed-on-trusted-only' };
        }
      }
      return { matched: true, className: job.requestedClass };
    }
    const matches = matchingClasses(candidates, job);
    const best = (pool: Candidate[]) => mostSpecific(pool, job);
    if (!job.untrusted) {
      const trusted = matches.filter((c) => !c.untrusted);
      const chosen = best(trusted.filter((c) => !c.trustedOnly || c.admits(job)));
      if (chosen) return { matched: true, className: chosen.name };
      return {
        matched: false,
        reason: trusted.length > 0 ? 'not-allowed-on-trusted-only' : 'no-matching-class',
      };
    }
    const chosen = best(matches.filter((c) => c.untrusted));
    if (chosen) return { matched: true, className: chosen.name };
    const trusted = matches.filter((c) => !c.untrusted);
    if (trusted.length > 0 && trusted.every((c) => c.trustedOnly)) {
      return { matched: false, reason: 'untrusted-trusted-only' };
    }
    return { matched: false, reason: 'untrusted-no-class' };
  };
}

/**
 * Whether some class, of either trust, could take a GitHub job asking for these labels: the labels
 * alone decide that, before the job's origin is known.
 */
export function buildServableCheck(classes: RunnerClasses): (labels: readonly string[]) => boolean {
  const sets = Object.values(classes).flatMap((runnerClass) =>
    runnerClass.match.github ? [new Set(runnerClass.match.github.labels.map((l) => l.toLowerCase()))] : [],
  );
  return (labels) => {
    const wanted = labels.map((label) => label.toLowerCase());
    return wanted.length > 0 && sets.some((set) => wanted.every((label) => set.has(label)));
  };
}

/** One-off classification; prefer `buildClassifier` for many jobs. */
export function classifyJob(
  job: ClassifiableJob,
  classes: RunnerClasses,
  policy = NO_DENIED_EVENTS,
): Classification {
  return buildClassifier(classes, policy)(job);
}

/** Whether a trusted job may use a trusted-only class: its run's event and ref are ones the class admits. */
function trustedOnlyAdmission(
  runnerClass: RunnerClass,
  policy: ClassTrustPolicy,
): (job: ClassifiableJob) => boolean {
  if (!runnerClass.trustedOnly) return () => true;
  const { allowedEvents, allowedRefs } = runnerClass;
  const refPatterns = allowedRefs.map(globPattern);
  return (job) => {
    // Tekton runs carry no GitHub origin; their classes are chosen by their own selectors.
    if (job.source !== 'github') return true;
    const origin = job.origin;
    if (!origin) return false;
    const eventAllowed =
      allowedEvents.length > 0
        ? allowedEvents.includes(origin.event)
        : !policy.trustedOnlyDeniedEvents.includes(origin.event);
    if (!eventAllowed) return false;
    if (refPatterns.length === 0) return true;
    return refsOf(origin).some((ref) => refPatterns.some((pattern) => pattern.test(ref)));
  };
}

/**
 * The refs a run may be for. GitHub reports a branch or tag name (`head_branch`) without saying which:
 * a release is for a tag, a pull-request run for a merge ref that no branch or tag pattern names.
 */
function refsOf(origin: JobOrigin): string[] {
  const name = origin.headBranch;
  if (!name || origin.event.startsWith('pull_request')) return [];
  if (origin.event === 'release') return [`refs/tags/${name}`];
  return [`refs/heads/${name}`, `refs/tags/${name}`];
}

/** `*` matches any text; everything else literally. */
function globPattern(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

/** How a runner that took a job relates to the job's trust. */
export type RunnerTrustVerdict =
  | { ok: true }
  | {
      ok: false;
      /**
       * - untrusted-job: an untrusted job on a trusted class's runner;
       * - not-allowed: a job a trusted-only class's events or refs exclude, on that class's runner;
       * - trusted-job: a trusted job on an untrusted class's runner.
       */
      kind: 'untrusted-job' | 'not-allowed' | 'trusted-job';
      /** Whether the runner must be stopped: trusted credentials or caches are within the job's reach. */
      contain: boolean;
    };

export type RunnerTrustCheck = (job: ClassifiableJob, className: string) => RunnerTrustVerdict;

/**
 * Judges the runner GitHub gave a job. An untrusted job on a trusted runner, or a job a trusted-only
 * class does not admit on that class's runner, must be contained; a sandboxed class accepts untrusted
 * jobs by design (counted, not stopped), and a trusted job on an untrusted runner is only counted.
 */
export function buildRunnerTrustCheck(classes: RunnerClasses, policy = NO_DENIED_EVENTS): RunnerTrustCheck {
  const admissions = new Map(
    Object.entries(classes).map(([name, runnerClass]) => [name, trustedOnlyAdmission(runnerClass, policy)]),
  );
  return (job, className) => {
    const runnerClass = classes[className];
    if (!runnerClass) return { ok: true };
    if (runnerClass.untrusted) {
      return job.untrusted ? { ok: true } : { ok: false, kind: 'trusted-job', contain: false };
    }
    if (job.untrusted) return { ok: false, kind: 'untrusted-job', contain: !isSandboxTier(runnerClass) };
    if (!(admissions.get(className)?.(job) ?? true)) return { ok: false, kind: 'not-allowed', contain: true };
    return { ok: true };
  };
}

function matchingClasses(candidates: Candidate[], job: ClassifiableJob): Candidate[] {
  if (job.source === 'github') {
    const wanted = job.labels.map((label) => label.toLowerCase());
    // A job that names no label cannot say which class it wants.
    if (wanted.length === 0) return [];
    return candidates.filter((c) => c.githubLabels && wanted.every((label) => c.githubLabels?.has(label)));
  }
  const labels = job.tektonLabels ?? {};
  return candidates.filter((c) => c.tekton && takesNamespace(c.tekton, job) && selects(c.tekton, labels));
}

function mostSpecific(pool: Candidate[], job: ClassifiableJob): Candidate | undefined {
  // `pool` is in name order, so keeping the first of equals is the alphabetical tie-break.
  let best: Candidate | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  const asked = new Set(job.labels.map((label) => label.toLowerCase())).size;
  for (const candidate of pool) {
    const score =
      job.source === 'github' ? (candidate.githubLabels?.size ?? 0) - asked : -candidate.tektonRequirements;
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** Kubernetes label-selector semantics (NotIn also matches when the key is absent). */
export function selects(selector: TektonSelector, labels: Readonly<Record<string, string>>): boolean {
  const labelValue = (key: string) => (Object.hasOwn(labels, key) ? labels[key] : undefined);
  for (const [key, value] of Object.entries(selector.matchLabels)) {
    if (labelValue(key) !== value) return false;
  }
  for (const { key, operator, values } of selector.matchExpressions) {
    const value = labelValue(key);
    switch (operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}
