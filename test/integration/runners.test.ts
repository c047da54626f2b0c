import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeGithubOptions } from '../support/fake-github/index.ts';
import {
  ensureSandboxRuntimeClass,
  type GantryEnv,
  leftovers,
  runnerClass,
  SANDBOX,
  startGantryEnv,
} from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// Gantry end to end: the fake GitHub queues jobs and sends signed webhooks to Gantry's HTTP surface;
// Gantry classifies them, registers JIT runners and launches runner pods on the real apiserver,
// where KWOK runs them; the simulated runner process takes its job; everything is cleaned up.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);

type Env = GantryEnv;
const namespacesToDelete: string[] = [];
beforeAll(() => ensureSandboxRuntimeClass(kc));
afterAll(async () => {
  await Promise.all(namespacesToDelete.map((ns) => deleteNamespace(kc, ns)));
});

/** Gantry with `classes` in two fresh namespaces (main, release) against a fresh fake GitHub. */
async function startEnv(
  classes: (ns: { main: string; release: string }) => Record<string, unknown>,
  fake: Partial<FakeGithubOptions> = {},
  controller: Record<string, unknown> = {},
): Promise<Env> {
  return startGantryEnv(kc, {
    namespaces: ['main', 'release'],
    classes: (ns) => classes({ main: ns.main as string, release: ns.release as string }),
    fake,
    controller,
    cleanup: namespacesToDelete,
  });
}

async function stopEnv(env: Env | undefined): Promise<void> {
  await env?.stop();
}

const leftoversOf = (env: Env) => leftovers(kc, env);

describe('GitHub jobs to runner pods', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await stopEnv(env);
    env = undefined;
  });

  it('runs 30 mixed jobs on 30 runner pods of the right classes and leaves nothing behind', async () => {
    env = await startEnv(({ main, release }) => ({
      lint: runnerClass(main, ['self-hosted', 'lint']),
      integration: runnerClass(main, ['self-hosted', 'integration']),
      release: runnerClass(release, ['self-hosted', 'release'], {
        runnerGroup: 'release',
        trustedOnly: true,
      }),
    }));
    const { fake, simulator } = env;
    const jobs = [
      ...fake.queueJobs({
        repo: 'acme/app',
        labels: ['self-hosted', 'lint'],
        count: 10,
        jobsPerRun: 5,
        durationMs: 1_000,
      }).jobIds,
      ...fake.queueJobs({
        repo: 'acme/lib',
        labels: ['self-hosted', 'integration'],
        count: 10,
        durationMs: 1_000,
      }).jobIds,
      ...fake.queueJobs({
        repo: 'acme/web',
        labels: ['self-hosted', 'release'],
        count: 10,
        jobsPerRun: 2,
        durationMs: 1_000,
      }).jobIds,
    ];
    await until(
      'all 30 jobs completed',
      async () => jobs.every((id) => fake.job(id)?.status === 'completed'),
      90_000,
    );
    expect(jobs.map((id) => fake.job(id)?.conclusion)).toEqual(jobs.map(() => 'success'));

    // Each job ran on a runner of its class.
    for (const id of jobs) {
      const job = fake.job(id);
      const runnerClassName = simulator.classOfRunner(job?.runner?.name);
      expect(runnerClassName, `job ${id} (${job?.labels.join(',')}) ran on ${job?.runner?.name}`).toBe(
        job?.labels[1],
      );
    }
    const perClass = (name: string) => [...simulator.podsSeen.values()].filter((c) => c === name).length;
    expect([perClass('lint'), perClass('integration'), perClass('release')]).toEqual([10, 10, 10]);
    expect(simulator.killedMidJob.size).toBe(0);

    await until(
      'pods, secrets and GitHub runners cleaned up',
      async () => {
        const left = await leftoversOf(env as Env);
        return left.pods === 0 && left.secrets === 0 && left.githubRunners === 0 ? left : undefined;
      },
      60_000,
    );
  });
});

