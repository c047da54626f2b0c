import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type FakeJob, type FakeRepo, type FakeRun, restJob, workflowRun } from './entities.ts';

/** One workflow_job example payload from `@octokit/webhooks-examples` (api.github.com). */
export type WebhookExample = {
  action: string;
  workflow_job: Record<string, unknown>;
  repository: Record<string, unknown>;
  sender: Record<string, unknown>;
  installation?: { id: number; node_id: string };
  [key: string]: unknown;
};

const require = createRequire(import.meta.url);
let examples: WebhookExample[] | undefined;

/** The workflow_job examples GitHub's SDK team collected from real deliveries. */
export function workflowJobExamples(): WebhookExample[] {
  if (!examples) {
    const path = require.resolve('@octokit/webhooks-examples/api.github.com/index.json');
    const events = JSON.parse(readFileSync(path, 'utf8')) as { name: string; examples: WebhookExample[] }[];
    examples = events.find((e) => e.name === 'workflow_job')?.examples ?? [];
  }
  return examples;
}

/** The example the fake's payloads are modelled on: a self-hosted job delivered to a GitHub App. */
function template(): WebhookExample {
  const found = workflowJobExamples().find(
    (e) => e.action === 'waiting' && e.installation !== undefined && Array.isArray(e.workflow_job.labels),
  );
  if (!found) throw new Error('@octokit/webhooks-examples has no workflow_job waiting example');
  return found;
}

/** Rewrites the template's repository and sender to the fake's repository and hosts. */
function retarget(
  value: Record<string, unknown>,
  repo: FakeRepo,
  web: string,
  api: string,
): Record<string, unknown> {
  const t = template();
  const fullName = String(t.repository.full_name);
  const [owner = '', name = ''] = fullName.split('/');
  const text = JSON.stringify(value)
    .replaceAll('https://api.github.com', api)
    .replaceAll('https://github.com', web)
    .replaceAll(fullName, repo.fullName)
    .replaceAll(`/${owner}`, `/${repo.owner}`)
    .replaceAll(`"${owner}"`, `"${repo.owner}"`)
    .replaceAll(name, repo.name);
  return JSON.parse(text) as Record<string, unknown>;
}

export type WorkflowJobAction = 'queued' | 'waiting' | 'in_progress' | 'completed';

export function workflowJobPayload(
  action: WorkflowJobAction,
  job: FakeJob,
  run: FakeRun,
  hosts: { web: string; api: string },
  installationId: number,
): WebhookExample {
  const t = template();
  const repository = retarget(t.repository, job.repo, hosts.web, hosts.api);
  repository.id = job.repo.id;
  repository.private = job.repo.private;
  const sender = retarget(t.sender, job.repo, hosts.web, hosts.api);
  return {
    action,
    // A delivery carries the job exactly as the REST API shows it.
    workflow_job: restJob(hosts.web, hosts.api, job, run),
    repository,
    sender,
    installation: {
      id: installationId,
      node_id: Buffer.from(`Installation${installationId}`).toString('base64'),
    },
  };
}

export type WorkflowRunAction = 'requested' | 'in_progress' | 'completed';

/** A workflow_run delivery: the run as the REST API shows it, its workflow, repository and sender. */
export function workflowRunPayload(
  action: WorkflowRunAction,
  run: FakeRun,
  jobs: readonly FakeJob[],
  hosts: { web: string; api: string },
  installationId: number,
): Record<string, unknown> {
  const t = template();
  const repository = retarget(t.repository, run.repo, hosts.web, hosts.api);
  repository.id = run.repo.id;
  repository.private = run.repo.private;
  const sender = retarget(t.sender, run.repo, hosts.web, hosts.api);
  const rest = workflowRun(hosts.web, hosts.api, run, jobs);
  return {
    action,
    workflow_run: rest,
    workflow: {
      id: run.workflowId,
      node_id: Buffer.from(`W_${run.workflowId}`).toString('base64'),
      name: run.workflowName,
      path: run.workflowPath,
      state: 'active',
      created_at: '2024-01-01T00:00:00Z',
      updated_at: '2024-01-01T00:00:00Z',
      url: `${hosts.api}/repos/${run.repo.fullName}/actions/workflows/${run.workflowId}`,
      html_url: `${hosts.web}/${run.repo.fullName}/blob/main/${run.workflowPath}`,
      badge_url: `${hosts.web}/${run.repo.fullName}/workflows/${run.workflowName}/badge.svg`,
    },
    repository,
    sender,
    installation: {
      id: installationId,
      node_id: Buffer.from(`Installation${installationId}`).toString('base64'),
    },
  };
}

/** Headers of a delivery, signed like GitHub's (HMAC of the exact body bytes). */
export function deliveryHeaders(
  body: string,
  secret: string,
  deliveryId: string,
  event: string,
  installationId: number,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/fake',
    'x-github-event': event,
    'x-github-delivery': deliveryId,
    'x-github-hook-id': '4242',
    'x-github-hook-installation-target-id': String(installationId),
    'x-github-hook-installation-target-type': 'integration',
    'x-hub-signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`,
    'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
  };
}
