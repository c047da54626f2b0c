import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { classesSchema } from '../../../../src/classes/schema.ts';
import { UnsafePlacementError } from '../../../../src/sources/github/placement-guard.ts';
import { createGithubRegistrar } from '../../../../src/sources/github/registrar.ts';
import {
  placementProblems,
  type RunnerGroupAccess,
} from '../../../../src/sources/github/runner-group-policy.ts';
import { type Harness, startHarness } from '../../../support/github-harness.ts';
import { until } from '../../../support/until.ts';

const closed = { allows_public_repositories: false };
const release = {
  allows_public_repositories: false,
  restricted_to_workflows: true,
  selected_workflows: ['acme/web/.github/workflows/release.yml@refs/heads/main'],
};

const classes = classesSchema.parse({
  lint: { namespace: 'ci', runnerGroup: 'ci', match: { github: { labels: ['self-hosted', 'lint'] } } },
  release: {
    namespace: 'ci',
    runnerGroup: 'release',
    trustedOnly: true,
    match: { github: { labels: ['self-hosted', 'release'] } },
  },
  sandbox: {
    namespace: 'sandbox',
    runnerGroup: 'sandbox',
    untrusted: true,
    runtimeClassName: 'gvisor',
    match: { github: { labels: ['self-hosted', 'sandbox'] } },
  },
});

describe('placementProblems', () => {
  const groups = (ci: Partial<RunnerGroupAccess>, rel: Partial<RunnerGroupAccess> = release) => [
    { name: 'CI', ...ci },
    { name: 'release', ...rel },
    // GitHub's defaults: any repository, any workflow. Fine for the sandbox tier.
    { name: 'sandbox', allows_public_repositories: true },
  ];

  it('accepts trusted groups closed to public repositories, trusted-only ones also to other workflows', () => {
    expect(placementProblems(classes, groups(closed))).toEqual([]);
  });

  it('names the class, the group and the setting that lets untrusted jobs in', () => {
    expect(
      placementProblems(
        classes,
        groups({ allows_public_repositories: true }, { ...release, restricted_to_workflows: false }),
      ).map((p) => p.message),
    ).toEqual([
      'class lint: runner group "ci" admits public repositories (allows_public_repositories is true): fork pull requests of a public repository can take its runners',
      'class release: runner group "release" is not restricted to selected workflows (restricted_to_workflows is false): any workflow of an admitted repository can take its trusted-only runners',
    ]);
  });

  it('reports a missing group, and a trusted-only class in repository scope', () => {
    const repoRelease = classesSchema.parse({
      release: { scope: 'repo', trustedOnly: true, match: { github: { labels: ['release'] } } },
      lint: { runnerGroup: 'gone', match: { github: { labels: ['lint'] } } },
    });
    expect(placementProblems(repoRelease, []).map((p) => p.message)).toEqual([
      'class lint: runner group "gone" does not exist',
      "class release: scope repo cannot be restricted to selected workflows (a repository's runners take any workflow of it); use scope org with a runner group that is",
    ]);
  });
});

