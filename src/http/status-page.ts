import type { StatusReport } from '../metrics/status.ts';

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and quoted attributes: every value shown comes from outside. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A class's warm pool: the target and the objective it serves, or why it has none yet. */
function describeWarmPool(c: StatusReport['classes'][number]): string {
  const pool = c.warmPool;
  if (!pool) return '–';
  const objective = `${pool.objective.percentile} ≤ ${formatSeconds(pool.objective.seconds)}`;
  if (pool.unknown === 'no-waits') return `${pool.target} (${objective}; no waits seen yet)`;
  if (pool.unknown === 'no-arrivals') return `${pool.target} (${objective}; no arrivals this hour)`;
  return `${pool.target} (${objective}${pool.met ? '' : ', not reachable'})`;
}

export function formatDollars(dollars: number): string {
  return `$${dollars.toFixed(2)}`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff}
h1{font-size:1.3rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
p.meta{color:#57606a;margin:0 0 1rem}
table{border-collapse:collapse;min-width:40rem}
th,td{padding:.3rem .7rem;border-bottom:1px solid #d0d7de;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
td.num{font-variant-numeric:tabular-nums}
ol{padding-left:1.2rem}li{margin:.15rem 0}time{color:#57606a;font-variant-numeric:tabular-nums}
.class{font-weight:600}`;

/** GitHub in scale-set mode: each class's scale set, its session and the service's own counts. */
function renderScaleSets(report: StatusReport): string {
  if (!report.scaleSets || report.scaleSets.length === 0) return '';
  const rows = report.scaleSets
    .map((s) => {
      const stats = s.statistics;
      const cells = [
        s.scaleSetId === null ? s.scaleSet : `${s.scaleSet} (${s.scaleSetId})`,
        s.session ? 'held' : '–',
        String(s.capacity),
        stats ? String(stats.assignedJobs - stats.runningJobs) : '–',
        stats ? String(stats.runningJobs) : '–',
        stats ? `${stats.registeredRunners} / ${stats.busyRunners} / ${stats.idleRunners}` : '–',
        String(s.retained),
      ];
      return (
        `<tr data-scale-set="${escapeHtml(s.className)}"><td class="class">${escapeHtml(s.className)}</td>` +
        cells.map((v) => `<td class="num">${escapeHtml(v)}</td>`).join('') +
        '</tr>'
      );
    })
    .join('\n');
  return `<h2>Scale sets</h2>
<table>
<thead><tr><th>class</th><th>scale set</th><th>session</th><th>capacity</th><th>assigned, waiting</th><th>running</th><th>runners: registered / busy / idle</th><th>messages kept</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
`;
}

/** The status page: small, self-contained HTML (no scripts, no external assets), refreshed by the browser. */
export function renderStatusPage(report: StatusReport): string {
  const warmPools = report.classes.some((c) => c.warmPool);
  const rows = report.classes
    .map(
      (c) =>
        `<tr data-class="${escapeHtml(c.name)}"><td class="class">${escapeHtml(c.name)}</td>` +
        [
          c.queued,
          c.starting,
          c.idle,
          c.busy,
          c.admitted,
          `${c.starting + c.idle + c.busy + c.admitted} / ${c.maxRunners}`,
        ]
          .map((v) => `<td class="num">${escapeHtml(String(v))}</td>`)
          .join('') +
        `<td class="num">${escapeHtml(formatSeconds(c.queueP95Seconds))}</td>` +
        `<td class="num">${escapeHtml(formatDollars(c.costTodayDollars))}</td>` +
        (warmPools ? `<td class="num warm">${escapeHtml(describeWarmPool(c))}</td>` : '') +
        '</tr>',
    )
    .join('\n');
  const events =
    report.events.length === 0
      ? '<p>No events yet.</p>'
      : `<ol>${report.events
          .map(
            (e) =>
              `<li><time datetime="${escapeHtml(e.at)}">${escapeHtml(e.at.slice(11, 19))}</time> ` +
              `${e.class ? `<span class="class">${escapeHtml(e.class)}</span> ` : ''}${escapeHtml(e.message)}</li>`,
          )
          .join('\n')}</ol>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>Gantry status</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Gantry</h1>
<p class="meta">As of <time datetime="${escapeHtml(report.generatedAt)}">${escapeHtml(report.generatedAt)}</time> · <a href="/api/status">JSON</a> · <a href="/metrics">metrics</a></p>
<h2>Runner classes</h2>
${
  report.classes.length === 0
    ? '<p>No runner classes are configured.</p>'
    : `<table>
<thead><tr><th>class</th><th>queued</th><th>starting</th><th>idle</th><th>busy</th><th>admitted runs</th><th>in use / max</th><th>queue p95 (1 h)</th><th>cost today (UTC)</th>${warmPools ? '<th>warm pool (objective)</th>' : ''}</tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
${renderScaleSets(report)}<h2>Recent events</h2>
${events}
</body>
</html>
`;
}
