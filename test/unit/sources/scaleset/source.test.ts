import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../src/config/load.ts';
import type { CreateRunnerAction } from '../../../../src/model/action.ts';
import type { JobEvent } from '../../../../src/model/job.ts';
import { createScaleSetSource, type ScaleSetSource } from '../../../../src/sources/scaleset/source.ts';
import {
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
  another(identity?: string): { source: ScaleSetSource; events: JobEvent[] };
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
    github?: Record<string, unknown>;
    classes?: Record<string, unknown>;
  } = {},
): Promise<Harness> {
  const fakes = await startScaleSetFakes({
    runnerGroups: [
      {
        name: 'release',
        restrictedToWorkflows: true,
        selectedWorkflows: ['acme/web/.github/workflows/ci.yml@refs/heads/main'],
      },
      { name: 'sandbox', allowsPublicRepositories: true },
    ],
    ...options,
    actions: { longPollMs: 300, ...options.actions },
  });
  const config = parseConfig({
    github: scaleSetGithubConfig(fakes, options.github),
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
  it('creates a scale set per class in its runner group with the class’s labels, and opens a session for each', async () => {
    const h = await harness();
    await h.source.checkPlacements();
    h.source.start();
    await until('three sessions', async () => h.fakes.actions.sessions().length === 3);
    const sets = h.fakes.actions.scaleSets();
    expect(sets.map((s) => [s.name, s.runnerGroupName, s.labels.map((l) => l.name)]).sort()).toEqual([
      ['gantry-lint', 'Default', ['self-hosted', 'lint']],
      ['gantry-release', 'release', ['self-hosted', 'release']],
      ['gantry-sandbox', 'sandbox', ['self-hosted', 'sandbox']],
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
    expect(scaleSetOf(h.fakes, 'lint').labels.map((l) => l.name)).toEqual(['self-hosted', 'lint']);
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
