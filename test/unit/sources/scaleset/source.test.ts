import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../src/config/load.ts';
import type { CreateRunnerAction } from '../../../../src/model/action.ts';
import type { JobEvent } from '../../../../src/model/job.ts';
import { RegistrationExistsError } from '../../../../src/ports.ts';
import { createScaleSetSource, type ScaleSetSource } from '../../../../src/sources/scaleset/source.ts';
import {
  RELEASE_AND_SANDBOX_GROUPS,
  type ScaleSetFakes,
  type ScaleSetFakesOptions,
  scaleSetGithubConfig,
  scaleSetOf,
  startScaleSetFakes,
} from '../../../support/scaleset-fakes.ts';
import { until } from '../../../support/until.ts';

// The scale-set source against the fake Actions service (and the fake GitHub behind it): scale sets
// ensured, sessions polled, job messages turned into job events, JIT configs and runner removal.

interface Harness {
  fakes: ScaleSetFakes;
  source: ScaleSetSource;
  events: JobEvent[];
  metrics: Registry;
  /** Another source on the same fakes (a second replica, or the process after a restart). */
  another(identity?: string): { source: ScaleSetSource; events: JobEvent[]; metrics: Registry };
}

const harnesses: Harness[] = [];
const extraSources: ScaleSetSource[] = [];
afterEach(async () => {
  for (const source of extraSources.splice(0)) await source.stop();
  for (const h of harnesses.splice(0)) {
    await h.source.stop();
    await h.fakes.stop();
  }
});

const CLASSES = {
  lint: { match: { github: { labels: ['self-hosted', 'lint'] } } },
  release: {
    match: { github: { labels: ['self-hosted', 'release'] } },
    runnerGroup: 'release',
    trustedOnly: true,
    allowedRefs: ['refs/heads/main'],
  },
  sandbox: {
    match: { github: { labels: ['self-hosted', 'sandbox'] } },
    runnerGroup: 'sandbox',
    namespace: 'sandbox',
    untrusted: true,
    runtimeClassName: 'gvisor',
  },
};

async function harness(
  options: ScaleSetFakesOptions & {
    /** Keys of Gantry's `github` section over the fakes'. */
    gantry?: Record<string, unknown>;
    classes?: Record<string, unknown>;
  } = {},
): Promise<Harness> {
  const fakes = await startScaleSetFakes({
    runnerGroups: RELEASE_AND_SANDBOX_GROUPS,
    ...options,
    actions: { longPollMs: 300, ...options.actions },
  });
  const config = parseConfig({
    github: scaleSetGithubConfig(fakes, options.gantry),
    classes: options.classes ?? CLASSES,
  });
  const make = (identity: string) => {
    const events: JobEvent[] = [];
    const metrics = new Registry();
    const source = createScaleSetSource({
      config: config.github,
      classes: config.classes,
      logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
      metrics,
      onEvent: (event) => events.push(event),
      identity,
    });
    return { source, events, metrics };
  };
  const first = make('replica-a');
  const h: Harness = {
    fakes,
    ...first,
    another(identity = 'replica-b') {
      const made = make(identity);
      extraSources.push(made.source);
      return made;
    },
  };
  harnesses.push(h);
  return h;
}

function createAction(className: string, runnerName: string): CreateRunnerAction {
  return {
    kind: 'create-runner',
    className,
    namespace: 'gantry-runners',
    nameSeed: runnerName,
    runnerName,
    reason: 'queued-jobs',
  };
}

const kinds = (events: readonly JobEvent[], key?: string) =>
  events.filter((e) => key === undefined || e.job.key === key).map((e) => e.kind);

