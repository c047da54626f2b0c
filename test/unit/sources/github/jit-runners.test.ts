import { afterEach, describe, expect, it } from 'vitest';
import { decideRunnerCleanup } from '../../../../src/sources/github/runner-cleanup.ts';
import { type Harness, startHarness } from '../../../support/github-harness.ts';

const LABELS = ['self-hosted', 'linux', 'lint'];
const GROUPS_ROUTE = '/orgs/{org}/actions/runner-groups';
const ORG = { scope: 'org', group: 'Default' } as const;

describe('JIT runners', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('registers org runners in the configured group (resolved once) with the class labels', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    const names = ['gantry-lint-fast-0a1b2c3d4e', 'gantry-lint-5f6a7b8c9d'];
    for (const name of names) {
      const runner = await h.source.runners.create({
        name,
        labels: LABELS,
        placement: { scope: 'org', group: 'CI' },
      });
      expect(runner.name).toBe(name);
      expect(runner.scope).toEqual({ kind: 'org', org: 'acme' });
      const config = JSON.parse(Buffer.from(runner.encodedJitConfig, 'base64').toString());
      expect(config).toHaveProperty('.runner');
    }
    const registered = h.fake.runners();
    expect(registered.map((r) => r.name)).toEqual(names);
    expect(registered.every((r) => r.groupId === 2 && r.labels.join() === LABELS.join())).toBe(true);
    expect(h.fake.requests.filter((r) => r.route === GROUPS_ROUTE)).toHaveLength(1);

    // The runner named after its pod takes the job whose labels it has.
    const { jobIds } = h.fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'lint'], count: 1 });
    expect(h.fake.startRunner(names[0] as string)).toBe(jobIds[0]);
  });

  it('refuses an unknown group by name and creates nothing', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    const placement = { scope: 'org', group: 'gpu' } as const;
    await expect(h.source.runners.create({ name: 'gantry-x-1', labels: LABELS, placement })).rejects.toThrow(
      'runner group "gpu" not found in org acme (groups: Default, ci)',
    );
    expect(h.fake.runners()).toEqual([]);
  });

  it('checks the request before sending anything', async () => {
    h = await startHarness({ webhooks: false });
    await expect(h.source.runners.create({ name: 'gantry-x-1', labels: [], placement: ORG })).rejects.toThrow(
      /labels must be 1 to 100/,
    );
    await expect(
      h.source.runners.create({ name: 'other-x-1', labels: LABELS, placement: ORG }),
    ).rejects.toThrow(/must start with "gantry-"/);
    expect(h.fake.requests).toEqual([]);
  });

  it('registers repository runners on the job repository', async () => {
    h = await startHarness({ webhooks: false });
    const placement = { scope: 'repo', repo: 'acme/lib' } as const;
    const runner = await h.source.runners.create({ name: 'gantry-x-2', labels: LABELS, placement });
    expect(runner.scope).toEqual({ kind: 'repo', repo: 'acme/lib' });
    expect(h.fake.runners()[0]?.scope).toEqual({ kind: 'repo', repo: 'acme/lib' });
  });

  it('retries a 5xx with backoff and registers the runner once', async () => {
    h = await startHarness({ webhooks: false });
    await h.source.runners.create({ name: 'gantry-warm-0', labels: LABELS, placement: ORG });
    h.fake.faults.serverErrors = 1;
    await h.source.runners.create({ name: 'gantry-x-1', labels: LABELS, placement: ORG });
    expect(h.fake.runners().filter((r) => r.name === 'gantry-x-1')).toHaveLength(1);
    expect(h.clock.sleeps).toHaveLength(1);
  });

  it('deletes owned runners whose pod is gone or that stay offline, and leaves busy ones', async () => {
    h = await startHarness({
      webhooks: false,
      github: { runners: { org: 'acme', offlineGraceSeconds: 600 } },
    });
    const create = (name: string) => h.source.runners.create({ name, labels: LABELS, placement: ORG });
    await create('gantry-lint-alive');
    await create('gantry-lint-nopod');
    await create('gantry-lint-busy');
    await create('gantry-lint-idle');
    h.fake.registerRunner('someone-elses', LABELS);
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1, durationMs: 3_600_000 });
    h.fake.startRunner('gantry-lint-busy');
    h.fake.startRunner('gantry-lint-idle');

    // Young runners are left alone: their pods may still be starting.
    const pods = new Set(['gantry-lint-alive', 'gantry-lint-idle']);
    const scopes = [{ kind: 'org', org: 'acme' }] as const;
    expect(await h.source.runners.cleanup(pods, scopes)).toEqual({ deleted: [], busy: [], failed: [] });

    await h.advance(11 * 60_000);
    const report = await h.source.runners.cleanup(pods, scopes);
    expect(report.deleted.sort()).toEqual(['gantry-lint-alive', 'gantry-lint-nopod']);
    expect(report.busy).toEqual(['gantry-lint-busy']);
    expect(
      h.fake
        .runners()
        .map((r) => r.name)
        .sort(),
    ).toEqual(['gantry-lint-busy', 'gantry-lint-idle', 'someone-elses']);
    expect(await h.metricValue('gantry_github_runners_deleted_total', { reason: 'pod_gone' })).toBe(1);
    expect(await h.metricValue('gantry_github_runners_deleted_total', { reason: 'offline' })).toBe(1);
  });
});

