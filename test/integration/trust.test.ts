import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/config/load.ts';
import { UnsafePlacementError } from '../../src/sources/github/placement-guard.ts';
import type { FakeGithub } from '../support/fake-github/index.ts';
import {
  ensureSandboxRuntimeClass,
  type GantryEnv,
  leftovers,
  runnerClass,
  SANDBOX,
  startGantryEnv,
} from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// GitHub, not Gantry, picks the runner: any idle one whose labels cover the job's and whose runner
// group admits the job's repository (the fake assigns jobs that way). These tests play an attacker who
// writes their own workflow (runs-on naming a trusted class's labels) in a fork of a public repository.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const cleanup: string[] = [];
beforeAll(() => ensureSandboxRuntimeClass(kc));
afterAll(async () => {
  await Promise.all(cleanup.map((ns) => deleteNamespace(kc, ns)));
});

const LINT = ['self-hosted', 'linux', 'lint'];
const run = promisify(execFile);

/** The org: a private repository, a public one, and the runner groups of the two tiers. */
const fakeOrg = (ci: Record<string, unknown> = {}) => ({
  repos: ['acme/app', 'acme/oss'],
  publicRepos: ['acme/oss'],
  runnerGroups: [
    { name: 'ci', ...ci },
    // The sandbox tier serves the public repository only.
    {
      name: 'sandbox',
      visibility: 'selected' as const,
      selectedRepositories: ['acme/oss'],
      allowsPublicRepositories: true,
    },
  ],
});

async function startEnv(
  classes: (ns: Record<string, string>) => Record<string, unknown>,
  options: { github?: Record<string, unknown>; ci?: Record<string, unknown> } = {},
): Promise<GantryEnv> {
  return startGantryEnv(kc, {
    namespaces: ['trusted', 'sandbox'],
    classes,
    fake: fakeOrg(options.ci),
    ...(options.github ? { github: options.github } : {}),
    cleanup,
  });
}

/** lint keeps two warm runners in the closed group ci; the sandbox class has its own namespace and group. */
const lintClass = (ns: Record<string, string>) =>
  runnerClass(ns.trusted as string, LINT, { runnerGroup: 'ci', minIdle: 2, idleTimeout: '60s' });

const warmLintRunners = (fake: FakeGithub) =>
  fake.runners().filter((r) => r.name.startsWith('gantry-lint-') && r.status === 'online' && !r.busy);

