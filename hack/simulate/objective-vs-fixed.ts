/**
 * Warm pools sized from a queue-time objective against the best fixed minIdle, on a synthetic trace:
 * per class, the objective-driven pool (p95 <= 30 s, sized hour by hour from the trace's arrivals),
 * and the least fixed minIdle whose replay meets the same p95 over the whole trace (found by bisection,
 * each step a full replay). Prints both, their idle and total cost, and the JSON line.
 *
 *   node hack/simulate/objective-vs-fixed.ts [--jobs-per-hour 500] [--days 7] [--seed 7]
 */
import { parseArgs } from 'node:util';
import { simulate } from '../../src/simulate/engine.ts';
import { recommendWarmPools } from '../../src/simulate/recommend.ts';
import type { ClassResult, SimulationResult } from '../../src/simulate/result.ts';
import type { Trace } from '../../src/trace/format.ts';
import { syntheticTrace } from '../../src/trace/synthetic.ts';
import {
  CLASS_NAMES,
  type ClassName,
  OBJECTIVE_SECONDS,
  syntheticModel,
  syntheticOrgConfig,
} from './synthetic-org.ts';

export interface ClassComparison {
  name: ClassName;
  objective: { p95: number; idle: number; total: number; meanPool: number; maxPool: number };
  fixed: { minIdle: number; p95: number; idle: number; total: number };
}

const p95 = (c: ClassResult | undefined) => c?.queueSeconds?.p95 ?? Number.POSITIVE_INFINITY;
const classOf = (result: SimulationResult, name: string) => result.classes.find((c) => c.name === name);

export function runFixed(trace: Trace, minIdle: Partial<Record<ClassName, number>>): SimulationResult {
  return simulate({ config: syntheticOrgConfig(minIdle), trace, model: syntheticModel() });
}

/** The comparison, per class; `log` hears of each replay. */
export function compareObjectiveWithFixed(
  trace: Trace,
  log: (line: string) => void = () => {},
): ClassComparison[] {
  const model = syntheticModel();
  const objectiveConfig = syntheticOrgConfig('objective');
  const recommendations = recommendWarmPools(objectiveConfig, trace, model);
  const objective = simulate({
    config: objectiveConfig,
    trace,
    model,
    warmPools: new Map(recommendations.map((r) => [r.className, r.plan])),
  });
  log(`objective-driven pools: replayed in ${(objective.wallMs / 1000).toFixed(1)} s`);

  // Bisection on every class at once: the classes' labels differ, so no class's runners take another's jobs.
  const low: Record<string, number> = {};
  const high: Record<string, number> = {};
  const best: Record<string, SimulationResult> = {};
  let probe: Partial<Record<ClassName, number>> = {};
  for (const name of CLASS_NAMES) {
    low[name] = -1;
    high[name] = 8;
  }
  // Grow the upper bounds until each meets the objective.
  for (let round = 0; round < 8; round++) {
    probe = Object.fromEntries(CLASS_NAMES.map((name) => [name, high[name]]));
    const result = runFixed(trace, probe);
    log(
      `fixed ${JSON.stringify(probe)}: ${CLASS_NAMES.map((n) => `${n} p95 ${p95(classOf(result, n))} s`).join(', ')}`,
    );
    let grown = false;
    for (const name of CLASS_NAMES) {
      if (p95(classOf(result, name)) <= OBJECTIVE_SECONDS) best[name] ??= result;
      else {
        low[name] = high[name] as number;
        high[name] = (high[name] as number) * 2;
        grown = true;
      }
    }
    if (!grown) break;
  }
  for (;;) {
    const open = CLASS_NAMES.filter((name) => (high[name] as number) - (low[name] as number) > 1);
    if (open.length === 0) break;
    probe = Object.fromEntries(
      CLASS_NAMES.map((name) => [name, Math.floor(((low[name] as number) + (high[name] as number)) / 2)]),
    );
    for (const name of CLASS_NAMES) if (!open.includes(name)) probe[name] = high[name] as number;
    const result = runFixed(trace, probe);
    log(
      `fixed ${JSON.stringify(probe)}: ${CLASS_NAMES.map((n) => `${n} p95 ${p95(classOf(result, n))} s`).join(', ')}`,
    );
    for (const name of open) {
      if (p95(classOf(result, name)) <= OBJECTIVE_SECONDS) {
        high[name] = probe[name] as number;
        best[name] = result;
      } else {
        low[name] = probe[name] as number;
      }
    }
  }
  return CLASS_NAMES.map((name) => {
    const o = classOf(objective, name);
    const f = classOf(best[name] as SimulationResult, name);
    const targets = recommendations.find((r) => r.className === name)?.plan.targets ?? [];
    return {
      name,
      objective: {
        p95: p95(o),
        idle: o?.cost.idle ?? 0,
        total: o?.cost.total ?? 0,
        meanPool: targets.reduce((a, b) => a + b, 0) / Math.max(1, targets.length),
        maxPool: Math.max(0, ...targets),
      },
      fixed: {
        minIdle: high[name] as number,
        p95: p95(f),
        idle: f?.cost.idle ?? 0,
        total: f?.cost.total ?? 0,
      },
    };
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      'jobs-per-hour': { type: 'string', default: '500' },
      days: { type: 'string', default: '7' },
      seed: { type: 'string', default: '7' },
    },
  });
  const jobs = syntheticTrace({
    jobsPerHour: Number(values['jobs-per-hour']),
    days: Number(values.days),
    seed: Number(values.seed),
  });
  process.stdout.write(
    `${jobs.length.toLocaleString('en')} jobs over ${values.days} days, ${values['jobs-per-hour']} jobs/h on average, seed ${values.seed}; start-up log-normal median 40 s, p95 75 s\n`,
  );
  const rows = compareObjectiveWithFixed({ jobs }, (line) => process.stdout.write(`  ${line}\n`));
  const money = (n: number) => `$${n.toFixed(2)}`;
  const header = [
    'class',
    'objective p95',
    'idle',
    'total',
    'pool mean/max',
    'fixed minIdle',
    'p95',
    'idle',
    'total',
    'idle saved',
  ];
  const table = rows.map((r) => [
    r.name,
    `${r.objective.p95} s`,
    money(r.objective.idle),
    money(r.objective.total),
    `${r.objective.meanPool.toFixed(1)}/${r.objective.maxPool}`,
    String(r.fixed.minIdle),
    `${r.fixed.p95} s`,
    money(r.fixed.idle),
    money(r.fixed.total),
    `${(((r.fixed.idle - r.objective.idle) / r.fixed.idle) * 100).toFixed(0)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  process.stdout.write(
    `\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}\n`,
  );
  process.stdout.write(`${JSON.stringify({ comparison: 'objective-vs-fixed', rows })}\n`);
}