describe('scale-set source: scale sets and sessions', () => {
  it('creates a scale set per class in its runner group with its name and the class’s labels, and opens a session for each', async () => {
    const h = await harness();
    await h.source.checkPlacements();
    h.source.start();
    await until('three sessions', async () => h.fakes.actions.sessions().length === 3);
    const sets = h.fakes.actions.scaleSets();
    expect(sets.map((s) => [s.name, s.runnerGroupName, s.labels.map((l) => l.name)]).sort()).toEqual([
      ['gantry-lint', 'Default', ['gantry-lint', 'self-hosted', 'lint']],
      ['gantry-release', 'release', ['gantry-release', 'self-hosted', 'release']],
      ['gantry-sandbox', 'sandbox', ['gantry-sandbox', 'self-hosted', 'sandbox']],
    ]);
    expect(sets.every((s) => s.disableUpdate)).toBe(true);
    expect(h.fakes.actions.sessions().map((s) => s.ownerName)).toEqual([
      'replica-a',
      'replica-a',
      'replica-a',
    ]);
    await h.source.stop();
    expect(h.fakes.actions.sessions()).toEqual([]);
  });

  it('adopts a scale set of the class’s name and sets its labels to the class’s', async () => {
    const h = await harness();
    const existing = h.fakes.actions.addScaleSet('gantry-lint', { labels: ['old'] });
    h.source.start();
    await until('the session', async () => h.fakes.actions.sessions(existing.id).length === 1);
    expect(h.fakes.actions.scaleSets().filter((s) => s.name === 'gantry-lint')).toHaveLength(1);
    expect(scaleSetOf(h.fakes, 'lint').labels.map((l) => l.name)).toEqual([
      'gantry-lint',
      'self-hosted',
      'lint',
    ]);
  });
});

describe('scale-set source: jobs', () => {
  it('turns a job’s messages into queued, started and completed events, and acknowledges them', async () => {
    const h = await harness();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    const id = h.fakes.actions.queueJob(lint.id, { repository: 'app', eventName: 'push' });
    const key = `github:scaleset/${lint.id}/${id}`;
    await until('queued', async () => kinds(h.events, key).includes('queued'));
    const queued = h.events.find((e) => e.job.key === key);
    expect(queued?.job).toMatchObject({
      repo: 'acme/app',
      requestedClass: 'lint',
      untrusted: false,
      origin: { event: 'push', headBranch: 'main' },
    });
    // A push to a private repository is judged from the message: no run is read.
    expect(h.fakes.github.requests.filter((r) => r.route.includes('/actions/runs/'))).toEqual([]);

    const { encodedJitConfig } = await h.source.registrar.register(
      createAction('lint', 'gantry-lint-r1'),
      {} as never,
    );
    expect(encodedJitConfig.length).toBeGreaterThan(20);
    expect(h.fakes.actions.connectRunner('gantry-lint-r1')).toBe(id);
    await until('started', async () => kinds(h.events, key).includes('started'));
    expect(h.events.find((e) => e.job.key === key && e.kind === 'started')).toMatchObject({
      runnerName: 'gantry-lint-r1',
    });
    h.fakes.actions.completeJob(id);
    await until('completed', async () => kinds(h.events, key).includes('completed'));
    expect(kinds(h.events, key)).toEqual(['queued', 'started', 'completed']);
    await until('every message acknowledged', async () => {
      const delivered = new Set(
        h.fakes.actions.deliveries.filter((d) => d.scaleSetId === lint.id).map((d) => d.messageId),
      );
      return [...delivered].every((m) => h.fakes.actions.acknowledged.includes(m));
    });
    // The capacity sent is the class's maxRunners (no ledger to say otherwise).
    expect(h.fakes.actions.maxCapacity(lint.id)).toBe(10);
  });
});

describe('scale-set source: registrations', () => {
  it('keeps a runner registered under the same name when asked not to replace it (a pod of that name may be using it)', async () => {
    const h = await harness();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    const first = await h.source.registrar.register(createAction('lint', 'gantry-lint-r2'), {} as never);
    const [registered] = h.fakes.actions.runners(lint.id);
    await expect(
      h.source.registrar.register(createAction('lint', 'gantry-lint-r2'), {} as never, {
        replaceExisting: false,
      }),
    ).rejects.toBeInstanceOf(RegistrationExistsError);
    expect(h.fakes.actions.runners(lint.id)).toEqual([registered]);
    // Otherwise a runner of the name is an earlier try's, never started: it is replaced.
    const again = await h.source.registrar.register(createAction('lint', 'gantry-lint-r2'), {} as never);
    expect(again.encodedJitConfig).not.toBe(first.encodedJitConfig);
    expect(h.fakes.actions.runners(lint.id).map((r) => r.id)).not.toContain(registered?.id);
  });
});

