import { isSandboxTier, type RunnerClasses } from '../../classes/schema.ts';

/** The access settings of an organisation runner group, as GitHub reports them. */
export interface RunnerGroupAccess {
  name: string;
  visibility?: string;
  allows_public_repositories?: boolean;
  restricted_to_workflows?: boolean;
  selected_workflows?: string[];
}

/** One way untrusted jobs could reach a class's runners on GitHub's side. */
export interface PlacementProblem {
  className: string;
  /** The runner group, for org-scoped classes. */
  group?: string;
  /** One line naming the class, the group and the setting. */
  message: string;
}

/**
 * GitHub hands a queued job to any idle runner whose labels cover the job's and whose runner group
 * admits the job's repository (and workflow), whatever Gantry planned; a fork author writes their own
 * labels. So a trusted class is safe from fork code only if its runner group admits no public
 * repository, and a trusted-only class only if, besides, its group takes selected workflows alone.
 * Classes of the sandbox tier (untrusted, sandboxed) may take anything. `groups` is the
 * organisation's list of runner groups, as GitHub reports it.
 */
export function placementProblems(
  classes: RunnerClasses,
  groups: readonly RunnerGroupAccess[],
): PlacementProblem[] {
  const problems: PlacementProblem[] = [];
  for (const className of Object.keys(classes).sort()) {
    const runnerClass = classes[className];
    if (!runnerClass?.match.github) continue;
    if (runnerClass.scope === 'repo') {
      if (runnerClass.trustedOnly) {
        problems.push({
          className,
          message:
            `class ${className}: scope repo cannot be restricted to selected workflows (a repository's ` +
            'runners take any workflow of it); use scope org with a runner group that is',
        });
      }
      continue;
    }
    const name = runnerClass.runnerGroup;
    const group = groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
    const at = `class ${className}: runner group "${name}"`;
    if (!group) {
      problems.push({ className, group: name, message: `${at} does not exist` });
      continue;
    }
    if (isSandboxTier(runnerClass)) continue;
    if (group.allows_public_repositories !== false) {
      problems.push({
        className,
        group: name,
        message:
          `${at} admits public repositories (allows_public_repositories is ` +
          `${String(group.allows_public_repositories ?? 'unset')}): fork pull requests of a public ` +
          'repository can take its runners',
      });
    }
    if (
      runnerClass.trustedOnly &&
      (group.restricted_to_workflows !== true || (group.selected_workflows ?? []).length === 0)
    ) {
      problems.push({
        className,
        group: name,
        message:
          `${at} is not restricted to selected workflows (restricted_to_workflows is ` +
          `${String(group.restricted_to_workflows ?? 'unset')}): any workflow of an admitted repository ` +
          'can take its trusted-only runners',
      });
    }
  }
  return problems;
}
