/** The access settings of an organisation runner group, as GitHub reports them. */
export interface RunnerGroupAccess {
  name: string;
  visibility?: string;
  allows_public_repositories?: boolean;
  restricted_to_workflows?: boolean;
  selected_workflows?: string[];
}

/**
 * Why a runner group is not safe for trusted-only work. GitHub hands a queued job to any idle
 * runner whose labels match, so a group that public repositories (and their fork pull requests)
 * may use, or that any workflow may use, can give a release runner's credentials to untrusted code.
 * Empty when the group is restricted on both counts.
 */
export function trustedGroupProblems(group: RunnerGroupAccess): string[] {
  const problems: string[] = [];
  if (group.allows_public_repositories !== false) problems.push('public repositories may use it');
  if (group.restricted_to_workflows !== true || (group.selected_workflows ?? []).length === 0) {
    problems.push('it is not restricted to selected workflows');
  }
  return problems;
}