describe('JIT runner removal and stale names', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('removes one registration, reports a busy runner, and knows an absent one', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    await h.source.runners.create({ name: 'gantry-lint-idle', labels: LABELS, placement: ORG });
    await h.source.runners.create({ name: 'gantry-lint-busy', labels: LABELS, placement: ORG });
    h.fake.queueJobs({ repo: 'acme/app', labels: LABELS, count: 1, durationMs: 3_600_000 });
    h.fake.startRunner('gantry-lint-busy');

    expect(await h.source.runners.remove('gantry-lint-idle', ORG)).toBe('removed');
    expect(await h.source.runners.remove('gantry-lint-busy', ORG)).toBe('busy');
    expect(await h.source.runners.remove('gantry-lint-gone', ORG)).toBe('absent');
    expect(h.fake.runners().map((r) => r.name)).toEqual(['gantry-lint-busy']);
  });

  it('replaces a stale registration of the same name instead of failing', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    const first = await h.source.runners.create({
      name: 'gantry-lint-0123456789',
      labels: LABELS,
      placement: ORG,
    });
    const second = await h.source.runners.create({
      name: 'gantry-lint-0123456789',
      labels: LABELS,
      placement: ORG,
    });
    expect(second.id).not.toBe(first.id);
    expect(h.fake.runners().map((r) => r.id)).toEqual([second.id]);
  });

  it('leaves a registration of the same name in place when asked not to replace it', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    const name = 'gantry-lint-0123456789';
    const first = await h.source.runners.create({ name, labels: LABELS, placement: ORG });
    await expect(
      h.source.runners.create({ name, labels: LABELS, placement: ORG, replaceExisting: false }),
    ).rejects.toMatchObject({ status: 409 });
    expect(h.fake.runners().map((r) => r.id)).toEqual([first.id]);
  });
});

describe('decideRunnerCleanup', () => {
  const base = {
    offlineGraceMs: 600_000,
    createdAt: new Map<string, number>(),
    offlineSince: new Map<string, number>(),
  };
  const runner = (name: string, status: string, busy = false) => ({ id: name.length, name, status, busy });

  it('starts the offline clock at the first sighting and deletes after the grace', () => {
    const first = decideRunnerCleanup({
      ...base,
      runners: [runner('a', 'offline')],
      livePods: new Set(['a']),
      nowMs: 1_000,
    });
    expect(first.remove).toEqual([]);
    expect(first.offlineSince.get('a')).toBe(1_000);
    const later = decideRunnerCleanup({
      ...base,
      offlineSince: first.offlineSince,
      runners: [runner('a', 'offline')],
      livePods: new Set(['a']),
      nowMs: 601_000,
    });
    expect(later.remove.map((r) => r.reason)).toEqual(['offline']);
  });

  it('forgets the offline clock when the runner comes online, and deletes at once when the pod is gone', () => {
    const online = decideRunnerCleanup({
      ...base,
      offlineSince: new Map([['a', 0]]),
      runners: [runner('a', 'online'), runner('b', 'online', true)],
      livePods: new Set(['a']),
      nowMs: 10_000_000,
    });
    expect(online.offlineSince.size).toBe(0);
    expect(online.remove).toEqual([{ runner: runner('b', 'online', true), reason: 'pod_gone' }]);
  });

  it('leaves runners created within the grace', () => {
    const decision = decideRunnerCleanup({
      ...base,
      createdAt: new Map([['a', 0]]),
      runners: [runner('a', 'offline')],
      livePods: new Set(),
      nowMs: 599_999,
    });
    expect(decision.remove).toEqual([]);
  });
});
