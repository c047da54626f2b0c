import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { classesSchema } from '../../../src/config/classes.ts';
import { createGithubRegistrar, UnsafeTrustedGroupError } from '../../../src/controller/github-registrar.ts';
import { trustedGroupProblems } from '../../../src/sources/github/runner-group-policy.ts';
import { type Harness, startHarness } from './harness.ts';

describe('trustedGroupProblems', () => {
  it('accepts only a group closed to public repositories and limited to selected workflows', () => {
    const closed = {
      name: 'release',
      allows_public_repositories: false,
      restricted_to_workflows: true,
      selected_workflows: ['acme/web/.github/workflows/release.yml@refs/heads/main'],
    };
    expect(trustedGroupProblems(closed)).toEqual([]);
    expect(trustedGroupProblems({ ...closed, allows_public_repositories: true })).toEqual([
      'public repositories may use it',
    ]);
    expect(trustedGroupProblems({ ...closed, restricted_to_workflows: false })).toEqual([
      'it is not restricted to selected workflows',
    ]);
    expect(trustedGroupProblems({ ...closed, selected_workflows: [] })).toEqual([
      'it is not restricted to selected workflows',
    ]);
  });
});

describe('trusted-only classes at start', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  const classes = classesSchema.parse({
    release: {
      match: { github: { labels: ['self-hosted', 'release'] } },
      trustedOnly: true,
      runnerGroup: 'release',
    },
    lint: { match: { github: { labels: ['self-hosted', 'lint'] } } },
  });

  async function check(unsafeTrustedGroup: 'warn' | 'refuse', group: Record<string, unknown>) {
    h = await startHarness({ webhooks: false, fake: { runnerGroups: [{ name: 'release', ...group }] } });
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line).msg) });
    const registrar = createGithubRegistrar({
      runners: h.source.runners,
      classes,
      livePods: () => new Set(),
      repositories: () => [],
      logger,
      cleanupIntervalMs: 60_000,
      unsafeTrustedGroup,
    });
    await registrar.checkTrustedOnlyClasses();
    return errors;
  }

  it('logs an error for an open group and goes on', async () => {
    const errors = await check('warn', {});
    expect(errors).toEqual([
      'class release is trustedOnly but its runners are not protected on GitHub: public repositories may use it; it is not restricted to selected workflows',
    ]);
  });

  it('refuses to start with an open group when told to', async () => {
    await expect(check('refuse', { allowsPublicRepositories: false })).rejects.toThrow(
      UnsafeTrustedGroupError,
    );
  });

  it('says nothing for a protected group', async () => {
    const protectedGroup = {
      allowsPublicRepositories: false,
      restrictedToWorkflows: true,
      selectedWorkflows: ['acme/web/.github/workflows/release.yml@refs/heads/main'],
    };
    expect(await check('refuse', protectedGroup)).toEqual([]);
  });
});
