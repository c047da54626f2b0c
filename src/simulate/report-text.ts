import type { Recommendation } from './recommend.ts';
import type { ClassResult, SimulationResult } from './result.ts';

/** The simulation as a terminal reads it: one table per run, or two runs side by side. */

export interface NamedRun {
  /** What the run is called in reports: its config file. */
  label: string;
  result: SimulationResult;
  recommendations: readonly Recommendation[];
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export function formatSeconds(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null) return '–';
  if (seconds < 100) return `${Number(seconds.toFixed(seconds < 10 ? 1 : 0))} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function formatDollars(dollars: number): string {
  return `$${dollars >= 1000 ? Math.round(dollars).toLocaleString('en-US') : dollars.toFixed(2)}`;
}

const count = (n: number) => n.toLocaleString('en-US');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function span(result: SimulationResult): string {
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  return `${iso(result.from)} → ${iso(result.to)} UTC`;
}

function headline(run: NamedRun): string {
  const r = run.result;
  const unclassified = Object.values(r.unclassified).reduce((a, b) => a + b, 0);
  const parts = [
    `${run.label}: ${count(r.jobs)} jobs, ${span(r)}, replayed in ${(r.wallMs / 1000).toFixed(1)} s`,
    `(${count(r.events)} events, ${count(r.passes)} planning passes)`,
  ];
  const notes: string[] = [];
  if (r.notForGantry > 0)
    notes.push(`${count(r.notForGantry)} jobs no class's labels cover (left to other runners)`);
  if (unclassified > 0) {
    notes.push(
      `${count(unclassified)} jobs without a class by trust (${Object.entries(r.unclassified)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ')})`,
    );
  }
  return `${parts.join(' ')}${notes.length ? `\n  ${notes.join('; ')}` : ''}`;
}

function waited(c: ClassResult): string {
  return `${count(c.waitedOnMaxRunners)} / ${count(c.waitedOnQuota)}`;
}

/** One run: a row per class. */
export function formatRun(run: NamedRun): string {
  const header = [
    'CLASS',
    'JOBS',
    'QUEUE P50',
    'P95',
    'P99',
    'PEAK/MAX',
    'BUSY $',
    'IDLE $',
    'TOTAL $',
    'WAITED MAX/QUOTA',
    'ON OTHER CLASS',
  ];
  const rows = run.result.classes
    .filter((c) => c.jobs > 0 || c.runnersCreated > 0)
    .map((c) => [
      c.name,
      count(c.jobs),
      formatSeconds(c.queueSeconds?.p50),
      formatSeconds(c.queueSeconds?.p95),
      formatSeconds(c.queueSeconds?.p99),
      `${c.peakRunners}/${c.maxRunners}`,
      formatDollars(c.cost.busy),
      formatDollars(c.cost.idle),
      formatDollars(c.cost.total),
      waited(c),
      count(c.servedByOtherClass),
    ]);
  const lines = [headline(run), '', table(header, rows)];
  const recorded = run.result.classes.filter((c) => c.recordedQueueSeconds);
  if (recorded.length > 0) {
    lines.push(
      '',
      `As recorded in the trace: ${recorded
        .map((c) => `${c.name} queue p95 ${formatSeconds(c.recordedQueueSeconds?.p95)}`)
        .join(', ')}`,
    );
  }
  const violations = run.result.classes.filter((c) => c.trustViolations > 0);
  if (violations.length > 0) {
    lines.push(
      '',
      `Trust violations (a runner took a job it must not run): ${violations.map((c) => `${c.name} ${c.trustViolations}`).join(', ')}`,
    );
  }
  for (const rec of run.recommendations) lines.push('', formatRecommendation(rec, run.result));
  return lines.join('\n');
}

/** A class's recommended warm pool by hour of week, a line per day. */
export function formatRecommendation(rec: Recommendation, result?: SimulationResult): string {
  const c = result?.classes.find((x) => x.name === rec.className);
  const objective = c?.warmPool?.objective;
  const targets = rec.plan.targets;
  const unmet = rec.estimates.filter((e) => !e.met && !e.unknown).length;
  const mean = targets.reduce((a, b) => a + b, 0) / Math.max(1, targets.length);
  const lines = [
    `Warm pool for ${rec.className}${objective ? ` (objective ${objective.percentile} <= ${formatSeconds(objective.seconds)})` : ''}: ` +
      `${Math.min(...targets)} to ${Math.max(...targets)} runners, ${mean.toFixed(1)} on average, ` +
      `ready ${formatSeconds(rec.plan.leadMs / 1000)} before each hour; by hour of week (UTC):`,
    `     ${Array.from({ length: 24 }, (_, h) => String(h).padStart(3)).join('')}`,
    ...DAYS.map(
      (day, d) =>
        `${day}  ${targets
          .slice(d * 24, d * 24 + 24)
          .map((t) => String(t).padStart(3))
          .join('')}`,
    ),
  ];
  if (unmet > 0)
    lines.push(
      `  ${unmet} hours cannot meet the objective within the class's bounds: the most the bounds allow is used.`,
    );
  return lines.join('\n');
}

/** Two runs of the same trace: per class, each figure for both. */
export function formatComparison(a: NamedRun, b: NamedRun): string {
  const header = ['CLASS', 'FIGURE', a.label, b.label, 'CHANGE'];
  const rows: string[][] = [];
  const names = [...new Set([...a.result.classes, ...b.result.classes].map((c) => c.name))].sort();
  for (const name of names) {
    const ca = a.result.classes.find((c) => c.name === name);
    const cb = b.result.classes.find((c) => c.name === name);
    if (!ca && !cb) continue;
    if (
      (ca?.jobs ?? 0) === 0 &&
      (cb?.jobs ?? 0) === 0 &&
      (ca?.runnersCreated ?? 0) === 0 &&
      (cb?.runnersCreated ?? 0) === 0
    )
      continue;
    const figures: [string, (c: ClassResult) => number | undefined, (v: number | undefined) => string][] = [
      ['queue p50', (c) => c.queueSeconds?.p50, formatSeconds],
      ['queue p95', (c) => c.queueSeconds?.p95, formatSeconds],
      ['queue p99', (c) => c.queueSeconds?.p99, formatSeconds],
      ['peak runners', (c) => c.peakRunners, (v) => (v === undefined ? '–' : count(v))],
      ['busy cost', (c) => c.cost.busy, (v) => (v === undefined ? '–' : formatDollars(v))],
      ['idle cost', (c) => c.cost.idle, (v) => (v === undefined ? '–' : formatDollars(v))],
      ['total cost', (c) => c.cost.total, (v) => (v === undefined ? '–' : formatDollars(v))],
      ['waited on maxRunners', (c) => c.waitedOnMaxRunners, (v) => (v === undefined ? '–' : count(v))],
      ['waited on quota', (c) => c.waitedOnQuota, (v) => (v === undefined ? '–' : count(v))],
    ];
    figures.forEach(([figure, get, show], i) => {
      const va = ca ? get(ca) : undefined;
      const vb = cb ? get(cb) : undefined;
      const change =
        va !== undefined && vb !== undefined && va !== 0
          ? `${vb >= va ? '+' : ''}${(((vb - va) / va) * 100).toFixed(0)}%`
          : '';
      rows.push([i === 0 ? name : '', figure, show(va), show(vb), change]);
    });
  }
  const lines = [headline(a), headline(b), '', table(header, rows)];
  for (const run of [a, b])
    for (const rec of run.recommendations)
      lines.push('', `${run.label}: ${formatRecommendation(rec, run.result)}`);
  return lines.join('\n');
}
