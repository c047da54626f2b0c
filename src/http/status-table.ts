import type { StatusReport } from '../metrics/status.ts';
import { formatDollars, formatSeconds } from './status-page.ts';

/** The status report as a plain-text table for a terminal (what `gantry status` prints). */
export function renderStatusTable(report: StatusReport, maxEvents = 10): string {
  const header = [
    'CLASS',
    'QUEUED',
    'STARTING',
    'IDLE',
    'BUSY',
    'ADMITTED',
    'MAX',
    'QUEUE P95',
    'COST TODAY',
  ];
  const rows = report.classes.map((c) => [
    c.name,
    String(c.queued),
    String(c.starting),
    String(c.idle),
    String(c.busy),
    String(c.admitted),
    String(c.maxRunners),
    formatSeconds(c.queueP95Seconds),
    formatDollars(c.costTodayDollars),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [`Gantry status as of ${report.generatedAt}`, ''];
  if (rows.length === 0) out.push('No runner classes are configured.');
  else out.push(line(header), ...rows.map(line));
  if (report.scaleSets && report.scaleSets.length > 0) {
    out.push('', 'Scale sets:');
    for (const s of report.scaleSets) {
      const stats = s.statistics;
      const jobs = stats
        ? `assigned ${stats.assignedJobs}  running ${stats.runningJobs}`
        : 'no statistics yet';
      out.push(
        `  ${s.className}: ${s.scaleSet}  session ${s.session ? 'held' : 'not held'}  capacity ${s.capacity}  ${jobs}`,
      );
    }
  }
  out.push('', 'Recent events:');
  const events = report.events.slice(0, maxEvents);
  if (events.length === 0) out.push('  none yet');
  for (const e of events) {
    // Control characters from outside (job names) must not drive the terminal.
    const message = e.message.replace(/\p{Cc}/gu, ' ');
    out.push(`  ${e.at.slice(11, 19)}  ${e.class ? `${e.class}: ` : ''}${message}`);
  }
  return `${out.join('\n')}\n`;
}

/** Whether a parsed body looks like a status report (a guard against pointing at the wrong server). */
export function isStatusReport(value: unknown): value is StatusReport {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.generatedAt === 'string' && Array.isArray(v.classes) && Array.isArray(v.events);
}
