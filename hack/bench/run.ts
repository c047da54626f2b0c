/**
 * Runs every benchmark in hack/bench/ one after the other, each in its own Node process so that one's
 * heap, timers or control plane cannot skew the next, with their output as it comes and a summary at
 * the end. Exits 1 when any benchmark failed; the others still run.
 *
 *   npm run bench
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const self = basename(fileURLToPath(import.meta.url));
/** The quick ones first, so their numbers are in even when the end-to-end one cannot start. */
const ORDER = ['github-quota', 'planner', 'kube-writes'];

const found = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && file !== self)
  .map((file) => file.slice(0, -'.ts'.length));
const benchmarks = [
  ...ORDER.filter((name) => found.includes(name)),
  ...found.filter((name) => !ORDER.includes(name)).sort(),
];

interface Outcome {
  name: string;
  status: string;
  ok: boolean;
  seconds: number;
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

function run(name: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(here, `${name}.ts`)], { cwd: repoRoot, stdio: 'inherit' });
    current = child;
    const finish = (status: string, ok: boolean) => {
      current = undefined;
      done({ name, status, ok, seconds: (performance.now() - started) / 1000 });
    };
    child.once('error', (err) => finish(`could not start: ${err.message}`, false));
    child.once('exit', (code, signal) =>
      finish(signal ? `killed by ${signal}` : `exit ${code}`, code === 0 && !signal),
    );
  });
}

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
process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
