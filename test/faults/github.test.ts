import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runScenario, type Scenario, SOAK } from './harness.ts';
import { describeCodes, floodWebhooks } from './inject.ts';

// GitHub fails under Gantry, through the fake's fault knobs: an outage of 5xx answers, answers
// slower than Gantry's timeout and then merely slow, the quota spent (primary and secondary
// limits), ETags that never match, and a flood of duplicate and forged webhook deliveries.
//
// While GitHub fails, the workflow run of a newly announced job cannot be looked up: Gantry holds
// the job until it can, rather than guess. No job of these scenarios comes from a fork, so none may
// run on the untrusted class (the harness checks).

/** Keeps a fault on for `ms` while jobs keep coming, then lifts it; notes the runner pods made meanwhile. */
async function during(
  s: Scenario,
  ms: number,
  jobs: number,
  lift: () => void,
): Promise<{ podsMade: number }> {
  const podsBefore = s.podsSeen();
  const batches = 4;
  for (let i = 0; i < batches; i++) {
    s.queue(Math.ceil(jobs / batches));
    await sleep(ms / batches);
  }
  lift();
  return { podsMade: s.podsSeen() - podsBefore };
}

describe('GitHub faults', () => {
  it('5xx from every API call for a while: runners wait, then every job runs', async () => {
    const outageMs = SOAK ? 60_000 : 8_000;
    await runScenario(
      {
        name: 'github-5xx',
        fault: `GitHub answers 502 to every API call for ${outageMs / 1000} s mid-burst`,
      },
      async (s) => {
        await s.startReplica();
        s.queue(SOAK ? 60 : 12);
        await s.waitForRunnerPods(3);
        s.fake.faults.outageUntil = Date.now() + outageMs;
        const { podsMade } = await during(s, outageMs, SOAK ? 60 : 12, () => {
          s.fake.faults.outageUntil = 0;
        });
        s.notes.push(`${podsMade} runner pods made and removed during the outage`);
      },
    );
  });

  it('answers slower than the timeout, then slow ones: calls are retried, nothing is registered twice', async () => {
    const phaseMs = SOAK ? 40_000 : 6_000;
    await runScenario(
      {
        name: 'github-slow',
        fault: `GitHub answers after 4 s (Gantry's timeout: 3 s) for ${phaseMs / 1000} s, then after 1.5 s for ${phaseMs / 1000} s`,
        githubTimeoutSeconds: 3,
        // A registration now takes up to about 25 s (three timed-out attempts, then a 409 for the name
        // the first attempt did register). The runner pod, made before it, must not be judged stuck
        // meanwhile: Running without its JIT config counts as idle from the start of its pod.
        startTimeoutSeconds: 40,
      },
      async (s) => {
        await s.startReplica();
        s.queue(SOAK ? 40 : 8);
        await s.waitForRunnerPods(3);
        s.fake.faults.latencyMs = 4_000;
        await during(s, phaseMs, SOAK ? 40 : 8, () => {
          s.fake.faults.latencyMs = 1_500;
        });
        await during(s, phaseMs, SOAK ? 40 : 8, () => {
          s.fake.faults.latencyMs = 0;
        });
        const timeouts = await s.metric('gantry_github_requests_total', ['code="timeout"']);
        s.notes.push(`${timeouts} GitHub requests timed out`);
        expect(timeouts).toBeGreaterThan(0);
      },
    );
  });

  it('rate limit exhausted, then secondary limits: Gantry holds its requests until the reset', async () => {
    const blockedMs = SOAK ? 60_000 : 8_000;
    await runScenario(
      {
        name: 'rate-limit',
        fault: `primary quota spent (reset in ${blockedMs / 1000} s), then 3 secondary-limit refusals (Retry-After 2 s)`,
      },
      async (s) => {
        await s.startReplica();
        s.queue(SOAK ? 40 : 10);
        await s.waitForRunnerPods(3);
        s.fake.exhaustQuota(undefined, blockedMs);
        const requestsBefore = s.fake.requests.length;
        const { podsMade } = await during(s, blockedMs, SOAK ? 40 : 10, () => {});
        const refused = s.fake.requests.slice(requestsBefore).filter((r) => r.status === 403).length;
        s.notes.push(
          `${refused} requests refused while the quota was spent, ${podsMade} runner pods made meanwhile`,
        );
        // A client that respects the limit stops after the first refusals instead of retrying on.
        expect(refused).toBeLessThan(20);
        s.fake.faults.secondaryLimit = { count: 3, status: 403, retryAfterSeconds: 2 };
        s.queue(SOAK ? 40 : 10);
      },
    );
  });

  it('ETag churn: no conditional request is ever answered 304, webhooks partly lost', async () => {
    await runScenario(
      {
        name: 'etag-churn',
        fault: 'every response a fresh ETag (no 304) and a third of the webhooks dropped',
      },
      async (s) => {
        s.fake.faults.etagChurn = true;
        await s.startReplica();
        const rounds = SOAK ? 12 : 3;
        for (let i = 0; i < rounds; i++) {
          // Every third batch announces nothing: only the poller, whose lists are never 304, finds it.
          s.fake.faults.dropWebhooks = i % 3 === 2;
          s.queue(SOAK ? 30 : 8);
          s.fake.faults.dropWebhooks = false;
          await sleep(3_000);
        }
        await s.waitCompleted();
        const points = s.fake.quotaUsed();
        const notModified = s.fake.requests.filter((r) => r.status === 304).length;
        s.notes.push(`${points} quota points for ${s.jobs.length} jobs, ${notModified} answers 304`);
        expect(notModified).toBe(0);
      },
    );
  });

  it('fork jobs asking for trusted labels, mixed with trusted ones, while webhooks are lost', async () => {
    await runScenario(
      {
        name: 'forks-webhook-loss',
        fault:
          'fork jobs of a public repository with a trusted class’s runs-on among trusted jobs; half the webhooks dropped',
      },
      async (s) => {
        await s.startReplica();
        const rounds = SOAK ? 10 : 4;
        for (let i = 0; i < rounds; i++) {
          // Every other batch announces nothing: the poller finds those jobs, and their runs' origin.
          s.fake.faults.dropWebhooks = i % 2 === 1;
          s.queue(SOAK ? 20 : 6);
          s.queueForks(SOAK ? 6 : 2);
          s.fake.faults.dropWebhooks = false;
          await sleep(2_000);
        }
        await s.waitCompleted();
        // The harness fails the scenario on a fork job run by a trusted runner, a trusted job run by
        // the sandbox, or any trust violation Gantry counted.
        s.notes.push(`${s.forkJobs.length} fork jobs, all on the untrusted class`);
      },
    );
  });

  it('webhook flood: duplicates, re-signed copies, forged signatures and garbage', async () => {
    const flood = SOAK ? 20_000 : 1_500;
    await runScenario(
      { name: 'webhook-flood', fault: `${flood} extra deliveries at 32 at once while 20 jobs run` },
      async (s) => {
        const replica = await s.startReplica();
        s.queue(20, { durationMs: 1_500 });
        await s.fake.flushWebhooks();
        const codes = await floodWebhooks(s, replica, flood);
        s.notes.push(describeCodes(codes));
        for (const key of codes.keys()) {
          expect(['redelivery 200', 're-signed 202', 'forged 401', 'garbage 400']).toContain(key);
        }
        await s.waitCompleted();
        // Copies of a job's deliveries do not make it a second runner.
        expect(s.podsSeen()).toBe(s.jobs.length);
      },
    );
  });
});