describe('the registrar’s placement checks', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  async function registrarFor(
    unsafePlacement: 'warn' | 'refuse',
    ci: Record<string, unknown>,
    onPlacements?: (holds: ReadonlyMap<string, string>) => void,
    github: Record<string, unknown> = {},
  ) {
    h = await startHarness({
      webhooks: false,
      github,
      fake: {
        runnerGroups: [
          { name: 'ci', ...ci },
          {
            name: 'release',
            allowsPublicRepositories: false,
            restrictedToWorkflows: true,
            selectedWorkflows: ['acme/web/.github/workflows/release.yml@refs/heads/main'],
          },
          'sandbox',
        ],
      },
    });
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line).msg) });
    const registrar = createGithubRegistrar({
      runners: h.source.runners,
      classes,
      livePods: () => new Set(),
      repositories: () => [],
      logger,
      metrics: new Registry(),
      cleanupIntervalMs: 60_000,
      unsafePlacement,
      placementCheckIntervalMs: 50,
      unreadableRetryMs: [50, 200],
      ...(onPlacements ? { onPlacements } : {}),
    });
    return { registrar, errors };
  }

  it('refuses to start on a trusted group that admits public repositories, in one line', async () => {
    const { registrar } = await registrarFor('refuse', { allowsPublicRepositories: true });
    const refusal = registrar.checkPlacements();
    await expect(refusal).rejects.toThrow(UnsafePlacementError);
    await expect(refusal).rejects.toThrow(
      'class lint: runner group "ci" admits public repositories (allows_public_repositories is true): fork pull requests of a public repository can take its runners; fix it on GitHub, or set github.trust.unsafePlacement: warn',
    );
  });

  it('only logs the problem when told to warn', async () => {
    const { registrar, errors } = await registrarFor('warn', { allowsPublicRepositories: true });
    expect((await registrar.checkPlacements()).map((p) => p.className)).toEqual(['lint']);
    expect(errors).toHaveLength(1);
  });

  it('reads the groups again while running, and holds a class whose group became unsafe', async () => {
    const held: string[][] = [];
    const { registrar } = await registrarFor('refuse', { allowsPublicRepositories: false }, (holds) =>
      held.push([...holds].map(([name, hold]) => `${name}:${hold}`)),
    );
    expect(await registrar.checkPlacements()).toEqual([]);
    registrar.start();
    await until('a recheck', async () => held.length > 0);
    expect(held.at(-1)).toEqual([]);
    const listings = () => h.fake.requests.filter((r) => r.route === '/orgs/{org}/actions/runner-groups');
    // Unchanged groups are answered 304: no quota.
    await until('a 304', async () => listings().some((r) => r.status === 304));
    expect(
      listings()
        .filter((r) => r.status === 304)
        .every((r) => r.cost === 0),
    ).toBe(true);
    h.fake.updateRunnerGroup('ci', { allowsPublicRepositories: true });
    await until('the class held', async () => held.at(-1)?.includes('lint:unsafe') === true);
    h.fake.updateRunnerGroup('ci', { allowsPublicRepositories: false });
    await until('the class released', async () => held.at(-1)?.length === 0);
    await registrar.stop();
  });

  it('starts while GitHub cannot be reached, holding org-scoped classes until the groups are read', async () => {
    const held: string[][] = [];
    const { registrar } = await registrarFor('refuse', {}, (holds) =>
      held.push([...holds].map(([name, hold]) => `${name}:${hold}`)),
    );
    h.fake.faults.outageUntil = Number.POSITIVE_INFINITY;
    expect(await registrar.checkPlacements()).toEqual([]);
    expect(held).toEqual([['lint:unknown', 'release:unknown', 'sandbox:unknown']]);
    h.fake.faults.outageUntil = 0;
    await until('the groups read', async () => held.at(-1)?.length === 0, 20_000);
    await registrar.stop();
  });

  it('sweeps registrations a predecessor left as soon as it starts, not an interval later', async () => {
    const { registrar } = await registrarFor('refuse', { allowsPublicRepositories: false });
    h.fake.registerRunner('gantry-lint-left-behind', ['self-hosted', 'linux']);
    h.fake.registerRunner('someone-elses-runner', ['self-hosted', 'linux']);
    registrar.start();
    await until('the leftover removed', async () =>
      h.fake.runners().every((r) => r.name !== 'gantry-lint-left-behind'),
    );
    expect(h.fake.runners().map((r) => r.name)).toContain('someone-elses-runner');
    await registrar.stop();
  });

  it('refuses to start when GitHub refuses for good to show the groups', async () => {
    const { registrar } = await registrarFor('refuse', {}, undefined, { runners: { org: 'someone-else' } });
    await expect(registrar.checkPlacements()).rejects.toThrow(
      /^the runner groups cannot be read: GitHub list_runner_groups failed with 404/,
    );
  });
});
