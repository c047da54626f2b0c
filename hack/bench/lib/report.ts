/** Numbers and tables the benchmarks print, and the JSON line `npm run bench` collects from each. */

/** Nearest-rank quantile (q in 0..1); NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

/** Rounded to `digits`; not a number stays NaN, which the JSON output writes as null. */
export const round = (value: number, digits = 3): number =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : Number.NaN;

export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${title}\n\n${format(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of rows) process.stdout.write(`${format(row)}\n`);
  process.stdout.write('\n');
}

/** One line of the summary `npm run bench` prints at the end (and docs/performance.md's table). */
export interface Headline {
  what: string;
  figure: string;
  baseline: string;
}

/** The benchmark's JSON, on one line of its own at the end of its output: `npm run bench` collects it. */
export function emitJson(result: { benchmark: string; headline: Headline[] } & Record<string, unknown>) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * Runs a benchmark to its end: `cleanUp` runs whatever happened, and a failure is printed with its
 * stack and ends the process with code 1 (what it started may hold it open otherwise).
 */
export function runBench(main: () => Promise<void>, cleanUp: () => Promise<unknown> = async () => {}): void {
  main().then(cleanUp, async (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await cleanUp();
    process.exit(1);
  });
}
