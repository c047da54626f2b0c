/**
 * Demand as the rest of Gantry sees it: every source (GitHub Actions, Tekton) turns its
 * queue into these events. Domain types only; no I/O.
 */

/** Milliseconds since the Unix epoch (UTC). */
export type EpochMillis = number;

export type JobSourceName = 'github' | 'tekton';

/** How the source learned about the transition: a push notification, a poll, or a watch stream. */
export type ObservedVia = 'webhook' | 'poll' | 'watch';

/** The outcome of a finished job; `unknown` covers outcomes a source reports that Gantry does not model. */
export type JobConclusion =
  | 'success'
  | 'failure'
  | 'cancelled'
  | 'skipped'
  | 'timed_out'
  | 'neutral'
  | 'action_required'
  | 'unknown';

/** What identifies a job and what classification needs to know about it. Identical on every event of a job. */
export interface JobIdentity {
  source: JobSourceName;
  /** Stable across events, restarts and sources, e.g. `github:12877621891`. */
  key: string;
  /** Where the job comes from: `owner/name` for GitHub; a Tekton source would use `namespace/pipeline`. */
  repo: string;
  /** The labels the job asks for (GitHub: `runs-on`). */
  labels: readonly string[];
  /** The run (workflow run, PipelineRun) the job belongs to. */
  runId: string;
  /** 1 for the first attempt, higher for re-runs. */
  runAttempt: number;
  /**
   * The job may run code Gantry's trust policy does not vouch for (a fork pull request, a public
   * repository, an untrusted actor or event): it may only use untrusted classes.
   */
  untrusted: boolean;
  /** GitHub: where the run comes from, as its workflow run reports it (trusted-only classes check it). */
  origin?: JobOrigin;
  /** Human-readable job name, for logs and status pages. */
  name: string;
  /** Tekton: the PipelineRun's labels, matched against the classes' selectors. */
  tektonLabels?: Readonly<Record<string, string>>;
  /** Tekton: the PipelineRun's namespace, for classes bound to namespaces. */
  tektonNamespace?: string;
  /** Tekton: the class the run names (label gantry.dev/class) or was queued in; it wins over selectors. */
  requestedClass?: string;
}

/** Why a GitHub job is untrusted; the first reason that applies. */
export type UntrustedReason =
  | 'fork'
  | 'public-repository'
  | 'untrusted-actor'
  | 'untrusted-event'
  /** GitHub refuses to show the run for good (gone, not readable): fail closed. */
  | 'unknown-run';

/** What a GitHub job's workflow run says about where it comes from. */
export interface JobOrigin {
  /** The event that triggered the run: push, pull_request, release, workflow_dispatch, … */
  event: string;
  /**
   * The branch or tag the run is for, as GitHub reports it (`head_branch`, without `refs/…`:
   * GitHub does not say which of the two it is); null when unknown.
   */
  headBranch: string | null;
  /** Set when the job is untrusted. */
  untrustedBecause?: UntrustedReason;
}

interface JobEventBase {
  job: JobIdentity;
  via: ObservedVia;
  /** When the job was created (entered the queue). */
  createdAt: EpochMillis;
}

/** The job waits for a runner: demand. */
export interface JobQueued extends JobEventBase {
  kind: 'queued';
}

/** A runner took the job. */
export interface JobStarted extends JobEventBase {
  kind: 'started';
  startedAt: EpochMillis;
  /** The runner (and, for Gantry's runners, the pod) that took the job. */
  runnerName: string | null;
}

/** The job ended, successfully or not; cancelled while queued is a completion too. */
export interface JobCompleted extends JobEventBase {
  kind: 'completed';
  /** Null when the job never reached a runner. */
  startedAt: EpochMillis | null;
  completedAt: EpochMillis;
  conclusion: JobConclusion;
  runnerName: string | null;
}

export type JobEvent = JobQueued | JobStarted | JobCompleted;

export type JobEventKind = JobEvent['kind'];

/** Builds the stable key of a job from its source and the source's own id. */
export function jobKey(source: JobSourceName, id: string | number): string {
  return `${source}:${id}`;
}