describe('scale-set source: trust', () => {
  it('looks up the run of a pull-request job and queues a fork’s job as untrusted; declines to acquire it for a trusted class', async () => {
    const h = await harness();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const { runIds } = h.fakes.github.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'sandbox'],
      count: 1,
      fromFork: 'mallory/app',
    });
    const sandbox = scaleSetOf(h.fakes, 'sandbox');
    const lint = scaleSetOf(h.fakes, 'lint');
    const spec = { repository: 'app', eventName: 'pull_request', workflowRunId: runIds[0] };
    const forSandbox = h.fakes.actions.queueJob(sandbox.id, spec);
    const forLint = h.fakes.actions.queueJob(lint.id, spec);
    const key = `github:scaleset/${sandbox.id}/${forSandbox}`;
    await until('the sandbox job queued', async () => kinds(h.events, key).includes('queued'));
    expect(h.events.find((e) => e.job.key === key)?.job).toMatchObject({
      untrusted: true,
      origin: { event: 'pull_request', untrustedBecause: 'fork' },
      requestedClass: 'sandbox',
    });
    // One look-up of the run serves both jobs.
    expect(h.fakes.github.requests.filter((r) => r.route.endsWith('/actions/runs/{run_id}'))).toHaveLength(1);
    await until(
      'the trusted class’s copy declined',
      async () => h.fakes.actions.job(forLint)?.state === 'available',
    );
    expect(h.fakes.actions.job(forSandbox)?.state).toBe('assigned');
    expect(h.events.some((e) => e.job.key === `github:scaleset/${lint.id}/${forLint}`)).toBe(false);
  });

  it('judges a job of a public repository untrusted from the repository, read once', async () => {
    const h = await harness();
    h.fakes.github.addRepo('acme/oss', false);
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const sandbox = scaleSetOf(h.fakes, 'sandbox');
    const ids = h.fakes.actions.queueJobs(sandbox.id, 3, { repository: 'oss', eventName: 'push' });
    await until('three queued', async () => h.events.filter((e) => e.kind === 'queued').length === 3);
    for (const id of ids) {
      expect(
        h.events.find((e) => e.job.key === `github:scaleset/${sandbox.id}/${id}`)?.job.origin,
      ).toMatchObject({
        untrustedBecause: 'public-repository',
      });
    }
    expect(h.fakes.github.requests.filter((r) => r.route === '/repos/{owner}/{repo}')).toHaveLength(1);
  });
});

describe('scale-set source: what the service gets wrong', () => {
  it('skips a job message it cannot read, naming the field, applies the rest, and leaves the message unacknowledged', async () => {
    const h = await harness();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    h.fakes.actions.injectJobMessages(lint.id, [{ messageType: 'JobAssigned', runnerRequestId: 'seven' }]);
    const id = h.fakes.actions.queueJob(lint.id, { repository: 'app' });
    await until('the good job queued', async () =>
      kinds(h.events, `github:scaleset/${lint.id}/${id}`).includes('queued'),
    );
    const malformed = await h.metrics.getSingleMetric('gantry_scaleset_messages_total')?.get();
    expect(malformed?.values.find((v) => v.labels.result === 'malformed')?.value).toBe(1);
    const bad = h.fakes.actions.deliveries.find((d) =>
      d.jobMessages.some((m) => typeof m.runnerRequestId !== 'number'),
    );
    expect(bad).toBeDefined();
    expect(h.fakes.actions.acknowledged).not.toContain(bad?.messageId);
  });

  it('rides out 5xx answers, expired admin and queue tokens, and a dropped session', async () => {
    const h = await harness();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    h.fakes.actions.faults.serverErrors = 4;
    h.fakes.actions.expireAdminTokens();
    h.fakes.actions.expireQueueTokens();
    const first = h.fakes.actions.queueJob(lint.id, { repository: 'app' });
    await until(
      'queued despite the faults',
      async () => kinds(h.events, `github:scaleset/${lint.id}/${first}`).includes('queued'),
      20_000,
    );
    h.fakes.actions.dropSession(lint.id);
    const second = h.fakes.actions.queueJob(lint.id, { repository: 'lib' });
    await until(
      'queued after a new session',
      async () => kinds(h.events, `github:scaleset/${lint.id}/${second}`).includes('queued'),
      20_000,
    );
    expect(h.fakes.actions.sessions(lint.id)).toHaveLength(1);
    // The first job's message was kept (it waits), so the new session read it again: nothing twice.
    expect(kinds(h.events, `github:scaleset/${lint.id}/${first}`)).toEqual(['queued']);
    const redelivered = await h.metrics.getSingleMetric('gantry_scaleset_messages_total')?.get();
    expect(redelivered?.values.find((v) => v.labels.result === 'redelivered')?.value).toBeGreaterThan(0);
  }, 30_000);
});