describe('limits under a burst', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await stopEnv(env);
    env = undefined;
  });

  it('holds maxRunners and the namespace quota through 200 jobs, and runs every job', async () => {
    env = await startEnv(({ main, release }) => ({
      // Bound by the namespace quota (12 pods) before its own maxRunners.
      lint: runnerClass(main, ['self-hosted', 'lint'], { maxRunners: 20, maxCreatePerSecond: 50 }),
      // Bound by its maxRunners, with no quota in its namespace.
      integration: runnerClass(release, ['self-hosted', 'integration'], {
        maxRunners: 6,
        maxCreatePerSecond: 50,
      }),
    }));
    const { main, release: other } = env.namespaces as { main: string; release: string };
    await core.createNamespacedResourceQuota({
      namespace: main,
      body: { metadata: { name: 'runners' }, spec: { hard: { pods: '12' } } },
    });
    const { fake, simulator } = env;
    const jobs = [
      ...fake.queueJobs({
        repo: 'acme/app',
        labels: ['self-hosted', 'lint'],
        count: 140,
        jobsPerRun: 20,
        durationMs: 300,
      }).jobIds,
      ...fake.queueJobs({
        repo: 'acme/lib',
        labels: ['self-hosted', 'integration'],
        count: 60,
        jobsPerRun: 20,
        durationMs: 300,
      }).jobIds,
    ];
    await until(
      'all 200 jobs completed',
      async () => jobs.every((id) => fake.job(id)?.status === 'completed'),
      Number(process.env.BURST_TIMEOUT ?? 240_000),
    );
    expect(simulator.maxAlive(main)).toBeLessThanOrEqual(12);
    expect(simulator.maxAlive(main)).toBeGreaterThan(6);
    expect(simulator.maxAlive(other)).toBeLessThanOrEqual(6);
    expect(simulator.maxAlive(other)).toBeGreaterThan(1);
    expect(simulator.podsSeen.size).toBeGreaterThanOrEqual(200);
    expect(simulator.killedMidJob.size).toBe(0);
    await until('every runner pod removed', async () => (await leftoversOf(env as Env)).pods === 0, 60_000);
  }, 300_000);
});

