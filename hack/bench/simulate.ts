/**
 * Simulator benchmark: `gantry simulate`'s replay of a synthetic week of an organisation running 500
 * jobs an hour on average (src/trace/synthetic.ts: a daily peak on weekdays, quiet nights and
 * weekends), through Gantry's classifier, ledger, planner and cost meter, with warm pools sized from
 * a p95 <= 30 s objective (hack/simulate/synthetic-org.ts). The baseline, measured in the same run, is
 * the event machinery alone: the same number of events through the simulator's event queue, spread
 * over the same week, with nothing done per event. Prints a table, then the JSON line.
 *
 *   node hack/bench/simulate.ts [--jobs-per-hour 500] [--days 7] [--runs 2]
 */
import { parseArgs } from 'node:util';
import { simulate } from '../../src/simulate/engine.ts';
import { EventQueue } from '../../src/simulate/event-queue.ts';
import { recommendWarmPools } from '../../src/simulate/recommend.ts';
import { syntheticTrace } from '../../src/trace/synthetic.ts';
import { syntheticModel, syntheticOrgConfig } from '../simulate/synthetic-org.ts';
import { emitJson, type Headline, printTable, runBench } from './lib/report.ts';

const { values: options } = parseArgs({
  options: {
    'jobs-per-hour': { type: 'string', default: '500' },
    days: { type: 'string', default: '7' },
    runs: { type: 'string', default: '2' },
  },
});
const JOBS_PER_HOUR = Number(options['jobs-per-hour']);
const DAYS = Number(options.days);
const RUNS = Number(options.runs);
if (!(JOBS_PER_HOUR > 0) || !(DAYS > 0) || !Number.isInteger(RUNS) || RUNS < 1) {
  throw new Error('--jobs-per-hour and --days: expected numbers > 0; --runs: a whole number >= 1');
}

/** The floor: `events` events pushed and taken in time order, spread over `spanMs`, nothing done with them. */
function eventFloorMs(events: number, spanMs: number): number {
  const started = performance.now();
  const queue = new EventQueue<number>();
  // Events arrive over time and schedule later ones, as the replay's do: a few in flight at once.
  let scheduled = 0;
  for (let i = 0; i < Math.min(events, 2_000); i++) queue.schedule((i / events) * spanMs, scheduled++);
  let sum = 0;
  for (let next = queue.take(); next; next = queue.take()) {
    sum += next.event;
    if (scheduled < events) queue.schedule(next.at + (spanMs / events) * 2_000, scheduled++);
  }
  if (sum < 0) throw new Error('unreachable');
  return performance.now() - started;
}

runBench(async () => {
  const generated = performance.now();
  const jobs = syntheticTrace({ jobsPerHour: JOBS_PER_HOUR, days: DAYS });
  const generateMs = performance.now() - generated;
  const trace = { jobs };
  const config = syntheticOrgConfig('objective');
  const model = syntheticModel();
  const spanMs = DAYS * 86_400_000;

  const rows: {
    run: number;
    recommendMs: number;
    replayMs: number;
    /** CPU time of the replay: on a shared machine, wall time also counts other processes' turns. */
    replayCpuMs: number;
    events: number;
    passes: number;
    floorMs: number;
  }[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const recommended = performance.now();
    const recommendations = recommendWarmPools(config, trace, model);
    const recommendMs = performance.now() - recommended;
    const cpu = process.cpuUsage();
    const result = simulate({
      config,
      trace,
      model,
      warmPools: new Map(recommendations.map((r) => [r.className, r.plan])),
    });
    const replayCpuMs = process.cpuUsage(cpu).user / 1000;
    rows.push({
      run,
      recommendMs,
      replayMs: result.wallMs,
      replayCpuMs,
      events: result.events,
      passes: result.passes,
      floorMs: eventFloorMs(result.events, spanMs),
    });
  }
  const best = rows.reduce((a, b) => (b.recommendMs + b.replayMs < a.recommendMs + a.replayMs ? b : a));
  const totalMs = best.recommendMs + best.replayMs;
  printTable(
    `simulate benchmark: ${jobs.length.toLocaleString('en')} jobs over ${DAYS} days (${JOBS_PER_HOUR} jobs/h on average; trace generated in ${(generateMs / 1000).toFixed(1)} s), node ${process.version}`,
    [
      'run',
      'warm pools recommended s',
      'replay s',
      'replay CPU s',
      'events',
      'planning passes',
      'µs per event',
      'event floor s',
      '× floor',
      '× real time',
    ],
    rows.map((r) => [
      String(r.run),
      (r.recommendMs / 1000).toFixed(1),
      (r.replayMs / 1000).toFixed(1),
      (r.replayCpuMs / 1000).toFixed(1),
      r.events.toLocaleString('en'),
      r.passes.toLocaleString('en'),
      ((r.replayMs * 1000) / r.events).toFixed(1),
      (r.floorMs / 1000).toFixed(2),
      (r.replayMs / r.floorMs).toFixed(0),
      Math.round(spanMs / (r.recommendMs + r.replayMs)).toLocaleString('en'),
    ]),
  );
  const headline: Headline[] = [
    {
      what: `gantry simulate, a synthetic week of ${JOBS_PER_HOUR} jobs/h (${jobs.length.toLocaleString('en')} jobs, warm pools recommended then replayed; \`simulate\`, best of ${RUNS})`,
      figure: `${(totalMs / 1000).toFixed(1)} s (recommend ${(best.recommendMs / 1000).toFixed(1)} s + replay ${(best.replayMs / 1000).toFixed(1)} s, of it ${(best.replayCpuMs / 1000).toFixed(1)} s on the CPU; ${Math.round(spanMs / totalMs).toLocaleString('en')}x real time; ${best.passes.toLocaleString('en')} planning passes)`,
      baseline: `event queue alone, the same ${best.events.toLocaleString('en')} events: ${(best.floorMs / 1000).toFixed(2)} s`,
    },
  ];
  emitJson({
    benchmark: 'simulate',
    jobsPerHour: JOBS_PER_HOUR,
    days: DAYS,
    jobs: jobs.length,
    node: process.version,
    rows,
    headline,
  });
});
