import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { runScenario, type Scenario, SOAK } from './harness.ts';
import { describeCodes, floodWebhooks, pauseEtcd, restartApiserver } from './inject.ts';
import type { GantryProcess } from './replica.ts';

// The long form, run by hand (npm run faults -- --soak): two replicas take a steady stream of jobs
// (5,000 by default, --jobs N) while every fault is injected in turn, 15 s apart, until the last
// job is queued; then everything must complete and drain like in any scenario.

const JOBS = Number(process.env.GANTRY_FAULTS_SOAK_JOBS ?? 5_000);
/** Jobs queued and not yet done that the stream keeps waiting, about three times the runners. */
const BACKLOG = 80;
const GAP_MS = 15_000;

interface Fault {
  name: string;
  run(s: Scenario): Promise<void>;
}

/** A replica that still runs; webhooks go to one of them. */
function anyLive(s: Scenario): GantryProcess {
  const replica = s.live()[0];
  if (!replica) throw new Error('no Gantry replica runs');
  return replica;
}

const faults: Fault[] = [
  {
    name: 'GitHub 5xx for 30 s',
    async run(s) {
      s.fake.faults.outageUntil = Date.now() + 30_000;
      await sleep(30_000);
    },
  },
  {
    name: 'kill -9 the leader, start a replica',
    async run(s) {
      const { leader, followers } = await s.leaderOf();
      await s.kill(leader);
      if (followers[0]) s.pointWebhooksAt(followers[0]);
      await s.startReplica();
    },
  },
  {
    name: 'GitHub answers after 4 s (timeout 3 s) for 20 s',
    async run(s) {
      s.fake.faults.latencyMs = 4_000;
      await sleep(20_000);
      s.fake.faults.latencyMs = 0;
    },
  },
  {
    name: 'kube-apiserver down 10 s, restarted',
    run: (s) => restartApiserver(s, 10_000),
  },
  {
    name: 'primary rate limit spent for 30 s',
    async run(s) {
      s.fake.exhaustQuota(undefined, 30_000);
      await sleep(30_000);
    },
  },
  {
    name: 'webhook flood of 3,000',
    async run(s) {
      const codes = await floodWebhooks(s, anyLive(s), 3_000);
      s.notes.push(`flood: ${describeCodes(codes)}`);
    },
  },
  {
    name: 'etcd frozen 10 s',
    run: () => pauseEtcd(10_000),
  },
  {
    name: 'ETag churn for 60 s',
    async run(s) {
      s.fake.faults.etagChurn = true;
      await sleep(60_000);
      s.fake.faults.etagChurn = false;
    },
  },
  {
    name: 'SIGTERM a replica (rolling update), start a new one',
    async run(s) {
      const [first] = s.live();
      if (!first) return;
      await s.terminate(first);
      s.pointWebhooksAt(anyLive(s));
      await s.startReplica();
    },
  },
  {
    name: '10 secondary-limit refusals (Retry-After 5 s)',
    async run(s) {
      s.fake.faults.secondaryLimit = { count: 10, status: 429, retryAfterSeconds: 5 };
      await sleep(10_000);
    },
  },
  {
    name: 'webhooks dropped for 30 s',
    async run(s) {
      s.fake.faults.dropWebhooks = true;
      await sleep(30_000);
      s.fake.faults.dropWebhooks = false;
    },
  },
];

describe.skipIf(!SOAK)('soak', () => {
  it(`${JOBS} jobs with every fault injected in turn`, { timeout: 4 * 3_600_000 }, async () => {
    const survived = new Map<string, number>();
    await runScenario(
      {
        name: 'soak',
        fault: `${JOBS} jobs, 2 replicas, faults in turn (see notes)`,
        scale: 2,
        // Registrations slow down to about 25 s under the slow-GitHub fault (see github.test.ts).
        startTimeoutSeconds: 60,
        // An App installation on GitHub Enterprise Cloud; the soak spends about 1.3 points a job.
        quotaLimit: 15_000,
        completeTimeoutMs: 20 * 60_000,
        drainTimeoutMs: 3 * 60_000,
      },
      async (s) => {
        await s.startReplica();
        await s.startReplica();
        let queued = 0;
        let lastReport = Date.now();
        const stream = (async () => {
          while (queued < JOBS) {
            const waiting = s.unfinished().length;
            if (waiting < BACKLOG) {
              const n = Math.min(10, JOBS - queued);
              s.queue(n, { durationMs: 300 + Math.floor(Math.random() * 2_000), perRun: 5 });
              queued += n;
            }
            if (Date.now() - lastReport > 60_000) {
              lastReport = Date.now();
              const rss = s.live().map((r) => `${r.name} ${Math.round(r.rssKiB() / 1024)} MiB`);
              process.stderr.write(
                `[soak] ${queued}/${JOBS} queued, ${s.jobs.length - s.unfinished().length} done, RSS ${rss.join(', ')}\n`,
              );
            }
            await sleep(200);
          }
        })();
        for (let i = 0; queued < JOBS; i++) {
          await sleep(GAP_MS);
          const fault = faults[i % faults.length] as Fault;
          const started = Date.now();
          process.stderr.write(
            `[soak] ${new Date().toISOString()} fault: ${fault.name} (${queued}/${JOBS} queued)\n`,
          );
          await fault.run(s);
          survived.set(fault.name, (survived.get(fault.name) ?? 0) + 1);
          process.stderr.write(`[soak] fault over after ${Math.round((Date.now() - started) / 1000)} s\n`);
        }
        await stream;
        s.notes.push(`faults survived: ${[...survived].map(([name, n]) => `${n}× ${name}`).join('; ')}`);
      },
    );
  });
});
