/**
 * Runs every benchmark in hack/bench/ one after the other, each in its own Node process so that one's
 * heap, timers or control plane cannot skew the next, with their output as it comes and a summary at
 * the end: how each ended, and the headline figures of all of them in one table (each benchmark's
 * last JSON line carries its `headline`). Every benchmark's JSON, with the machine and the date, is
 * written to one file. Exits 1 when any benchmark failed; the others still run.
 *
 *   npm run bench [-- [--json FILE] [NAME...]]   (default file: dist/bench/bench-<time>.json)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Headline } from './lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const self = basename(fileURLToPath(import.meta.url));
/** The quick ones first, so their numbers are in even when the end-to-end ones cannot start. */
const ORDER = ['github-quota', 'planner', 'memory', 'kube-writes', 'decision-latency', 'throughput'];

const { values: options, positionals } = parseArgs({
  options: { json: { type: 'string' } },
  allowPositionals: true,
});
const found = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && file !== self)
  .map((file) => file.slice(0, -'.ts'.length));
const unknown = positionals.filter((name) => !found.includes(name));
if (unknown.length > 0) throw new Error(`no benchmark ${unknown.join(', ')}; there are ${found.join(', ')}`);
const benchmarks = [
  ...ORDER.filter((name) => found.includes(name)),
  ...found.filter((name) => !ORDER.includes(name)).sort(),
].filter((name) => positionals.length === 0 || positionals.includes(name));

interface Outcome {
  name: string;
  status: string;
  ok: boolean;
  seconds: number;
  /** The benchmark's JSON line, when it printed one. */
  result?: { benchmark: string; headline?: Headline[] } & Record<string, unknown>;
}

let current: ReturnType<typeof spawn> | undefined;
let interrupted = false;
// Ctrl-C reaches every process of the terminal's group, so the running benchmark gets it already and
// cleans up; a SIGTERM sent to this process alone is passed on. Either way no further benchmark starts.
process.on('SIGINT', () => {
  interrupted = true;
});
process.on('SIGTERM', () => {
  interrupted = true;
  current?.kill('SIGTERM');
});

/** The last line of `output` that is a benchmark's JSON. */
function resultOf(output: string): Outcome['result'] {
  for (const line of output.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Outcome['result'];
      if (parsed && typeof parsed.benchmark === 'string') return parsed;
    } catch {}
  }
  return undefined;
}

function run(name: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(here, `${name}.ts`)], {
      cwd: repoRoot,
      stdio: ['inherit', 'pipe', 'inherit'],
    });
    current = child;
    // Passed on as it comes, and kept for the JSON line.
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString('utf8');
    });
    const finish = (status: string, ok: boolean) => {
      current = undefined;
      const result = resultOf(output);
      done({
        name,
        status,
        ok,
        seconds: (performance.now() - started) / 1000,
        ...(result ? { result } : {}),
      });
    };
    child.once('error', (err) => finish(`could not start: ${err.message}`, false));
    child.once('exit', (code, signal) =>
      finish(signal ? `killed by ${signal}` : `exit ${code}`, code === 0 && !signal),
    );
  });
}

const wallStart = performance.now();
const startedAt = new Date();
const loadBefore = loadavg();
const outcomes: Outcome[] = [];
for (const name of benchmarks) {
  if (interrupted) {
    outcomes.push({ name, status: 'not run (interrupted)', ok: false, seconds: 0 });
    continue;
  }
  process.stdout.write(`\n=== ${name} (hack/bench/${name}.ts) ===\n\n`);
  outcomes.push(await run(name));
}

const rows = outcomes.map((o) => [o.name, o.ok ? 'ok' : 'FAILED', o.status, o.seconds.toFixed(1)]);
const header = ['benchmark', 'result', 'status', 'seconds'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
const format = (cells: string[]) =>
  cells
    .map((cell, i) => cell.padEnd(widths[i] ?? 0))
    .join('  ')
    .trimEnd();
process.stdout.write(
  `\n=== summary ===\n\n${format(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`,
);
for (const row of rows) process.stdout.write(`${format(row)}\n`);

const wallSeconds = (performance.now() - wallStart) / 1000;
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  loadAverage: {
    before: loadBefore.map((l) => Number(l.toFixed(2))),
    after: loadavg().map((l) => Number(l.toFixed(2))),
  },
};
// The figures as docs/performance.md's table has them, in Markdown.
const headlines = outcomes.flatMap((o) => o.result?.headline ?? []);
if (headlines.length > 0) {
  const cells = [
    ['what', 'figure', 'baseline in the same run'],
    ...headlines.map((h) => [h.what, h.figure, h.baseline]),
  ];
  const cellWidths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => `| ${c.map((cell, i) => cell.padEnd(cellWidths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `\n=== headline figures (${startedAt.toISOString().slice(0, 10)}, ${machine.cpus} CPUs, ${machine.memoryGiB} GiB, ` +
      `node ${machine.node}, load average before ${machine.loadAverage.before[0]}) ===\n\n`,
  );
  process.stdout.write(`${line(cells[0] ?? [])}\n| ${cellWidths.map((w) => '-'.repeat(w)).join(' | ')} |\n`);
  for (const c of cells.slice(1)) process.stdout.write(`${line(c)}\n`);
}

const jsonPath = resolve(
  options.json ??
    join(repoRoot, 'dist', 'bench', `bench-${startedAt.toISOString().replaceAll(':', '-')}.json`),
);
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(
  jsonPath,
  `${JSON.stringify(
    {
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      startedAt: startedAt.toISOString(),
      wallSeconds: Number(wallSeconds.toFixed(1)),
      machine,
      benchmarks: outcomes.map(({ name, status, ok, seconds, result }) => ({
        name,
        status,
        ok,
        seconds: Number(seconds.toFixed(1)),
        result: result ?? null,
      })),
    },
    null,
    2,
  )}\n`,
);
process.stdout.write(
  `\nall of it in ${relative(process.cwd(), jsonPath) || jsonPath}; wall time ${(wallSeconds / 60).toFixed(1)} min\n`,
);
process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
