import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { percentile } from '../../src/metrics/status.ts';
import { runScenario, SOAK } from './harness.ts';
import { startHostileLoad } from './inject.ts';

// The internet-facing webhook listener, attacked by unauthenticated clients while GitHub's signed
// deliveries keep coming: nothing they send may cost Gantry its memory, its process or its answers.

/** GitHub counts a delivery not answered within 10 s as failed. */
const GITHUB_DELIVERY_TIMEOUT_MS = 10_000;
/** Resident set a replica must stay under here: the chart's limit is 384 MiB. */
const ATTACK_RSS_LIMIT_MIB = 250;

describe('the exposed surface', () => {
  it('large and slow unauthenticated requests while signed deliveries arrive at 5/s', async () => {
    const attackMs = SOAK ? 300_000 : 60_000;
    await runScenario(
      {
        name: 'hostile-surface',
        fault: `50 clients posting 25 MB with bad signatures and 200 sending a byte a second, for ${attackMs / 1000} s`,
        completeTimeoutMs: 180_000,
      },
      async (s) => {
        const replica = await s.startReplica();
        const attack = startHostileLoad(replica.webhookUrl, { largeBodies: 50, slowClients: 200 });
        // Let the attackers connect before the genuine deliveries start.
        await sleep(2_000);
        const started = Date.now();
        const jobs: number[] = [];
        while (Date.now() - started < attackMs) {
          jobs.push(...s.queue(1, { durationMs: 300, perRun: 1 }));
          await sleep(200);
        }
        await s.fake.flushWebhooks();
        const answers = await attack.stop();
        const signed = s.fake.deliveries.filter((d) => jobs.includes(d.jobId) && d.action === 'queued');
        const latencies = signed.flatMap((d) => (d.answeredInMs === undefined ? [] : [d.answeredInMs]));
        const p99 = percentile(latencies, 0.99) ?? Number.POSITIVE_INFINITY;
        const rss = s.peakRssMiB();
        s.notes.push(
          `${signed.length} signed deliveries, p50 ${percentile(latencies, 0.5)?.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; ` +
            `peak RSS ${rss} MiB; ${[...answers].map(([k, n]) => `${k} ×${n}`).join(', ')}`,
        );
        expect(signed.length).toBeGreaterThanOrEqual(jobs.length);
        expect(signed.filter((d) => typeof d.result !== 'number' || d.result >= 300)).toEqual([]);
        // GitHub gives up on a delivery after 10 s; the latency itself is reported, not judged here.
        expect(p99).toBeLessThan(GITHUB_DELIVERY_TIMEOUT_MS);
        expect(rss).toBeLessThan(ATTACK_RSS_LIMIT_MIB);
        expect(replica.running()).toBe(true);
        // Every job gets its runner: the harness waits for each to complete on one.
      },
    );
  });
});
