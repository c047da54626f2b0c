import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type GantryEnv, leftovers, runnerClass, startGantryEnv } from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// A runner image that cannot be pulled, as a kubelet reports it (KWOK's gantry-image-pull-failure
// stage: ErrImagePull, then ImagePullBackOff, for images under unpullable.invalid): Gantry fails the
// runner within seconds with the kubelet's reason, counts it, and holds the class rather than
// creating a pod per waiting job on every pass. Other classes go on.

const kc = testKubeConfig();
const cleanup: string[] = [];
afterAll(async () => {
  await Promise.all(cleanup.map((ns) => deleteNamespace(kc, ns)));
});

const UNPULLABLE = 'registry.unpullable.invalid/actions-runner:2';

describe('runner images that do not pull', () => {
  let env: GantryEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('fails the runner within seconds, holds its class with back-off, and leaves other classes alone', async () => {
    env = await startGantryEnv(kc, {
      namespaces: ['main'],
      classes: ({ main }) => ({
        broken: runnerClass(main as string, ['self-hosted', 'broken'], { image: UNPULLABLE }),
        proxied: runnerClass(main as string, ['self-hosted', 'proxied'], {
          sidecars: [{ name: 'proxy', image: 'registry.unpullable.invalid/proxy:1' }],
        }),
        lint: runnerClass(main as string, ['self-hosted', 'lint']),
      }),
      cleanup,
    });
    const { fake, simulator, app } = env;
    const broken = fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'broken'], count: 3 }).jobIds;
    const queuedAt = Date.now();
    const events = () => app.observers.status().events.map((e) => e.message);
    const failed = await until('the image failure reported', async () =>
      events().find((m) => m.startsWith('runner failed to start, ErrImagePull (container runner)')),
    );
    const detectedInMs = Date.now() - queuedAt;
    expect(failed).toContain(`failed to pull and unpack image "${UNPULLABLE}"`);
    expect(detectedInMs).toBeLessThan(10_000);
    const failures = async (className: string) =>
      (await app.metrics.getSingleMetric('gantry_runner_start_failures_total')?.get())?.values.find(
        (v) => v.labels.class === className && v.labels.reason === 'image-pull',
      )?.value ?? 0;
    expect(await failures('broken')).toBeGreaterThanOrEqual(1);

    // A sidecar whose image does not pull keeps the runner from starting just the same.
    fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'proxied'], count: 1 });
    await until('the sidecar’s failure reported', async () =>
      events().find((m) => m.startsWith('runner failed to start, ErrImagePull (container proxy)')),
    );

    // The other class is not held: its job runs meanwhile.
    const [lintJob] = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'lint'],
      count: 1,
      durationMs: 300,
    }).jobIds;
    await until('the lint job ran', async () => fake.job(lintJob ?? 0)?.conclusion === 'success', 20_000);

    // Held with back-off: over 12 s the three jobs got the first burst of three pods and then a
    // single probe per hold (5 s, then 10 s), not a new pod per job on every pass (0.5 s).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, queuedAt + 12_000 - Date.now())));
    const podsOfBroken = [...simulator.podsSeen.values()].filter((c) => c === 'broken').length;
    expect(podsOfBroken).toBeGreaterThanOrEqual(4);
    expect(podsOfBroken).toBeLessThanOrEqual(5);
    expect(broken.map((id) => fake.job(id)?.status)).toEqual(['queued', 'queued', 'queued']);
    expect(simulator.killedMidJob.size).toBe(0);

    // Nothing of the failed runners is left behind but the one probe the hold allows.
    await until('failed runner pods and registrations removed', async () => {
      const left = await leftovers(kc, env as GantryEnv);
      return left.pods <= 2 && left.githubRunners <= 2 ? left : undefined;
    });
  }, 60_000);
});
