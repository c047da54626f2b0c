import type { KubeConfig } from '@kubernetes/client-node';
import { simulate } from '../../src/simulate/engine.ts';
import { modelSchema, type SimulationModel } from '../../src/simulate/model.ts';
import { type Percentiles, percentiles } from '../../src/simulate/result.ts';
import { fitStartupHistogram } from '../../src/simulate/startup-fit.ts';
import { classifyTraceJobs } from '../../src/simulate/trace-jobs.ts';
import { parseTrace, type Trace } from '../../src/trace/format.ts';
import { startGantryEnv } from './gantry-env.ts';
import { until } from './kube.ts';

/**
 * The same jobs run twice: live, on the local control plane (the fake GitHub queues them at their
 * times, Gantry launches runner pods that KWOK runs, the runner simulator plays each runner), and
 * through `gantry simulate`, replaying the trace Gantry itself recorded (GET /api/trace) with the
 * start-ups it measured (gantry_runner_startup_seconds) and the same configuration. Per class, the
 * queue times and the cost each side found.
 */

export interface PlayedRun {
  /** When its jobs are queued, from the start of the play. */
  atMs: number;
  repo: string;
  labels: string[];
  jobs: number;
  durationMs: number;
}

export interface SideFigures {
  jobs: number;
  queueSeconds: Percentiles | null;
  /** Dollars by Gantry's cost model. */
  cost: number;
  busy: number;
  idle: number;
}

export interface FidelityResult {
  classes: { name: string; live: SideFigures; simulated: SideFigures }[];
  trace: Trace;
  model: SimulationModel;
  /** Real time the live run took. */
  liveMs: number;
}

/**
 * The rest of the model, as this machinery behaves: the runner simulator looks for Running pods every
 * 150 ms (after listing pods and Secrets), the fake GitHub hands a job over as the runner connects and
 * completes jobs within 100 ms of their end, deliveries and the apiserver answer in milliseconds.
 */
const LOCAL_MODEL = {
  registration: { uniform: { min: 0.05, max: 0.35 } },
  assignment: 0.02,
  webhook: { uniform: { min: 0.01, max: 0.1 } },
  apiLatency: 0.03,
  exit: { uniform: { min: 0.1, max: 0.4 } },
  deletion: 0.3,
};

function costByClass(metrics: string): Map<string, { busy: number; idle: number }> {
  const out = new Map<string, { busy: number; idle: number }>();
  for (const line of metrics.split('\n')) {
    const match = /^gantry_cost_dollars_total\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!match) continue;
    const className = /class="([^"]*)"/.exec(match[1] ?? '')?.[1];
    const use = /use="([^"]*)"/.exec(match[1] ?? '')?.[1];
    if (className === undefined || (use !== 'busy' && use !== 'idle')) continue;
    const entry = out.get(className) ?? { busy: 0, idle: 0 };
    entry[use] += Number(match[2]);
    out.set(className, entry);
  }
  return out;
}

export async function liveVersusSimulated(
  kc: KubeConfig,
  options: {
    runs: readonly PlayedRun[];
    namespaces: string[];
    classes: (namespaces: Record<string, string>) => Record<string, unknown>;
    cleanup: string[];
    log?: (line: string) => void;
  },
): Promise<FidelityResult> {
  const log = options.log ?? (() => {});
  const env = await startGantryEnv(kc, {
    namespaces: options.namespaces,
    classes: options.classes,
    cleanup: options.cleanup,
    controller: { startTimeoutSeconds: 60 },
  });
  try {
    const started = Date.now();
    // Warm pools (minIdle) are up before the first job, as in a Gantry that has been running.
    await until(
      'warm pools up',
      async () =>
        env.app.observers.status().classes.every((c) => c.idle >= (env.config.classes[c.name]?.minIdle ?? 0)),
      60_000,
      100,
    );
    const playStart = Date.now() + 500;
    const jobIds: number[] = [];
    await Promise.all(
      options.runs.map(
        (run) =>
          new Promise<void>((resolve) =>
            setTimeout(
              () => {
                const queued = env.fake.queueJobs({
                  repo: run.repo,
                  labels: run.labels,
                  count: run.jobs,
                  jobsPerRun: run.jobs,
                  durationMs: run.durationMs,
                });
                jobIds.push(...queued.jobIds);
                resolve();
              },
              Math.max(0, playStart + run.atMs - Date.now()),
            ),
          ),
      ),
    );
    log(`queued ${jobIds.length} jobs`);
    await until(
      'every job completed',
      async () => jobIds.every((id) => env.fake.job(id)?.status === 'completed'),
      300_000,
      200,
    );
    // Done when only the warm pools are left and idle.
    await until(
      'runners of the jobs gone',
      async () =>
        env.app.observers
          .status()
          .classes.every(
            (c) =>
              c.busy === 0 &&
              c.starting === 0 &&
              c.terminating === 0 &&
              c.idle === (env.config.classes[c.name]?.minIdle ?? 0),
          ),
      120_000,
      200,
    );
    // The cost meter accounts up to 10 s behind the clock: wait until that covers everything done.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const scrapedAt = Date.now();
    const metrics = await env.app.metrics.metrics();
    const traced = await env.app.http.inject({ method: 'GET', url: '/api/trace' });
    const liveMs = scrapedAt - started;
    const trace = parseTrace(traced.body, 'Gantry’s /api/trace');
    if (!trace.header) throw new Error('Gantry’s trace has no header');
    // The replay covers what the live cost covers: from when Gantry started, to the cost meter's
    // horizon at the scrape (it accounts up to 10 s behind the clock).
    trace.header = {
      ...trace.header,
      from: new Date(started).toISOString(),
      to: new Date(scrapedAt - 10_000).toISOString(),
    };
    const fitted = fitStartupHistogram(metrics, 'Gantry’s /metrics');
    const model = modelSchema.parse({ ...LOCAL_MODEL, startup: 1 });
    model.startupByClass = Object.fromEntries(fitted);
    const result = simulate({ config: env.config, trace, model });

    const liveJobs = classifyTraceJobs(env.config, trace.jobs).jobs;
    const liveCost = costByClass(metrics);
    const classes = Object.keys(env.config.classes)
      .sort()
      .map((name) => {
        const mine = liveJobs.filter((j) => j.className === name);
        const sim = result.classes.find((c) => c.name === name);
        return {
          name,
          live: {
            jobs: mine.length,
            queueSeconds: percentiles(
              mine.flatMap((j) => (j.trace.started !== undefined ? [j.trace.started - j.trace.created] : [])),
            ),
            cost: (liveCost.get(name)?.busy ?? 0) + (liveCost.get(name)?.idle ?? 0),
            busy: liveCost.get(name)?.busy ?? 0,
            idle: liveCost.get(name)?.idle ?? 0,
          },
          simulated: {
            jobs: sim?.started ?? 0,
            queueSeconds: sim?.queueSeconds ?? null,
            cost: sim?.cost.total ?? 0,
            busy: sim?.cost.busy ?? 0,
            idle: sim?.cost.idle ?? 0,
          },
        };
      });
    return { classes, trace, model, liveMs };
  } finally {
    await env.stop();
  }
}
