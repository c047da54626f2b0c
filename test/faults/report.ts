/** One scenario's outcome: a row of the table the fault suite prints at its end. */
export interface ScenarioRow {
  scenario: string;
  /** What was done to the system. */
  fault: string;
  jobs: number;
  /** Jobs that never completed on a runner. */
  lost: number;
  /** Runner pods, JIT Secrets and GitHub runner registrations left after the drain (-1: never listed). */
  leaked: { pods: number; secrets: number; registrations: number };
  /** Runner pods removed while their runner ran a job (the job would fail on GitHub). */
  busyRemoved: number;
  /** Most live runner pods of each class at once, and the class's maxRunners. */
  peakRunners: Record<string, { peak: number; max: number }>;
  /** Highest resident set of any Gantry process of the scenario, MiB. */
  peakRssMiB: number;
  seconds: number;
  passed: boolean;
  /** What else was measured (outage request rates, takeover time, responses to a flood). */
  notes: string;
}

export function renderTable(rows: readonly ScenarioRow[]): string {
  const header = [
    'scenario',
    'fault',
    'jobs',
    'lost',
    'leaked',
    'busy removed',
    'peak runners / max',
    'peak RSS',
    's',
    'ok',
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.fault,
    String(r.jobs),
    String(r.lost),
    r.leaked.pods < 0 ? 'unknown' : String(r.leaked.pods + r.leaked.secrets + r.leaked.registrations),
    String(r.busyRemoved),
    Object.entries(r.peakRunners)
      .map(([name, { peak, max }]) => `${name} ${peak}/${max}`)
      .join(', '),
    `${r.peakRssMiB} MiB`,
    String(r.seconds),
    r.passed ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const notes = rows.filter((r) => r.notes).map((r) => `- ${r.scenario}: ${r.notes}`);
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
}
