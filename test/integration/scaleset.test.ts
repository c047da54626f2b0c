import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureSandboxRuntimeClass, runnerClass, SANDBOX } from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { type ScaleSetEnv, type ScaleSetEnvOptions, startScaleSetEnv } from '../support/scaleset-env.ts';

// Gantry end to end in scale-set mode: the fake Actions service assigns jobs to the classes' scale
// sets and talks to Gantry only through the message sessions Gantry holds; Gantry gets JIT configs
// from the scale sets, launches runner pods on the real apiserver (KWOK runs them) and removes
// runners through the service. The same scenarios as the webhook mode's runners.test.ts.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const namespacesToDelete: string[] = [];
beforeAll(() => ensureSandboxRuntimeClass(kc));
afterAll(async () => {
  await Promise.all(namespacesToDelete.map((ns) => deleteNamespace(kc, ns)));
});

let env: ScaleSetEnv | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

const start = (options: Omit<ScaleSetEnvOptions, 'cleanup'>) =>
  startScaleSetEnv(kc, { ...options, cleanup: namespacesToDelete });

async function leftovers(current: ScaleSetEnv) {
  let pods = 0;
  let secrets = 0;
  for (const namespace of Object.values(current.namespaces)) {
    const selector = { namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' };
    pods += (await core.listNamespacedPod(selector)).items.length;
    secrets += (await core.listNamespacedSecret(selector)).items.length;
  }
  return { pods, secrets, runners: current.fakes.actions.runners().length };
}

const done = (current: ScaleSetEnv, ids: readonly number[]) =>
  ids.every((id) => current.fakes.actions.job(id)?.state === 'completed');

describe('scale sets: jobs to runner pods', () => {
  it('runs 30 mixed jobs on 30 runner pods of the right classes and leaves nothing behind', async () => {
    env = await start({
      namespaces: ['main', 'release'],
      classes: ({ main, release }) => ({
        lint: runnerClass(main as string, ['self-hosted', 'lint']),
        integration: runnerClass(main as string, ['self-hosted', 'integration']),
        release: runnerClass(release as string, ['self-hosted', 'release'], {
          runnerGroup: 'release',
          trustedOnly: true,
          allowedRefs: ['refs/heads/main'],
        }),
      }),
    });
    const current = env;
    const jobs = {
      lint: current.queue('lint', 10, { repository: 'app' }),
      integration: current.queue('integration', 10, { repository: 'lib' }),
      release: current.queue('release', 10, { repository: 'web' }),
    };
    const all = Object.values(jobs).flat();
    await until('all 30 jobs completed', async () => done(current, all), 90_000);
    for (const [className, ids] of Object.entries(jobs)) {
      for (const id of ids) expect(current.simulator.classOfJob(id), `job ${id}`).toBe(className);
    }
    const perClass = (name: string) =>
      [...current.simulator.podsSeen.values()].filter((c) => c === name).length;
    expect([perClass('lint'), perClass('integration'), perClass('release')]).toEqual([10, 10, 10]);
    expect(current.simulator.killedMidJob.size).toBe(0);
    await until(
      'pods, secrets and registrations cleaned up',
      async () => {
        const left = await leftovers(current);
        return left.pods === 0 && left.secrets === 0 && left.runners === 0 ? left : undefined;
      },
      60_000,
    );
    // No REST call per job: the run look-ups of the trusted-only class's ten jobs share one run.
    const runLookups = current.fakes.github.requests.filter((r) =>
      r.route.endsWith('/actions/runs/{run_id}'),
    );
    expect(runLookups.length).toBeLessThanOrEqual(1);
  });
});

describe('scale sets: limits under a burst', () => {
  it('holds maxRunners and the namespace quota through 200 jobs, and runs every job', async () => {
    env = await start({
      namespaces: ['main', 'other'],
      classes: ({ main, other }) => ({
        lint: runnerClass(main as string, ['self-hosted', 'lint'], {
          maxRunners: 20,
          maxCreatePerSecond: 50,
        }),
        integration: runnerClass(other as string, ['self-hosted', 'integration'], {
          maxRunners: 6,
          maxCreatePerSecond: 50,
        }),
      }),
    });
    const current = env;
    const { main, other } = current.namespaces as { main: string; other: string };
    await core.createNamespacedResourceQuota({
      namespace: main,
      body: { metadata: { name: 'runners' }, spec: { hard: { pods: '12' } } },
    });
    const jobs = [
      ...current.queue('lint', 140, { repository: 'app', durationMs: 300 }),
      ...current.queue('integration', 60, { repository: 'lib', durationMs: 300 }),
    ];
    await until(
      'all 200 jobs completed',
      async () => done(current, jobs),
      Number(process.env.BURST_TIMEOUT ?? 240_000),
    );
    expect(current.simulator.maxAlive(main)).toBeLessThanOrEqual(12);
    expect(current.simulator.maxAlive(main)).toBeGreaterThan(6);
    expect(current.simulator.maxAlive(other)).toBeLessThanOrEqual(6);
    expect(current.simulator.maxAlive(other)).toBeGreaterThan(1);
    expect(current.simulator.podsSeen.size).toBeGreaterThanOrEqual(200);
    expect(current.simulator.killedMidJob.size).toBe(0);
    // The service never had more jobs assigned to a scale set than it said it could take.
    const sent = current.fakes.actions.requests
      .filter((r) => r.maxCapacity !== null)
      .map((r) => r.maxCapacity ?? 0);
    expect(Math.max(...sent)).toBeLessThanOrEqual(20);
    await until('every runner pod removed', async () => (await leftovers(current)).pods === 0, 60_000);
  }, 300_000);
});

describe('scale sets: restart', () => {
  it('rebuilds its state from the cluster and the kept messages: nothing launched twice, nothing lost', async () => {
    env = await start({
      namespaces: ['main'],
      classes: ({ main }) => ({ lint: runnerClass(main as string, ['self-hosted', 'lint']) }),
    });
    const current = env;
    const long = current.queue('lint', 4, { repository: 'app', durationMs: 8_000 });
    await until(
      '4 jobs running',
      async () => long.every((id) => current.fakes.actions.job(id)?.state === 'running'),
      30_000,
    );
    const restarted = await current.restart();
    expect([...(restarted.runners?.ledger.runnerNames() ?? [])]).toHaveLength(4);
    // The kept messages told the new process which runners are busy: none of them counts as idle.
    await until('the busy runners known', async () => {
      const views = restarted.runners?.ledger.snapshot(current.config.classes, Date.now()).classes.lint
        ?.runners;
      return views?.length === 4 && views.every((r) => r.state === 'busy');
    });
    const later = current.queue('lint', 3, { repository: 'lib', durationMs: 500 });
    await until('all jobs completed', async () => done(current, [...long, ...later]), 60_000);
    expect(current.simulator.podsSeen.size).toBe(7);
    expect(current.simulator.killedMidJob.size).toBe(0);
    await until('every runner pod removed', async () => (await leftovers(current)).pods === 0, 30_000);
  });
});

describe('scale sets: trust', () => {
  const classes = ({ main, sandbox }: Record<string, string>) => ({
    lint: runnerClass(main as string, ['self-hosted', 'lint'], { minIdle: 1 }),
    forks: runnerClass(sandbox as string, ['self-hosted', 'forks'], SANDBOX),
  });

  it('runs a fork’s pull request in the sandbox; a trusted class’s scale set does not acquire one (GHES)', async () => {
    env = await start({ namespaces: ['main', 'sandbox'], classes });
    const current = env;
    const [inSandbox] = current.queue('forks', 1, { repository: 'app', fromFork: 'mallory/app' });
    const [onTrusted] = current.queue('lint', 1, { repository: 'app', fromFork: 'mallory/app' });
    await until('the sandbox job completed', async () => done(current, [inSandbox ?? 0]), 30_000);
    expect(current.simulator.classOfJob(inSandbox ?? 0)).toBe('forks');
    // Left for a runner that may take it: never assigned to the trusted scale set.
    expect(current.fakes.actions.job(onTrusted ?? 0)?.state).toBe('available');
  });

  it('stops the warm trusted runner that github.com gave a fork’s job (no acquisition step there)', async () => {
    env = await start({ namespaces: ['main', 'sandbox'], classes, actions: { acquisition: 'immediate' } });
    const current = env;
    await until(
      'a warm lint runner',
      async () => current.fakes.actions.runners().some((r) => r.status === 'online'),
      30_000,
    );
    const [onTrusted] = current.queue('lint', 1, {
      repository: 'app',
      fromFork: 'mallory/app',
      durationMs: 60_000,
    });
    await until(
      'a trust violation counted',
      async () => {
        const metric = await current.app.metrics.getSingleMetric('gantry_trust_violations_total')?.get();
        return (metric?.values.find((v) => v.labels.class === 'lint')?.value ?? 0) >= 1;
      },
      30_000,
    );
    await until(
      'the job failed with its runner',
      async () => current.fakes.actions.job(onTrusted ?? 0)?.state === 'completed',
      30_000,
    );
    expect(current.fakes.actions.job(onTrusted ?? 0)?.result).toBe('failed');
  });
});
