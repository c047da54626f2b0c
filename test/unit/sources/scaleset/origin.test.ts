import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../src/config/load.ts';
import { judgeMessage, needsRun, refNameOf } from '../../../../src/sources/scaleset/origin.ts';
import { type JobMessage, readJobMessage } from '../../../../src/sources/scaleset/wire.ts';

// Which scale-set jobs are judged from their message alone, and which need their workflow run read.

const policy = (trust: Record<string, unknown> = {}) => parseConfig({ github: { trust } }).github.trust;

const message = (
  eventName: string,
  workflowRef = 'acme/app/.github/workflows/ci.yml@refs/heads/main',
): JobMessage =>
  readJobMessage(
    {
      messageType: 'JobAssigned',
      runnerRequestId: 1,
      repositoryName: 'app',
      ownerName: 'acme',
      jobWorkflowRef: workflowRef,
      workflowRunId: 5,
      eventName,
      requestLabels: ['self-hosted'],
    },
    'job',
  );

describe('scale-set job origins', () => {
  it('reads the branch or tag of the job’s own repository’s workflow, and no other’s', () => {
    expect(refNameOf(message('push'))).toBe('main');
    expect(refNameOf(message('release', 'acme/app/.github/workflows/r.yml@refs/tags/v1.2'))).toBe('v1.2');
    expect(
      refNameOf(message('pull_request', 'acme/app/.github/workflows/ci.yml@refs/pull/3/merge')),
    ).toBeNull();
    // A called workflow of another repository names that repository's ref.
    expect(refNameOf(message('push', 'acme/shared/.github/workflows/build.yml@refs/heads/main'))).toBeNull();
  });

  it('reads the run for pull-request events, workflow_run, Dependabot’s branches and trusted-only classes', () => {
    const trust = policy();
    const plain = { trustedOnly: false };
    expect(needsRun(message('push'), trust, plain)).toBe(false);
    expect(needsRun(message('schedule'), trust, plain)).toBe(false);
    expect(needsRun(message('pull_request'), trust, plain)).toBe(true);
    expect(needsRun(message('pull_request_target'), trust, plain)).toBe(true);
    expect(needsRun(message('workflow_run'), trust, plain)).toBe(true);
    expect(
      needsRun(
        message('push', 'acme/app/.github/workflows/ci.yml@refs/heads/dependabot/npm/x-1.2'),
        trust,
        plain,
      ),
    ).toBe(true);
    expect(needsRun(message('push'), trust, { trustedOnly: true })).toBe(true);
    // Any other untrusted actor can only be told from the run.
    expect(needsRun(message('push'), policy({ untrustedActors: ['renovate[bot]'] }), plain)).toBe(true);
    expect(needsRun(message('workflow_run'), policy({ untrustedActors: [] }), plain)).toBe(false);
  });

  it('judges the rest from the repository’s visibility and the event', () => {
    expect(judgeMessage(message('push'), false, policy())).toEqual({ event: 'push', headBranch: 'main' });
    expect(judgeMessage(message('push'), true, policy())).toMatchObject({
      untrustedBecause: 'public-repository',
    });
    expect(judgeMessage(message('push'), true, policy({ publicRepositories: 'trusted' }))).not.toHaveProperty(
      'untrustedBecause',
    );
    expect(
      judgeMessage(message('issue_comment'), false, policy({ untrustedEvents: ['issue_comment'] })),
    ).toMatchObject({
      untrustedBecause: 'untrusted-event',
    });
  });
});
