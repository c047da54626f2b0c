import { formatSeconds } from '../../src/http/status-page.ts';
import type { StatusReport } from '../../src/metrics/status.ts';
import type { FakeGithub } from '../../test/support/fake-github/index.ts';

// The demo's live view of Gantry's own figures.

/** How often the view is refreshed: in place on a terminal, as new lines elsewhere (logs, CI). */
const REDRAW_MS = 1_000;
const PLAIN_EVERY_MS = 5_000;
const EVENTS_SHOWN = 6;

interface Frame {
  report?: StatusReport;
  /** Dollars per class since Gantry started: gantry_cost_dollars_total, busy and idle. */
  costs: Map<string, number>;
  error?: string;
  /** Jobs on the simulated GitHub by status: the load's side, not Gantry's. */
  jobs: Map<string, number>;
  elapsedMs: number;
  /** How long the demo runs, when --duration said. */
  durationMs?: number;
}

/**
 * Gantry's own view of its classes (GET /api/status, the status page's source, and the cost counter
 * of GET /metrics), polled: nothing here is counted by the demo itself.
 */
export class LiveView {
  readonly #url: string;
  readonly #fake: FakeGithub;
  readonly #startedAt: number;
  readonly #durationMs: number | undefined;
  readonly #interactive: boolean;
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #busy = false;

  constructor(options: {
    url: string;
    fake: FakeGithub;
    startedAt: number;
    interactive: boolean;
    durationMs?: number;
  }) {
    this.#durationMs = options.durationMs;
    this.#url = options.url;
    this.#fake = options.fake;
    this.#startedAt = options.startedAt;
    this.#interactive = options.interactive;
  }

  start(): void {
    if (this.#interactive) {
      process.stdout.write('\x1b[?25l');
      process.stdout.on('resize', this.#onResize);
    }
    void this.#refresh();
    this.#timer = setInterval(() => void this.#refresh(), this.#interactive ? REDRAW_MS : PLAIN_EVERY_MS);
  }

  /** Leaves the last frame on screen. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#interactive) {
      process.stdout.off('resize', this.#onResize);
      process.stdout.write('\x1b[?25h');
    }
    this.#drawn = 0;
  }

  /** Removes the frame, so a message can be written where it was (the next refresh draws it below). */
  clear(): void {
    if (this.#interactive && this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  readonly #onResize = () => {
    // Lines wrapped at the old width cannot be counted back: start from a clean screen.
    process.stdout.write('\x1b[2J\x1b[H');
    this.#drawn = 0;
  };

  async #refresh(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const frame = await this.#frame();
      if (this.#timer === undefined) return;
      if (this.#interactive) this.#draw(renderFrame(frame, process.stdout.columns ?? 120));
      else process.stdout.write(`${renderPlain(frame).join('\n')}\n`);
    } finally {
      this.#busy = false;
    }
  }

  async #frame(): Promise<Frame> {
    const jobs = new Map<string, number>();
    for (const job of this.#fake.jobs()) jobs.set(job.status, (jobs.get(job.status) ?? 0) + 1);
    const elapsedMs = Date.now() - this.#startedAt;
    const durationMs = this.#durationMs;
    try {
      const signal = AbortSignal.timeout(2_000);
      const [report, metrics] = await Promise.all([
        fetch(`${this.#url}/api/status`, { signal }).then((r) => r.json() as Promise<StatusReport>),
        fetch(`${this.#url}/metrics`, { signal }).then((r) => r.text()),
      ]);
      return {
        report,
        costs: costsFromMetrics(metrics),
        jobs,
        elapsedMs,
        ...(durationMs ? { durationMs } : {}),
      };
    } catch (err) {
      return {
        costs: new Map(),
        jobs,
        elapsedMs,
        ...(durationMs ? { durationMs } : {}),
        error: `status unavailable: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }

  #draw(lines: string[]): void {
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}F\x1b[J` : '';
    process.stdout.write(`${up}${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }
}

const COLUMNS = ['CLASS', 'QUEUED', 'STARTING', 'IDLE', 'BUSY', 'MAX', 'QUEUE P95', 'COST SO FAR'];

function classRows(frame: Frame): string[][] {
  return (frame.report?.classes ?? []).map((c) => [
    c.name,
    String(c.queued),
    String(c.starting),
    String(c.idle),
    String(c.busy),
    String(c.maxRunners),
    formatSeconds(c.queueP95Seconds),
    formatCost(frame.costs.get(c.name) ?? 0),
  ]);
}

function jobsLine(frame: Frame): string {
  const parts = ['completed', 'in_progress', 'queued']
    .map((status) => `${frame.jobs.get(status) ?? 0} ${status.replace('_', ' ')}`)
    .join(', ');
  return `jobs on the simulated GitHub: ${parts}`;
}

/** The terminal frame, every line cut to the width so that the redraw can count them. */
function renderFrame(frame: Frame, width: number): string[] {
  const rows = classRows(frame);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ');
  const lines = [
    `gantry demo · ${formatElapsed(frame.elapsedMs)}${frame.durationMs ? ` of ${formatElapsed(frame.durationMs)}` : ''} · Ctrl-C stops everything`,
    '',
    line(COLUMNS),
    ...rows.map(line),
    ...(frame.error ? [frame.error] : []),
    '',
    jobsLine(frame),
    '',
    'recent events',
    ...(frame.report?.events ?? [])
      .slice(0, EVENTS_SHOWN)
      .map(
        (e) =>
          `  ${e.at.slice(11, 19)}  ${e.class ? `${e.class}: ` : ''}${e.message.replace(/\p{Cc}/gu, ' ')}`,
      ),
  ];
  return lines.map((l) => (l.length >= width ? `${l.slice(0, Math.max(0, width - 2))}…` : l));
}

/** One line per class and one for the jobs, each stamped with the time since the load began. */
function renderPlain(frame: Frame): string[] {
  const stamp = `[demo ${formatElapsed(frame.elapsedMs)}]`;
  const rows = classRows(frame);
  const nameWidth = Math.max(0, ...rows.map((r) => (r[0] ?? '').length));
  return [
    ...rows.map(
      ([name = '', queued, starting, idle, busy, max, p95, cost]) =>
        `${stamp} ${name.padEnd(nameWidth)}  queued ${queued}  starting ${starting}  idle ${idle}  busy ${busy}  ` +
        `max ${max}  queue p95 ${p95}  cost so far ${cost}`,
    ),
    ...(frame.error ? [`${stamp} ${frame.error}`] : []),
    `${stamp} ${jobsLine(frame)}`,
  ];
}

/** Sums `gantry_cost_dollars_total` per class from a Prometheus text scrape. */
function costsFromMetrics(text: string): Map<string, number> {
  const costs = new Map<string, number>();
  for (const match of text.matchAll(/^gantry_cost_dollars_total\{([^}]*)\} (\S+)$/gm)) {
    const className = /(?:^|,)class="([^"]*)"/.exec(match[1] ?? '')?.[1];
    const value = Number(match[2]);
    if (className !== undefined && Number.isFinite(value)) {
      costs.set(className, (costs.get(className) ?? 0) + value);
    }
  }
  return costs;
}

/** A demo's runners cost fractions of a cent: four decimals. */
const formatCost = (dollars: number) => `$${dollars.toFixed(4)}`;

export function formatElapsed(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}
