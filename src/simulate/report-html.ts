import { escapeHtml } from '../http/status-page.ts';
import type { Recommendation } from './recommend.ts';
import { formatDollars, formatSeconds, type NamedRun } from './report-text.ts';
import type { ClassResult, SimulationResult } from './result.ts';

/**
 * The simulation as one self-contained HTML page: the summary per class, and per class two charts
 * over time (queue time, runners) drawn as inline SVG. No script, no external asset: it opens from a
 * file, in a mail, or behind a strict content security policy.
 */

const COLOURS = ['#0969da', '#d1242f', '#1a7f37', '#8250df'] as const;
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

interface Line {
  name: string;
  colour: string;
  values: readonly (number | null)[];
  dash?: boolean;
  width?: number;
}

interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  start: number;
  bucketMs: number;
  lines: Line[];
  /** Horizontal reference lines (an objective, maxRunners). */
  marks?: { value: number; label: string; colour: string }[];
}

const W = 920;
const H = 240;
const PAD = { left: 56, right: 16, top: 28, bottom: 36 };

/** Steps a time axis reads well in: seconds, minutes, hours. */
const TIME_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

function niceStep(max: number, ticks: number, unit: string): number {
  const raw = max / ticks;
  if (unit === 's') return TIME_STEPS.find((step) => step >= raw) ?? Math.ceil(raw / 86400) * 86400;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function chart(spec: ChartSpec): string {
  const buckets = Math.max(1, ...spec.lines.map((l) => l.values.length));
  const values = spec.lines.flatMap((l) => l.values.filter((v): v is number => v !== null));
  const marks = spec.marks ?? [];
  const top = Math.max(1, ...values, ...marks.map((m) => m.value)) * 1.08;
  const step = niceStep(top, 5, spec.unit);
  const yMax = Math.ceil(top / step) * step;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (buckets <= 1 ? 0 : (i / (buckets - 1)) * plotW);
  const y = (v: number) => PAD.top + plotH - (v / yMax) * plotH;
  const f = (n: number) => n.toFixed(1);
  const parts: string[] = [];
  for (let v = 0; v <= yMax + step / 2; v += step) {
    parts.push(
      `<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${f(y(v))}" y2="${f(y(v))}"/>`,
      `<text class="tick" x="${PAD.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${escapeHtml(formatTick(v, spec.unit))}</text>`,
    );
  }
  // Time ticks: days for long spans, hours otherwise, at most about 12.
  const spanMs = buckets * spec.bucketMs;
  const tickMs =
    spanMs > 3 * 86_400_000
      ? 86_400_000
      : spanMs > 12 * 3_600_000
        ? 6 * 3_600_000
        : spanMs > 3 * 3_600_000
          ? 3_600_000
          : 15 * 60_000;
  const firstTick = Math.ceil(spec.start / tickMs) * tickMs;
  for (let t = firstTick; t <= spec.start + spanMs; t += tickMs) {
    const i = (t - spec.start) / spec.bucketMs;
    if (i > buckets - 1) break;
    const d = new Date(t);
    const label =
      tickMs >= 86_400_000
        ? `${DAYS[(d.getUTCDay() + 6) % 7]} ${d.toISOString().slice(5, 10)}`
        : d.toISOString().slice(11, 16);
    parts.push(
      `<line class="grid" x1="${f(x(i))}" x2="${f(x(i))}" y1="${PAD.top}" y2="${PAD.top + plotH}"/>`,
      `<text class="tick" x="${f(x(i))}" y="${H - PAD.bottom + 16}" text-anchor="middle">${escapeHtml(label)}</text>`,
    );
  }
  for (const mark of marks) {
    parts.push(
      `<line class="mark" x1="${PAD.left}" x2="${W - PAD.right}" y1="${f(y(mark.value))}" y2="${f(y(mark.value))}" stroke="${mark.colour}"/>`,
      `<text class="mark-label" x="${W - PAD.right - 4}" y="${f(y(mark.value) - 4)}" text-anchor="end" fill="${mark.colour}">${escapeHtml(mark.label)}</text>`,
    );
  }
  for (const line of spec.lines) {
    // A gap (no value) breaks the line rather than drawing through it.
    const segments: string[] = [];
    let open = false;
    line.values.forEach((v, i) => {
      if (v === null) {
        open = false;
        return;
      }
      segments.push(`${open ? 'L' : 'M'}${f(x(i))} ${f(y(v))}`);
      open = true;
    });
    if (segments.length === 0) continue;
    parts.push(
      `<path class="series" data-series="${escapeHtml(line.name)}" d="${segments.join('')}" stroke="${line.colour}" stroke-width="${line.width ?? 1.6}"${line.dash ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
  }
  const legend = spec.lines
    .map(
      (line) =>
        `<span class="key"><svg width="22" height="8" aria-hidden="true"><line x1="0" x2="22" y1="4" y2="4" stroke="${line.colour}" stroke-width="2"${line.dash ? ' stroke-dasharray="5 3"' : ''}/></svg>${escapeHtml(line.name)}</span>`,
    )
    .join('');
  return `<figure class="chart" id="${escapeHtml(spec.id)}">
<figcaption>${escapeHtml(spec.title)}</figcaption>
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(spec.title)}">
<rect class="plot" x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}"/>
${parts.join('\n')}
</svg>
<div class="legend">${legend}</div>
</figure>`;
}

function formatTick(value: number, unit: string): string {
  if (unit === 's') return formatSeconds(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function summaryTable(runs: readonly NamedRun[]): string {
  const names = [...new Set(runs.flatMap((r) => r.result.classes.filter(active).map((c) => c.name)))].sort();
  const head = `<tr><th>class</th>${runs.length > 1 ? '<th>run</th>' : ''}<th>jobs</th><th>queue p50</th><th>p95</th><th>p99</th><th>peak / max runners</th><th>busy cost</th><th>idle cost</th><th>total cost</th><th>waited on maxRunners</th><th>waited on quota</th><th>taken by another class</th></tr>`;
  const rows: string[] = [];
  for (const name of names) {
    runs.forEach((run, i) => {
      const c = run.result.classes.find((x) => x.name === name);
      if (!c) return;
      const cells = [
        c.jobs.toLocaleString('en-US'),
        formatSeconds(c.queueSeconds?.p50),
        formatSeconds(c.queueSeconds?.p95),
        formatSeconds(c.queueSeconds?.p99),
        `${c.peakRunners} / ${c.maxRunners}`,
        formatDollars(c.cost.busy),
        formatDollars(c.cost.idle),
        formatDollars(c.cost.total),
        c.waitedOnMaxRunners.toLocaleString('en-US'),
        c.waitedOnQuota.toLocaleString('en-US'),
        c.servedByOtherClass.toLocaleString('en-US'),
      ];
      rows.push(
        `<tr data-class="${escapeHtml(name)}">${i === 0 ? `<td class="class" rowspan="${runs.length}">${escapeHtml(name)}</td>` : ''}` +
          (runs.length > 1
            ? `<td class="run" style="color:${COLOURS[i % COLOURS.length]}">${escapeHtml(run.label)}</td>`
            : '') +
          cells.map((cell) => `<td class="num">${escapeHtml(cell)}</td>`).join('') +
          '</tr>',
      );
    });
  }
  return `<table class="summary"><thead>${head}</thead><tbody>${rows.join('\n')}</tbody></table>`;
}

const active = (c: ClassResult) => c.jobs > 0 || c.runnersCreated > 0;

function warmGrid(rec: Recommendation, label: string): string {
  const max = Math.max(1, ...rec.plan.targets);
  const rows = DAYS.map((day, d) => {
    const cells = rec.plan.targets.slice(d * 24, d * 24 + 24).map((t) => {
      const shade = Math.round(245 - (t / max) * 150);
      return `<td style="background:rgb(${shade},${Math.min(255, shade + 10)},255)">${t}</td>`;
    });
    return `<tr><th>${day}</th>${cells.join('')}</tr>`;
  });
  const hours = Array.from({ length: 24 }, (_, h) => `<th>${h}</th>`).join('');
  return `<table class="warm" data-class="${escapeHtml(rec.className)}"><caption>Warm pool for ${escapeHtml(rec.className)} by hour of week (UTC), ${escapeHtml(label)}; ready ${escapeHtml(formatSeconds(rec.plan.leadMs / 1000))} before each hour</caption><thead><tr><th></th>${hours}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function classCharts(name: string, runs: readonly NamedRun[]): string {
  const first = runs[0] as NamedRun;
  const { start, bucketMs } = first.result.series;
  const bucketLabel = formatSeconds(bucketMs / 1000);
  const objective = runs
    .map((r) => r.result.classes.find((c) => c.name === name)?.warmPool?.objective)
    .find((o) => o !== undefined);
  const maxRunners = [
    ...new Set(
      runs
        .map((r) => r.result.classes.find((c) => c.name === name)?.maxRunners)
        .filter((m): m is number => m !== undefined),
    ),
  ];
  const queueLines: Line[] = [];
  const runnerLines: Line[] = [];
  runs.forEach((run, i) => {
    const series = run.result.series.classes[name];
    if (!series) return;
    const colour = COLOURS[i % COLOURS.length] as string;
    const suffix = runs.length > 1 ? ` (${run.label})` : '';
    queueLines.push({ name: `queue time p95${suffix}`, colour, values: series.queueP95 });
    runnerLines.push({ name: `runner pods${suffix}`, colour, values: series.live });
    runnerLines.push({ name: `busy${suffix}`, colour, values: series.busy, dash: true, width: 1.1 });
    if (series.warmTarget)
      runnerLines.push({
        name: `warm-pool target${suffix}`,
        colour: '#9a6700',
        values: series.warmTarget,
        width: 1.2,
      });
  });
  const queueMarks = objective
    ? [
        {
          value: objective.seconds,
          label: `objective ${objective.percentile} ${formatSeconds(objective.seconds)}`,
          colour: '#9a6700',
        },
      ]
    : [];
  const whose = (value: number) =>
    runs
      .filter((r) => r.result.classes.find((c) => c.name === name)?.maxRunners === value)
      .map((r) => r.label)
      .join(', ');
  const runnerMarks = maxRunners.map((value) => ({
    value,
    label: `maxRunners ${value}${maxRunners.length > 1 ? ` (${whose(value)})` : ''}`,
    colour: '#57606a',
  }));
  return `<section class="class" data-class="${escapeHtml(name)}">
<h2>${escapeHtml(name)}</h2>
${chart({ id: `queue-${name}`, title: `${name}: queue time, 95th percentile of the jobs started in each ${bucketLabel}`, unit: 's', start, bucketMs, lines: queueLines, marks: queueMarks })}
${chart({ id: `runners-${name}`, title: `${name}: runner pods and busy runners, most in each ${bucketLabel}`, unit: '', start, bucketMs, lines: runnerLines, marks: runnerMarks })}
</section>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:1000px;color:#1b1f24;background:#fff;padding:0 1rem}
h1{font-size:1.35rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
p.meta{color:#57606a;margin:.2rem 0}
table{border-collapse:collapse;margin:.8rem 0}
th,td{padding:.25rem .55rem;border-bottom:1px solid #d0d7de;text-align:right}
th:first-child,td.class,td.run{text-align:left}th{background:#f6f8fa;font-weight:600}
td.num{font-variant-numeric:tabular-nums}td.class{font-weight:600}
table.warm td,table.warm th{padding:.1rem .25rem;font-size:12px;text-align:center;border:1px solid #fff}
table.warm caption{text-align:left;color:#57606a;padding-bottom:.3rem}
figure.chart{margin:.8rem 0}figcaption{color:#57606a;margin-bottom:.2rem}
svg.chart{width:100%;height:auto;display:block}
svg.chart rect.plot{fill:#fff;stroke:#d0d7de}
svg.chart line.grid{stroke:#eaeef2}svg.chart line.mark{stroke-dasharray:2 3;stroke-width:1.2}
svg.chart text{font:11px system-ui,sans-serif;fill:#57606a}
svg.chart path.series{fill:none;stroke-linejoin:round}
.legend{display:flex;gap:1.2rem;flex-wrap:wrap;color:#57606a;font-size:12px}
.legend .key svg{vertical-align:middle;margin-right:.3rem}`;

export interface HtmlReportInput {
  runs: readonly NamedRun[];
  traceLabel: string;
  modelDescription: string;
  generatedAt: Date;
}

export function renderHtmlReport(input: HtmlReportInput): string {
  const { runs } = input;
  const first = runs[0]?.result as SimulationResult;
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  const names = [...new Set(runs.flatMap((r) => r.result.classes.filter(active).map((c) => c.name)))].sort();
  const grids = runs.flatMap((run) => run.recommendations.map((rec) => warmGrid(rec, run.label)));
  const title =
    runs.length > 1
      ? `Gantry simulation: ${runs.map((r) => r.label).join(' vs ')}`
      : `Gantry simulation: ${runs[0]?.label ?? ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Trace ${escapeHtml(input.traceLabel)}: ${first.jobs.toLocaleString('en-US')} jobs, ${escapeHtml(iso(first.from))} → ${escapeHtml(iso(first.to))} UTC. Generated ${escapeHtml(input.generatedAt.toISOString())}.</p>
<p class="meta">Model: ${escapeHtml(input.modelDescription)}</p>
${runs
  .map(
    (run, i) =>
      `<p class="meta"><span style="color:${COLOURS[i % COLOURS.length]}">■</span> ${escapeHtml(run.label)}: replayed in ${(run.result.wallMs / 1000).toFixed(1)} s (${run.result.events.toLocaleString('en-US')} events, ${run.result.passes.toLocaleString('en-US')} planning passes); ${run.result.notForGantry.toLocaleString('en-US')} jobs no class covers.</p>`,
  )
  .join('\n')}
<h2>Per class</h2>
${summaryTable(runs)}
${grids.length > 0 ? `<h2>Warm pools</h2>\n${grids.join('\n')}` : ''}
${names.map((name) => classCharts(name, runs)).join('\n')}
</body>
</html>
`;
}