describe('faults end in the right state', () => {
  let env: Env;
  beforeAll(async () => {
    // Fork pull requests of a public repository reach only the sandbox group's runners.
    env = await startEnv(
      ({ main, release }) => ({
        lint: runnerClass(main, ['self-hosted', 'lint']),
        forks: runnerClass(release, ['self-hosted', 'lint'], SANDBOX),
        huge: runnerClass(main, ['self-hosted', 'huge'], {
          resources: { requests: { cpu: '500', memory: '1Gi' }, limits: { memory: '1Gi' } },
        }),
        short: runnerClass(main, ['self-hosted', 'short'], { activeDeadlineSeconds: 2 }),
      }),
      {
        repos: ['acme/app', 'acme/oss'],
        publicRepos: ['acme/oss'],
        runnerGroups: [{ name: 'sandbox', allowsPublicRepositories: true }],
      },
      // A pod no node fits waits for a node this long (4 s is the start timeout here).
      { capacityTimeoutSeconds: 10 },
    );
  });
  afterAll(async () => {
    await stopEnv(env);
  });

  const podsOf = async (className: string) =>
    (
      await core.listNamespacedPod({
        namespace: env.namespaces.main as string,
        labelSelector: `gantry.dev/class=${className}`,
      })
    ).items;

  it('sends a fork pull request job to the untrusted class', async () => {
    const [id] = env.fake.queueJobs({
      repo: 'acme/oss',
      labels: ['self-hosted', 'lint'],
      count: 1,
      fromFork: 'mallory/oss',
      durationMs: 500,
    }).jobIds;
    await until('fork job completed', async () => env.fake.job(id ?? 0)?.status === 'completed', 30_000);
    expect(env.simulator.classOfRunner(env.fake.job(id ?? 0)?.runner?.name)).toBe('forks');
  });

  it('forgets a runner whose pod is deleted mid-job and launches nothing for the started job', async () => {
    const [id] = env.fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'lint'],
      count: 1,
      durationMs: 600_000,
    }).jobIds;
    const runner = await until('job running', async () => env.fake.job(id ?? 0)?.runner?.name);
    await core.deleteNamespacedPod({
      name: runner,
      namespace: env.namespaces.main as string,
      gracePeriodSeconds: 0,
    });
    await until(
      'runner gone from the ledger',
      async () => !env.app.runners?.ledger.runnerObservation(runner),
    );
    await until('its JIT secret collected', async () => {
      const secrets = await core.listNamespacedSecret({
        namespace: env.namespaces.main as string,
        labelSelector: `gantry.dev/runner=${runner}`,
      });
      return secrets.items.length === 0;
    });
    // The job had started: no runner is launched for it again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await podsOf('lint')).filter((p) => p.metadata?.deletionTimestamp === undefined)).toEqual([]);
  });

  it('lets a runner pod no node fits wait for capacity past the start timeout, then replaces it', async () => {
    const [id] = env.fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'huge'], count: 1 }).jobIds;
    const first = await until('an unschedulable runner pod', async () => {
      const pods = await podsOf('huge');
      return pods.find((p) =>
        p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
      );
    });
    const name = first.metadata?.name;
    const createdAt = first.metadata?.creationTimestamp?.getTime() ?? Date.now();
    const waiting = async () =>
      (await env.app.metrics.getSingleMetric('gantry_runners_waiting_for_capacity')?.get())?.values.find(
        (v) => v.labels.class === 'huge',
      )?.value;
    // Past the start timeout (4 s) it is still there, counted as waiting for a node, not stuck.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, createdAt + 6_000 - Date.now())));
    expect((await podsOf('huge')).map((p) => p.metadata?.name)).toContain(name);
    expect(await waiting()).toBe(1);
    await until(
      'the pod replaced once the capacity timeout (10 s) passed',
      async () => {
        const names = (await podsOf('huge')).map((p) => p.metadata?.name);
        return !names.includes(name) && names.length > 0;
      },
      30_000,
    );
    expect(Date.now() - createdAt).toBeGreaterThanOrEqual(10_000);
    expect(env.fake.job(id ?? 0)?.status).toBe('queued');
  });

  it('removes a busy runner that outlives its activeDeadlineSeconds', async () => {
    const [id] = env.fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'short'],
      count: 1,
      durationMs: 600_000,
    }).jobIds;
    const runner = await until('job running', async () => env.fake.job(id ?? 0)?.runner?.name);
    await until(
      'the overdue runner pod removed',
      async () => {
        const names = (await podsOf('short')).map((p) => p.metadata?.name);
        return !names.includes(runner);
      },
      30_000,
    );
  });
});

describe('restart', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await stopEnv(env);
    env = undefined;
  });

  it('rebuilds its state from the cluster and GitHub: nothing launched twice, nothing lost', async () => {
    env = await startEnv(({ main }) => ({ lint: runnerClass(main, ['self-hosted', 'lint']) }));
    const { fake, simulator } = env;
    const long = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'lint'],
      count: 4,
      durationMs: 8_000,
    }).jobIds;
    await until(
      '4 jobs running',
      async () => long.every((id) => fake.job(id)?.status === 'in_progress'),
      30_000,
    );

    // A new Gantry process replaces the old one while the jobs run.
    const restarted = await env.restart();
    expect([...(restarted.runners?.ledger.runnerNames() ?? [])]).toHaveLength(4);

    // Jobs queued while it was away, and after, all get runners; the busy ones are left alone.
    const later = fake.queueJobs({
      repo: 'acme/lib',
      labels: ['self-hosted', 'lint'],
      count: 3,
      durationMs: 500,
    }).jobIds;
    await until(
      'all jobs completed',
      async () => [...long, ...later].every((id) => fake.job(id)?.status === 'completed'),
      60_000,
    );
    expect(simulator.podsSeen.size).toBe(7);
    expect(simulator.killedMidJob.size).toBe(0);
    expect(long.map((id) => fake.job(id)?.conclusion)).toEqual(['success', 'success', 'success', 'success']);
    await until('every runner pod removed', async () => (await leftoversOf(env as Env)).pods === 0, 30_000);
  });
});
