/**
 * Builders of the REST objects the fake returns, shaped after GitHub's published REST description
 * (`@octokit/openapi`, schemas simple-user, minimal-repository, repository, workflow-run, job, runner).
 * The fake's own tests validate every response against that description.
 */

export interface FakeRepo {
  id: number;
  owner: string;
  ownerId: number;
  name: string;
  fullName: string;
  private: boolean;
}

export type JobStatus = 'queued' | 'in_progress' | 'completed' | 'waiting';
export type Conclusion = 'success' | 'failure' | 'cancelled';

export interface FakeRun {
  id: number;
  repo: FakeRepo;
  runNumber: number;
  runAttempt: number;
  workflowId: number;
  workflowName: string;
  event: string;
  headBranch: string;
  headSha: string;
  /** Where the code comes from; differs from `repo` for a fork pull request. */
  headRepo: FakeRepo;
  /** Who triggered it (login). */
  actor: string;
  /** The workflow file, relative to the repository. */
  workflowPath: string;
  /** The ref the workflow file was read at: refs/heads/main, refs/tags/v1, refs/pull/7/merge, … */
  workflowRef: string;
  createdAt: number;
  updatedAt: number;
  jobIds: number[];
}

export interface FakeJob {
  id: number;
  runId: number;
  repo: FakeRepo;
  name: string;
  labels: string[];
  status: JobStatus;
  conclusion: Conclusion | null;
  createdAt: number;
  startedAt: number;
  completedAt: number | null;
  runner: { id: number; name: string; groupId: number; groupName: string } | null;
  /** How long the job runs once a runner took it. */
  durationMs: number;
  /** The conclusion it will reach. */
  outcome: Conclusion;
  /** When it completes (set when it starts). */
  completesAt: number | null;
}

export type RunnerScopeRef = { kind: 'org'; org: string } | { kind: 'repo'; repo: string };

export interface FakeRunner {
  id: number;
  name: string;
  scope: RunnerScopeRef;
  labels: string[];
  groupId: number;
  status: 'online' | 'offline';
  busy: boolean;
  jobId: number | null;
  createdAt: number;
}

export interface FakeRunnerGroup {
  id: number;
  name: string;
  isDefault: boolean;
  /** Which repositories may use it: all, the selected ones, or every private one. GitHub's default: all. */
  visibility: 'all' | 'selected' | 'private';
  /** With visibility selected: owner/name of each repository that may use it. */
  selectedRepositories: string[];
  /** Whether public repositories may use it (the REST description's default for a group: no). */
  allowsPublicRepositories: boolean;
  restrictedToWorkflows: boolean;
  /** owner/repo/.github/workflows/file.yml@ref entries, as GitHub's settings take them. */
  selectedWorkflows: string[];
}

/** The access settings of a runner group, all optional when a test describes one. */
export type RunnerGroupSettings = Partial<Omit<FakeRunnerGroup, 'id' | 'name' | 'isDefault'>>;

/** How a test describes an extra runner group: a name, or a name with its access settings. */
export type RunnerGroupSpec = string | ({ name: string } & RunnerGroupSettings);

/**
 * Whether GitHub lets a job of `repo`, defined by the workflow file `workflow` (owner/repo/path@ref),
 * use runners of the group: the repository must be admitted (and, if public, public repositories
 * allowed), and with workflow restrictions the workflow must be a selected one.
 */
export function groupAdmits(group: FakeRunnerGroup, repo: FakeRepo, workflow: string): boolean {
  if (!repo.private && !group.allowsPublicRepositories) return false;
  if (group.visibility === 'private' && !repo.private) return false;
  if (
    group.visibility === 'selected' &&
    !group.selectedRepositories.some((r) => r.toLowerCase() === repo.fullName.toLowerCase())
  ) {
    return false;
  }
  return !group.restrictedToWorkflows || group.selectedWorkflows.includes(workflow);
}

/** GitHub writes timestamps without milliseconds. */
export const iso = (ms: number): string =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const nodeId = (prefix: string, id: number) => Buffer.from(`${prefix}${id}`).toString('base64');

export function simpleUser(
  web: string,
  api: string,
  login: string,
  id: number,
  type: 'User' | 'Organization' | 'Bot',
) {
  const url = `${api}/users/${login}`;
  return {
    login,
    id,
    node_id: nodeId('04:User', id),
    avatar_url: `https://avatars.example.test/u/${id}?v=4`,
    gravatar_id: '',
    url,
    html_url: `${web}/${login}`,
    followers_url: `${url}/followers`,
    following_url: `${url}/following{/other_user}`,
    gists_url: `${url}/gists{/gist_id}`,
    starred_url: `${url}/starred{/owner}{/repo}`,
    subscriptions_url: `${url}/subscriptions`,
    organizations_url: `${url}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${url}/events{/privacy}`,
    received_events_url: `${url}/received_events`,
    type,
    site_admin: false,
  };
}

