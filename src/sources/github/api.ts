import type { InstallationToken } from './auth.ts';
import type { GithubClient } from './client.ts';

/** The GitHub REST calls the source makes, typed by octokit's route definitions. */

export interface RepoRef {
  owner: string;
  repo: string;
}

export function splitRepo(fullName: string): RepoRef {
  const [owner = '', repo = ''] = fullName.split('/');
  return { owner, repo };
}

/** What an installation token is limited to: App permissions by level, and repository names. */
export interface InstallationTokenScope {
  permissions: Partial<
    Record<'actions' | 'administration' | 'organization_self_hosted_runners' | 'metadata', 'read' | 'write'>
  >;
  /** Names without the owner; absent: every repository of the installation. */
  repositories?: readonly string[];
}

/** Where runners are registered: an organisation, or one repository. */
export type RunnerScope = { kind: 'org'; org: string } | { kind: 'repo'; repo: string };

export function scopeLabel(scope: RunnerScope): string {
  return scope.kind === 'org' ? `org ${scope.org}` : `repo ${scope.repo}`;
}

export type GithubApi = ReturnType<typeof createGithubApi>;

export function createGithubApi(client: GithubClient, perPage: number) {
  const { octokit } = client;
  const listSpec = (operation: string, conditionalKey: string) => ({
    operation,
    idempotent: true,
    conditionalKey,
  });

  return {
    /** `scope`: the permissions and repositories the token may use; the App's all when absent. */
    async createInstallationToken(
      jwt: string,
      installationId: number,
      scope?: InstallationTokenScope,
    ): Promise<InstallationToken> {
      const { data } = await client.call(
        {
          operation: 'create_installation_token',
          idempotent: true,
          authorization: `bearer ${jwt}`,
          observeQuota: false,
        },
        (extras) =>
          octokit.request('POST /app/installations/{installation_id}/access_tokens', {
            installation_id: installationId,
            ...(scope ? { permissions: scope.permissions } : {}),
            ...(scope?.repositories ? { repositories: [...scope.repositories] } : {}),
            ...extras,
          }),
      );
      return { token: data.token, expiresAt: data.expires_at };
    },

    listInstallationRepos() {
      return client.paginate(
        listSpec('list_installation_repos', `installation/repositories?per_page=${perPage}`),
        (extras) => octokit.request('GET /installation/repositories', { per_page: perPage, ...extras }),
        (page) => page.repositories,
      );
    },

    listWorkflowRuns(fullName: string, status: 'queued' | 'in_progress') {
      return client.paginate(
        listSpec('list_workflow_runs', `repos/${fullName}/actions/runs?status=${status}&per_page=${perPage}`),
        (extras) =>
          octokit.request('GET /repos/{owner}/{repo}/actions/runs', {
            ...splitRepo(fullName),
            status,
            per_page: perPage,
            ...extras,
          }),
        (page) => page.workflow_runs,
      );
    },

    listRunJobs(fullName: string, runId: number) {
      return client.paginate(
        listSpec('list_run_jobs', `repos/${fullName}/actions/runs/${runId}/jobs?per_page=${perPage}`),
        (extras) =>
          octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', {
            ...splitRepo(fullName),
            run_id: runId,
            per_page: perPage,
            ...extras,
          }),
        (page) => page.jobs,
      );
    },

    async getRun(fullName: string, runId: number) {
      const { data } = await client.call(
        {
          operation: 'get_workflow_run',
          idempotent: true,
          conditionalKey: `repos/${fullName}/actions/runs/${runId}`,
        },
        (extras) =>
          octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', {
            ...splitRepo(fullName),
            run_id: runId,
            ...extras,
          }),
      );
      return data;
    },

    listRunnerGroups(org: string) {
      return client.paginate(
        listSpec('list_runner_groups', `orgs/${org}/actions/runner-groups?per_page=${perPage}`),
        (extras) =>
          octokit.request('GET /orgs/{org}/actions/runner-groups', { org, per_page: perPage, ...extras }),
        (page) => page.runner_groups,
      );
    },

    listRunners(scope: RunnerScope, name?: string) {
      const query = `per_page=${perPage}${name ? `&name=${encodeURIComponent(name)}` : ''}`;
      const named = name ? { name } : {};
      if (scope.kind === 'org') {
        return client.paginate(
          listSpec('list_runners', `orgs/${scope.org}/actions/runners?${query}`),
          (extras) =>
            octokit.request('GET /orgs/{org}/actions/runners', {
              org: scope.org,
              per_page: perPage,
              ...named,
              ...extras,
            }),
          (page) => page.runners,
        );
      }
      return client.paginate(
        listSpec('list_runners', `repos/${scope.repo}/actions/runners?${query}`),
        (extras) =>
          octokit.request('GET /repos/{owner}/{repo}/actions/runners', {
            ...splitRepo(scope.repo),
            per_page: perPage,
            ...named,
            ...extras,
          }),
        (page) => page.runners,
      );
    },

    /** Not retried here: a retry after a lost answer would hit 409 for the name; the caller handles that. */
    async generateJitConfig(
      scope: RunnerScope,
      body: { name: string; runner_group_id: number; labels: string[]; work_folder?: string },
    ) {
      const spec = { operation: 'generate_jitconfig', idempotent: false };
      const { data } =
        scope.kind === 'org'
          ? await client.call(spec, (extras) =>
              octokit.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
                org: scope.org,
                ...body,
                ...extras,
              }),
            )
          : await client.call(spec, (extras) =>
              octokit.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
                ...splitRepo(scope.repo),
                ...body,
                ...extras,
              }),
            );
      return data;
    },

    async deleteRunner(scope: RunnerScope, runnerId: number): Promise<void> {
      const spec = { operation: 'delete_runner', idempotent: true };
      if (scope.kind === 'org') {
        await client.call(spec, (extras) =>
          octokit.request('DELETE /orgs/{org}/actions/runners/{runner_id}', {
            org: scope.org,
            runner_id: runnerId,
            ...extras,
          }),
        );
        return;
      }
      await client.call(spec, (extras) =>
        octokit.request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', {
          ...splitRepo(scope.repo),
          runner_id: runnerId,
          ...extras,
        }),
      );
    },
  };
}

export type WorkflowRun = Awaited<ReturnType<GithubApi['listWorkflowRuns']>>['items'][number];
export type WorkflowJob = Awaited<ReturnType<GithubApi['listRunJobs']>>['items'][number];
export type Runner = Awaited<ReturnType<GithubApi['listRunners']>>['items'][number];