async function violations(env: GantryEnv): Promise<number> {
  const metric = await env.app.metrics.getSingleMetric('gantry_trust_violations_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

describe('a fork of a public repository asks for a trusted class’s labels', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  const variants: [
    string,
    (ns: Record<string, string>) => Record<string, unknown>,
    Record<string, unknown>?,
  ][] = [
    [
      'the sandbox class repeats lint’s labels',
      (ns) => ({ lint: lintClass(ns), sandbox: runnerClass(ns.sandbox as string, LINT, SANDBOX) }),
    ],
    [
      'the sandbox class has a label of its own',
      (ns) => ({
        lint: lintClass(ns),
        sandbox: runnerClass(ns.sandbox as string, ['self-hosted', 'linux', 'sandbox'], SANDBOX),
      }),
    ],
    [
      'public repositories are trusted by policy',
      (ns) => ({ lint: lintClass(ns), sandbox: runnerClass(ns.sandbox as string, LINT, SANDBOX) }),
      { trust: { publicRepositories: 'trusted' } },
    ],
  ];

  for (const [name, classes, github] of variants) {
    it(`never runs it on a warm trusted runner when ${name}`, async () => {
      env = await startEnv(classes, {
        ...(github ? { github } : {}),
        ci: { allowsPublicRepositories: false },
      });
      const { fake } = env;
      await until('two warm lint runners online', async () => warmLintRunners(fake).length === 2, 30_000);
      const [forkJob] = fake.queueJobs({
        repo: 'acme/oss',
        labels: LINT,
        count: 1,
        fromFork: 'mallory/oss',
        durationMs: 500,
      }).jobIds;
      const [ownJob] = fake.queueJobs({ repo: 'acme/oss', labels: LINT, count: 1, durationMs: 500 }).jobIds;
      // Long enough for GitHub (the fake) to hand the jobs to any runner that would take them.
      await until(
        'the fork job ran, or sat queued for 4 s',
        async () => fake.job(forkJob ?? 0)?.status === 'completed',
        4_000,
      ).catch(() => undefined);
      for (const id of [forkJob, ownJob]) {
        const runner = fake.job(id ?? 0)?.runner?.name;
        expect(runner ?? 'none', `job ${id}`).not.toMatch(/^gantry-lint-/);
      }
      // No lint runner took either job (with public repositories trusted, lint plans one for the
      // same-repo job that GitHub never gives it: its group admits no public repository).
      const lintRunners = fake.runners().filter((r) => r.name.startsWith('gantry-lint-'));
      expect(lintRunners.length).toBeGreaterThanOrEqual(2);
      expect(lintRunners.filter((r) => r.busy)).toEqual([]);
      expect(await violations(env)).toBe(0);
    });
  }
});

describe('placements Gantry refuses at start', () => {
  it('refuses an untrusted class in a trusted namespace or runner group, naming both', async () => {
    const problem = startEnv((ns) => ({
      lint: lintClass(ns),
      sandbox: runnerClass(ns.trusted as string, LINT, { ...SANDBOX, runnerGroup: 'CI' }),
    }));
    await expect(problem).rejects.toThrow(ConfigError);
    await expect(problem).rejects.toThrow(
      /classes\.sandbox\.namespace: trusted-\w+ is also the namespace of trusted class lint: an untrusted class needs a namespace of its own .*classes\.sandbox\.runnerGroup: "CI" is also the runner group of trusted class lint/,
    );
  });

  it('refuses a trusted runner group that admits public repositories, and exits 2 as a command', async () => {
    const open = startEnv(
      (ns) => ({ lint: lintClass(ns), sandbox: runnerClass(ns.sandbox as string, LINT, SANDBOX) }),
      {
        ci: { allowsPublicRepositories: true },
      },
    );
    const message =
      'class lint: runner group "ci" admits public repositories (allows_public_repositories is true): fork pull requests of a public repository can take its runners; fix it on GitHub, or set github.trust.unsafePlacement: warn';
    await expect(open).rejects.toThrow(UnsafePlacementError);
    await expect(open).rejects.toThrow(message);

    // The same as the gantry command: one line, exit code 2.
    const { FakeGithub, appKeys, fakeGithubConfig } = await import('../support/fake-github/index.ts');
    const fake = new FakeGithub({
      ...fakeOrg({ allowsPublicRepositories: true }),
      app: { appId: 777, publicKey: appKeys().publicKey },
    });
    await fake.start();
    try {
      const dir = await mkdtemp(join(tmpdir(), 'gantry-trust-'));
      const config = join(dir, 'config.yaml');
      await writeFile(
        config,
        stringify({
          http: { address: '127.0.0.1', port: 0 },
          github: fakeGithubConfig(fake, 777, 'a-webhook-secret-of-thirty-two-bytes!'),
          classes: {
            lint: runnerClass('ci-trusted', LINT, { runnerGroup: 'ci' }),
            sandbox: runnerClass('ci-sandbox', LINT, SANDBOX),
          },
        }),
      );
      const main = new URL('../../src/main.ts', import.meta.url).pathname;
      const exit = await run(process.execPath, [main, '--config', config], {
        timeout: 30_000,
        env: { ...process.env, KUBECONFIG: inject('kubeconfig') },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
      expect(exit).toEqual({ code: 2, stderr: `gantry: ${message}\n` });
    } finally {
      await fake.stop();
    }
  });
});

describe('when GitHub’s side changes after start', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('stops a trusted runner that took a fork job within 2 s, unregisters it and counts it', async () => {
    env = await startEnv((ns) => ({
      lint: lintClass(ns),
      sandbox: runnerClass(ns.sandbox as string, LINT, SANDBOX),
    }));
    const { fake } = env;
    await until('two warm lint runners online', async () => warmLintRunners(fake).length === 2, 30_000);
    // An org owner opens the trusted group to public repositories.
    fake.updateRunnerGroup('ci', { allowsPublicRepositories: true });
    const [forkJob] = fake.queueJobs({
      repo: 'acme/oss',
      labels: LINT,
      count: 1,
      fromFork: 'mallory/oss',
      durationMs: 600_000,
    }).jobIds;
    const taken = fake.job(forkJob ?? 0)?.runner?.name ?? '';
    expect(taken).toMatch(/^gantry-lint-/);
    const startedAt = fake.deliveries.find((d) => d.jobId === forkJob && d.action === 'in_progress')?.at ?? 0;

    const namespace = env.namespaces.trusted as string;
    const stoppedAt = await until(
      'the trusted runner pod stopped',
      async () => {
        const pod = await core.readNamespacedPod({ name: taken, namespace }).catch(() => undefined);
        return !pod || pod.metadata?.deletionTimestamp ? Date.now() : undefined;
      },
      10_000,
      25,
    );
    expect(stoppedAt - startedAt).toBeLessThan(2_000);
    expect(await violations(env)).toBe(1);
    const status = env.app.observers.status();
    expect(status.events.map((e) => e.message)).toContainEqual(
      expect.stringContaining(`TRUST VIOLATION (untrusted-job): acme/oss`),
    );

    // GitHub fails the job of the runner it lost; its registration and Secret go too.
    await until('the fork job failed', async () => fake.job(forkJob ?? 0)?.conclusion === 'failure', 15_000);
    await until(
      'the registration removed',
      async () => !fake.runners().some((r) => r.name === taken),
      20_000,
    );
    await until(
      'nothing of it left',
      async () => {
        const secrets = await core.listNamespacedSecret({ namespace });
        return !secrets.items.some((s) => s.metadata?.name?.startsWith(taken));
      },
      20_000,
    );
    // Every pod left is a registered runner of the warm pool, each with its Secret: nothing orphaned.
    const left = await leftovers(kc, env);
    expect(left.pods).toBe(left.secrets);
    expect(left.githubRunners).toBe(left.pods);
  });
});

describe('caches across trust tiers', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('gives the untrusted class’s runner pods no claim of a trusted class', async () => {
    env = await startEnv((ns) => ({
      lint: runnerClass(ns.trusted as string, LINT, {
        runnerGroup: 'ci',
        caches: [{ name: 'deps', type: 'persistentVolumeClaim', claimName: 'deps' }],
      }),
      sandbox: runnerClass(ns.sandbox as string, LINT, {
        ...SANDBOX,
        caches: [
          { name: 'deps', type: 'persistentVolumeClaim', claimName: 'sandbox-deps' },
          { name: 'scratch', type: 'ephemeral', size: '1Gi', tools: [] },
        ],
      }),
    }));
    const { fake } = env;
    fake.queueJobs({ repo: 'acme/oss', labels: LINT, count: 2, fromFork: 'mallory/oss', durationMs: 60_000 });
    fake.queueJobs({ repo: 'acme/app', labels: LINT, count: 1, durationMs: 60_000 });
    const podsOf = async (namespace: string) =>
      (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' }))
        .items;
    const sandboxPods = await until(
      'the sandbox runner pods',
      async () => {
        const pods = await podsOf(env?.namespaces.sandbox as string);
        return pods.length === 2 ? pods : undefined;
      },
      20_000,
    );
    await until(
      'the trusted runner pod',
      async () => (await podsOf(env?.namespaces.trusted as string)).length === 1,
    );
    for (const pod of sandboxPods) {
      expect(pod.spec?.runtimeClassName).toBe('gvisor');
      const claims = (pod.spec?.volumes ?? []).flatMap((v) =>
        v.persistentVolumeClaim ? [v.persistentVolumeClaim] : [],
      );
      expect(claims).toEqual([{ claimName: 'sandbox-deps', readOnly: true }]);
      const mounts = pod.spec?.containers[0]?.volumeMounts ?? [];
      expect(mounts.find((m) => m.name === 'cache-deps')).toMatchObject({ readOnly: true });
    }
  });
});
