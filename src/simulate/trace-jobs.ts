import { buildClassifier, buildServableCheck } from '../classes/matching.ts';
import type { Config } from '../config/schema.ts';
import { type JobIdentity, jobKey } from '../model/job.ts';
import { judgeRun } from '../sources/github/run-origin.ts';
import type { TraceJob } from '../trace/format.ts';

/** A trace job as Gantry's GitHub source would hand it on: its identity, trust and class. */
export interface ClassifiedJob {
  trace: TraceJob;
  identity: JobIdentity;
  /** Undefined when no class takes it (by trust: its labels fit one). */
  className: string | undefined;
  /** Why it has no class. */
  unclassified?: string;
}

/**
 * Sorts a trace's jobs as Gantry would: a job whose labels no class covers is dropped before any
 * look-up (`notForGantry`); the others get the trust the policy gives their run (fork, public
 * repository, actor, event) and the class the classifier picks.
 */
export function classifyTraceJobs(
  config: Config,
  jobs: readonly TraceJob[],
): { jobs: ClassifiedJob[]; notForGantry: number } {
  const classify = buildClassifier(config.classes, config.github.trust);
  const servable = buildServableCheck(config.classes);
  const origins = new Map<string, ReturnType<typeof judgeRun>>();
  const out: ClassifiedJob[] = [];
  let notForGantry = 0;
  for (const trace of jobs) {
    if (!servable(trace.labels)) {
      notForGantry++;
      continue;
    }
    const runKey = `${trace.repo}#${trace.run}#${trace.attempt}`;
    let origin = origins.get(runKey);
    if (!origin) {
      origin = judgeRun(
        {
          id: 0,
          event: trace.event,
          head_branch: trace.branch,
          repository: {
            full_name: trace.repo,
            private: trace.visibility !== 'public',
            visibility: trace.visibility,
          },
          // A fork's own name is not recorded; any other repository says "from a fork" alike.
          head_repository: { full_name: trace.fork ? `${trace.repo}-fork/fork` : trace.repo },
          actor: trace.actor !== undefined ? { login: trace.actor } : null,
        },
        config.github.trust,
      );
      origins.set(runKey, origin);
    }
    const identity: JobIdentity = {
      source: 'github',
      key: jobKey('github', trace.attempt > 1 ? `${trace.job}-${trace.attempt}` : trace.job),
      repo: trace.repo,
      labels: trace.labels,
      runId: trace.run,
      runAttempt: trace.attempt,
      untrusted: origin.untrustedBecause !== undefined,
      origin,
      name: trace.name ?? trace.job,
    };
    const classification = classify(identity);
    out.push(
      classification.matched
        ? { trace, identity, className: classification.className }
        : { trace, identity, className: undefined, unclassified: classification.reason },
    );
  }
  return { jobs: out, notForGantry };
}