describe('scale-set source: sessions across replicas and restarts', () => {
  it('waits out another replica’s session (409) and takes over once it is deleted; the retained messages tell the new holder which jobs wait and run', async () => {
    const h = await harness({ gantry: { scaleSets: { sessionConflictRetrySeconds: 1 } } });
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    const [first, second] = h.fakes.actions.queueJobs(lint.id, 2, { repository: 'app' });
    await until('both queued', async () => h.events.filter((e) => e.kind === 'queued').length === 2);
    await h.source.registrar.register(createAction('lint', 'gantry-lint-busy'), {} as never);
    // The service hands a runner the oldest job.
    expect(h.fakes.actions.connectRunner('gantry-lint-busy')).toBe(first);
    await until('the first started', async () => h.events.some((e) => e.kind === 'started'));

    const b = h.another();
    b.source.start();
    await until('b refused a session', async () => {
      const conflicts = await b.metrics.getSingleMetric('gantry_scaleset_session_conflicts_total')?.get();
      return (conflicts?.values.reduce((sum, v) => sum + v.value, 0) ?? 0) >= 3;
    });
    expect(h.fakes.actions.sessions().every((s) => s.ownerName === 'replica-a')).toBe(true);
    expect(b.events).toEqual([]);
    await h.source.stop();
    await until(
      'b holds the sessions',
      async () =>
        h.fakes.actions.sessions().length === 3 &&
        h.fakes.actions.sessions().every((s) => s.ownerName === 'replica-b'),
    );
    await until('b knows the waiting and the running job', async () => b.events.length >= 2);
    expect(b.events.find((e) => e.kind === 'started')).toMatchObject({
      runnerName: 'gantry-lint-busy',
      job: { key: `github:scaleset/${lint.id}/${first}` },
    });
    expect(b.events.filter((e) => e.kind === 'queued').map((e) => e.job.key)).toEqual(
      expect.arrayContaining([`github:scaleset/${lint.id}/${second}`]),
    );
  }, 30_000);
});

describe('scale-set source: a scale set deleted on GitHub’s side', () => {
  it('creates it again and carries on', async () => {
    const h = await harness({ actions: { pats: ['admin-pat'] } });
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    const lint = scaleSetOf(h.fakes, 'lint');
    // Someone deletes it, as the service's own clean-up of unused scale sets would.
    const { actions } = h.fakes;
    const post = async (url: string, auth: string, body: unknown) =>
      (await (
        await fetch(url, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).json()) as Record<string, string>;
    const registration = await post(
      `${actions.githubApiUrl}/orgs/acme/actions/runners/registration-token`,
      'token admin-pat',
      {},
    );
    const admin = await post(
      `${actions.githubApiUrl}/actions/runner-registration`,
      `RemoteAuth ${registration.token}`,
      {
        url: actions.githubConfigUrl,
        runner_event: 'register',
      },
    );
    const deleted = await fetch(
      `${admin.url}_apis/runtime/runnerscalesets/${lint.id}?api-version=6.0-preview`,
      {
        method: 'DELETE',
        headers: { authorization: `Bearer ${admin.token}` },
      },
    );
    expect(deleted.status).toBe(204);
    const again = await until(
      'a new lint scale set with a session',
      async () => {
        const set = h.fakes.actions.scaleSets().find((s) => s.name === 'gantry-lint');
        return set && set.id !== lint.id && h.fakes.actions.sessions(set.id).length === 1 ? set : undefined;
      },
      20_000,
    );
    const id = h.fakes.actions.queueJob(again.id, { repository: 'app' });
    await until('its job queued', async () =>
      kinds(h.events, `github:scaleset/${again.id}/${id}`).includes('queued'),
    );
  }, 30_000);
});

describe('scale-set source: a personal access token', () => {
  it('registers with the token instead of an App, and needs no repository list', async () => {
    const h = await harness({
      gantry: { auth: { kind: 'token', token: 'ghp_scaleset_bench' } },
      actions: { pats: ['ghp_scaleset_bench'] },
      github: { pats: ['ghp_scaleset_bench'] },
    });
    await h.source.checkPlacements();
    h.source.start();
    await until('sessions', async () => h.fakes.actions.sessions().length === 3);
    expect(
      h.fakes.actions.requests.some((r) => r.route.endsWith('/registration-token') && r.status === 201),
    ).toBe(true);
  });
});