export function minimalRepository(web: string, api: string, repo: FakeRepo) {
  const url = `${api}/repos/${repo.fullName}`;
  return {
    id: repo.id,
    node_id: nodeId('010:Repository', repo.id),
    name: repo.name,
    full_name: repo.fullName,
    private: repo.private,
    owner: simpleUser(web, api, repo.owner, repo.ownerId, 'Organization'),
    html_url: `${web}/${repo.fullName}`,
    description: null,
    fork: false,
    url,
    archive_url: `${url}/{archive_format}{/ref}`,
    assignees_url: `${url}/assignees{/user}`,
    blobs_url: `${url}/git/blobs{/sha}`,
    branches_url: `${url}/branches{/branch}`,
    collaborators_url: `${url}/collaborators{/collaborator}`,
    comments_url: `${url}/comments{/number}`,
    commits_url: `${url}/commits{/sha}`,
    compare_url: `${url}/compare/{base}...{head}`,
    contents_url: `${url}/contents/{+path}`,
    contributors_url: `${url}/contributors`,
    deployments_url: `${url}/deployments`,
    downloads_url: `${url}/downloads`,
    events_url: `${url}/events`,
    forks_url: `${url}/forks`,
    git_commits_url: `${url}/git/commits{/sha}`,
    git_refs_url: `${url}/git/refs{/sha}`,
    git_tags_url: `${url}/git/tags{/sha}`,
    hooks_url: `${url}/hooks`,
    issue_comment_url: `${url}/issues/comments{/number}`,
    issue_events_url: `${url}/issues/events{/number}`,
    issues_url: `${url}/issues{/number}`,
    keys_url: `${url}/keys{/key_id}`,
    labels_url: `${url}/labels{/name}`,
    languages_url: `${url}/languages`,
    merges_url: `${url}/merges`,
    milestones_url: `${url}/milestones{/number}`,
    notifications_url: `${url}/notifications{?since,all,participating}`,
    pulls_url: `${url}/pulls{/number}`,
    releases_url: `${url}/releases{/id}`,
    stargazers_url: `${url}/stargazers`,
    statuses_url: `${url}/statuses/{sha}`,
    subscribers_url: `${url}/subscribers`,
    subscription_url: `${url}/subscription`,
    tags_url: `${url}/tags`,
    teams_url: `${url}/teams`,
    trees_url: `${url}/git/trees{/sha}`,
  };
}

export function fullRepository(web: string, api: string, repo: FakeRepo, createdAt: number) {
  const host = new URL(web).host;
  return {
    ...minimalRepository(web, api, repo),
    clone_url: `${web}/${repo.fullName}.git`,
    git_url: `git://${host}/${repo.fullName}.git`,
    ssh_url: `git@${host}:${repo.fullName}.git`,
    svn_url: `${web}/${repo.fullName}`,
    mirror_url: null,
    homepage: null,
    language: 'TypeScript',
    default_branch: 'main',
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers: 0,
    watchers_count: 0,
    size: 1,
    open_issues: 0,
    open_issues_count: 0,
    has_downloads: true,
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    archived: false,
    disabled: false,
    license: null,
    pushed_at: iso(createdAt),
    created_at: iso(createdAt),
    updated_at: iso(createdAt),
  };
}

/** A run's status follows its jobs: queued until one starts, completed when all ended. */
export function runStatus(jobs: readonly FakeJob[]): { status: string; conclusion: string | null } {
  if (jobs.length > 0 && jobs.every((j) => j.status === 'completed')) {
    const conclusion = jobs.some((j) => j.conclusion === 'failure')
      ? 'failure'
      : jobs.some((j) => j.conclusion === 'cancelled')
        ? 'cancelled'
        : 'success';
    return { status: 'completed', conclusion };
  }
  if (jobs.every((j) => j.status === 'waiting')) return { status: 'waiting', conclusion: null };
  if (jobs.every((j) => j.status === 'queued' || j.status === 'waiting'))
    return { status: 'queued', conclusion: null };
  return { status: 'in_progress', conclusion: null };
}

