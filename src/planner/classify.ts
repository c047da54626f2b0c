import type { RunnerClasses, TektonSelector } from '../config/classes.ts';
import type { ClassifiableJob } from '../model/ledger-snapshot.ts';

/**
 * Which runner class a job belongs to: exactly one class, or a reason it has none.
 *
 * GitHub: a class matches when every `runs-on` label of the job is among the class's labels
 * (case-insensitive). Of several matches the most specific wins, the one with the fewest labels the
 * job did not ask for; ties go to the first name in alphabetical order.
 *
 * Tekton: a class matches when its selector selects the PipelineRun's labels. Of several matches the
 * one with the most requirements wins; ties go to the first name. A run that names its class
 * (`requestedClass`) gets that class when the class serves Tekton, and no class otherwise.
 *
 * Trust: an untrusted job (fork pull request) may only go to the class marked `untrusted`, and only if
 * that class matches it like any other job; trusted jobs never go to that class. So the untrusted
 * class may repeat a trusted class's labels and still be unambiguous.
 */

export type UnmatchedReason =
  /** No class (of the job's trust) matches its labels. */
  | 'no-matching-class'
  /** An untrusted job whose labels match trusted-only classes and nothing it may use. */
  | 'untrusted-trusted-only'
  /** An untrusted job the untrusted class does not match, or there is no untrusted class. */
  | 'untrusted-no-class'
  /** The job names a class that does not exist or does not serve its source. */
  | 'unknown-class';

export type Classification =
  | { matched: true; className: string }
  | { matched: false; reason: UnmatchedReason };

export type Classifier = (job: ClassifiableJob) => Classification;

interface Candidate {
  name: string;
  untrusted: boolean;
  trustedOnly: boolean;
  githubLabels?: ReadonlySet<string>;
  tekton?: TektonSelector;
  tektonRequirements: number;
}

/** Prepares the classes once, so classifying many jobs does not redo the label work. */
export function buildClassifier(classes: RunnerClasses): Classifier {
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
          trustedOnly: runnerClass.trustedOnly,
          ...(github ? { githubLabels: new Set(github.labels.map((label) => label.toLowerCase())) } : {}),
          ...(tekton ? { tekton } : {}),
          tektonRequirements: tekton
            ? Object.keys(tekton.matchLabels).length + tekton.matchExpressions.length
            : 0,
        },
      ];
    });

  return (job) => {
    if (job.requestedClass !== undefined) {
      const named = candidates.find((c) => c.name === job.requestedClass);
      const serves = job.source === 'github' ? named?.githubLabels : named?.tekton;
      return serves
        ? { matched: true, className: job.requestedClass }
        : { matched: false, reason: 'unknown-class' };
    }
    const matches = matchingClasses(candidates, job);
    const best = (pool: Candidate[]) => mostSpecific(pool, job);
    if (!job.untrusted) {
      const chosen = best(matches.filter((c) => !c.untrusted));
      return chosen
        ? { matched: true, className: chosen.name }
        : { matched: false, reason: 'no-matching-class' };
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

/** One-off classification; prefer `buildClassifier` for many jobs. */
export function classifyJob(job: ClassifiableJob, classes: RunnerClasses): Classification {
  return buildClassifier(classes)(job);
}

function matchingClasses(candidates: Candidate[], job: ClassifiableJob): Candidate[] {
  if (job.source === 'github') {
    const wanted = job.labels.map((label) => label.toLowerCase());
    // A job that names no label cannot say which class it wants.
    if (wanted.length === 0) return [];
    return candidates.filter((c) => c.githubLabels && wanted.every((label) => c.githubLabels?.has(label)));
  }
  const labels = job.tektonLabels ?? {};
  return candidates.filter((c) => c.tekton && selects(c.tekton, labels));
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
