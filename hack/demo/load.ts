import type { FakeGithub } from '../../test/support/fake-github/index.ts';

/** Bursts of lint jobs, steady integration jobs, a long release job now and then, and a fork PR. */
export function startLoad(fake: FakeGithub) {
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    if (tick % 2 === 0) {
      fake.queueJobs({
        repo: 'acme/web',
        labels: ['self-hosted', 'linux', 'lint'],
        count: 6,
        jobsPerRun: 3,
        durationMs: 4_000,
      });
    }
    fake.queueJobs({
      repo: 'acme/api',
      labels: ['self-hosted', 'linux', 'integration'],
      count: 2,
      durationMs: 12_000,
    });
    if (tick % 10 === 1) {
      fake.queueJobs({
        repo: 'acme/web',
        labels: ['self-hosted', 'linux', 'release'],
        count: 1,
        durationMs: 30_000,
        workflowPath: '.github/workflows/release.yml',
      });
    }
    if (tick % 7 === 3) {
      fake.queueJobs({
        repo: 'acme/docs',
        labels: ['self-hosted', 'linux', 'sandbox'],
        count: 1,
        fromFork: 'mallory/docs',
        durationMs: 5_000,
      });
    }
  }, 2_000);
  return { stop: () => clearInterval(timer) };
}
