import type { Config } from '../config/schema.ts';
import type { Trace } from '../trace/format.ts';
import { type Distribution, type Random, sample } from '../util/distribution.ts';
import type { WarmPoolSupply } from '../warm-pool/estimate.ts';
import { ArrivalHistory } from '../warm-pool/history.ts';
import { leadTimeMs, type TargetEstimate, targetsByHour } from '../warm-pool/targets.ts';
import type { WarmPoolPlan } from './engine.ts';
import { type SimulationModel, startupOf } from './model.ts';
import { classifyTraceJobs } from './trace-jobs.ts';

/**
 * The warm pools `gantry simulate` recommends for a trace: the trace's arrivals learned the way a
 * running Gantry learns them (ArrivalHistory, hour of week), and the waits the model implies instead
 * of observed ones, then the same per-hour estimate Gantry uses live. Each class with a warmPool
 * objective gets its targets by hour of week.
 */

export interface Recommendation {
  className: string;
  plan: WarmPoolPlan;
  estimates: TargetEstimate[];
}

/** What a job waits in the model: cold (a runner made for it) and warm (an idle runner there). */
export function modelSupply(
  model: SimulationModel,
  className: string,
  maxCreatePerSecond: number,
): WarmPoolSupply {
  const s = (distribution: Distribution, random: Random) => sample(distribution, random);
  return {
    coldSeconds: (random) =>
      s(model.webhook, random) +
      s(model.apiLatency, random) +
      s(startupOf(model, className), random) +
      s(model.registration, random) +
      s(model.assignment, random),
    warmSeconds: (random) => s(model.assignment, random),
    maxCreatePerSecond,
  };
}

/** Learns the trace's arrivals, as a running Gantry would have over the trace's span. */
export function historyOf(config: Config, trace: Trace): ArrivalHistory {
  const history = new ArrivalHistory();
  const first = trace.header?.from !== undefined ? Date.parse(trace.header.from) : trace.jobs[0]?.created;
  if (first === undefined) return history;
  history.observeFrom(first);
  const warmClasses = new Set(
    Object.entries(config.classes).flatMap(([name, c]) => (c.warmPool ? [name] : [])),
  );
  for (const { trace: job, className } of classifyTraceJobs(config, trace.jobs).jobs) {
    if (className && warmClasses.has(className))
      history.noteJob(className, job.created, `${job.repo}#${job.run}#${job.attempt}`);
  }
  const last =
    trace.header?.to !== undefined ? Date.parse(trace.header.to) : (trace.jobs.at(-1)?.created ?? first);
  // The last hour counts for the part of it the trace covers.
  history.roll(last);
  history.observeFrom((Math.floor(last / 3_600_000) + 1) * 3_600_000);
  return history;
}

export function recommendWarmPools(config: Config, trace: Trace, model: SimulationModel): Recommendation[] {
  const history = historyOf(config, trace);
  const out: Recommendation[] = [];
  for (const [className, runnerClass] of Object.entries(config.classes).sort(([a], [b]) =>
    a < b ? -1 : 1,
  )) {
    if (!runnerClass.warmPool) continue;
    const supply = modelSupply(model, className, runnerClass.maxCreatePerSecond);
    const estimates = targetsByHour(history, className, runnerClass, supply);
    out.push({
      className,
      plan: { targets: estimates.map((e) => e.size), leadMs: leadTimeMs(supply, model.seed) },
      estimates,
    });
  }
  return out;
}