export function workflowRun(web: string, api: string, run: FakeRun, jobs: readonly FakeJob[]) {
  const url = `${api}/repos/${run.repo.fullName}/actions/runs/${run.id}`;
  const { status, conclusion } = runStatus(jobs);
  return {
    id: run.id,
    name: run.workflowName,
    node_id: nodeId('WFR_', run.id),
    check_suite_id: run.id + 1_000_000,
    check_suite_node_id: nodeId('CS_', run.id),
    head_branch: run.headBranch,
    head_sha: run.headSha,
    path: run.workflowPath,
    run_number: run.runNumber,
    run_attempt: run.runAttempt,
    event: run.event,
    display_title: `CI #${run.runNumber}`,
    status,
    conclusion,
    workflow_id: run.workflowId,
    url,
    html_url: `${web}/${run.repo.fullName}/actions/runs/${run.id}`,
    // GitHub lists only pull requests of the same repository here, so fork runs show none either.
    pull_requests: [],
    created_at: iso(run.createdAt),
    updated_at: iso(run.updatedAt),
    run_started_at: iso(run.createdAt),
    jobs_url: `${url}/jobs`,
    logs_url: `${url}/logs`,
    check_suite_url: `${api}/repos/${run.repo.fullName}/check-suites/${run.id + 1_000_000}`,
    artifacts_url: `${url}/artifacts`,
    cancel_url: `${url}/cancel`,
    rerun_url: `${url}/rerun`,
    previous_attempt_url: null,
    workflow_url: `${api}/repos/${run.repo.fullName}/actions/workflows/${run.workflowId}`,
    head_commit: {
      id: run.headSha,
      tree_id: run.headSha.split('').reverse().join(''),
      message: 'Change things',
      timestamp: iso(run.createdAt),
      author: { name: 'Dev', email: 'dev@example.test' },
      committer: { name: 'Dev', email: 'dev@example.test' },
    },
    repository: minimalRepository(web, api, run.repo),
    head_repository: { ...minimalRepository(web, api, run.headRepo), fork: run.headRepo.id !== run.repo.id },
    head_repository_id: run.headRepo.id,
    actor: actorOf(web, api, run.actor),
    triggering_actor: actorOf(web, api, run.actor),
  };
}

function actorOf(web: string, api: string, login: string) {
  const id = [...login].reduce((sum, c) => (sum * 31 + c.charCodeAt(0)) % 9_000_000, 7) + 1_000;
  return simpleUser(web, api, login, id, login.endsWith('[bot]') ? 'Bot' : 'User');
}

/** The job as the REST API shows it (schema `job`). */
export function restJob(web: string, api: string, job: FakeJob, run: FakeRun) {
  const repoApi = `${api}/repos/${job.repo.fullName}`;
  return {
    id: job.id,
    run_id: job.runId,
    run_url: `${repoApi}/actions/runs/${job.runId}`,
    run_attempt: run.runAttempt,
    node_id: nodeId('CR_', job.id),
    head_sha: run.headSha,
    url: `${repoApi}/actions/jobs/${job.id}`,
    html_url: `${web}/${job.repo.fullName}/actions/runs/${job.runId}/job/${job.id}`,
    status: job.status,
    conclusion: job.conclusion,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    completed_at: job.completedAt === null ? null : iso(job.completedAt),
    name: job.name,
    steps: [],
    check_run_url: `${repoApi}/check-runs/${job.id}`,
    labels: job.labels,
    runner_id: job.runner?.id ?? null,
    runner_name: job.runner?.name ?? null,
    runner_group_id: job.runner?.groupId ?? null,
    runner_group_name: job.runner?.groupName ?? null,
    workflow_name: run.workflowName,
    head_branch: run.headBranch,
  };
}

export function restRunner(runner: FakeRunner) {
  let labelId = runner.id * 100;
  return {
    id: runner.id,
    runner_group_id: runner.groupId,
    name: runner.name,
    os: runner.status === 'online' ? 'Linux' : 'unknown',
    status: runner.status,
    busy: runner.busy,
    ephemeral: true,
    labels: runner.labels.map((name) => ({ id: ++labelId, name, type: 'custom' as const })),
  };
}

export function runnerGroup(api: string, org: string, group: FakeRunnerGroup) {
  return {
    id: group.id,
    name: group.name,
    visibility: group.visibility,
    default: group.isDefault,
    ...(group.visibility === 'selected'
      ? { selected_repositories_url: `${api}/orgs/${org}/actions/runner-groups/${group.id}/repositories` }
      : {}),
    runners_url: `${api}/orgs/${org}/actions/runner-groups/${group.id}/runners`,
    hosted_runners_url: `${api}/orgs/${org}/actions/runner-groups/${group.id}/hosted-runners`,
    inherited: false,
    allows_public_repositories: group.allowsPublicRepositories,
    restricted_to_workflows: group.restrictedToWorkflows,
    selected_workflows: group.selectedWorkflows,
    workflow_restrictions_read_only: false,
  };
}
