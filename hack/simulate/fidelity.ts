/**
 * The simulator against a live run: starts the local control plane (as `npm run demo` does), plays a
 * few minutes of jobs of three classes (warm, limited by maxRunners, cold) through Gantry, the fake
 * GitHub and the runner simulator, then replays the trace Gantry recorded through `gantry simulate`
 * with the start-ups Gantry measured, and prints both per class: queue time p50/p95 and cost.
 *
 *   node hack/simulate/fidelity.ts [--minutes 4] [--seed 5]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { seededRandom } from '../../src/util/distribution.ts';
import { cacheDir, controlPlaneBinDir } from '../../test/support/control-plane/binaries.ts';
import { startControlPlane } from '../../test/support/control-plane/control-plane.ts';
import { liveVersusSimulated, type PlayedRun } from '../../test/support/fidelity.ts';
import { ensureSandboxRuntimeClass, runnerClass } from '../../test/support/gantry-env.ts';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '4' }, seed: { type: 'string', default: '5' } },
});
const minutes = Number(values.minutes);
const random = seededRandom(Number(values.seed));
const LINT = ['self-hosted', 'lint'];
const BUILD = ['self-hosted', 'build'];
const E2E = ['self-hosted', 'e2e'];
const COST = { perVcpuHour: 2, perGibHour: 1, perRunnerHour: 0.5 };

/** Runs at random times: lint often and short in matrices, build in bursts, e2e now and then. */
function playlist(): PlayedRun[] {
  const runs: PlayedRun[] = [];
  const span = minutes * 60_000;
  const add = (labels: string[], everyMs: number, jobs: () => number, seconds: () => number) => {
    for (let t = random() * everyMs; t < span; t += -Math.log(Math.max(random(), 1e-9)) * everyMs) {
      runs.push({
        atMs: Math.round(t),
        repo: random() < 0.5 ? 'acme/app' : 'acme/lib',
        labels,
        jobs: jobs(),
        durationMs: Math.round(seconds()) * 1000,
      });
    }
  };
  add(
    LINT,
    9_000,
    () => 1 + Math.floor(random() * 4),
    () => 4 + random() * 8,
  );
  add(
    BUILD,
    25_000,
    () => 2 + Math.floor(random() * 4),
    () => 6 + random() * 8,
  );
  add(
    E2E,
    20_000,
    () => 1,
    () => 8 + random() * 12,
  );
  return runs.sort((a, b) => a.atMs - b.atMs);
}

const plane = await startControlPlane({
  binDir: controlPlaneBinDir(),
  runsDir: join(cacheDir(), 'runs'),
  log: (m) => process.stderr.write(`[control plane] ${m}\n`),
});
try {
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  await ensureSandboxRuntimeClass(kc);
  const runs = playlist();
  process.stdout.write(
    `${runs.length} runs, ${runs.reduce((n, r) => n + r.jobs, 0)} jobs over ${minutes} min\n`,
  );
  const result = await liveVersusSimulated(kc, {
    namespaces: ['main'],
    cleanup: [],
    classes: ({ main }) => ({
      lint: runnerClass(main as string, LINT, { minIdle: 2, maxRunners: 8, cost: COST }),
      build: runnerClass(main as string, BUILD, { maxRunners: 2, cost: COST }),
      e2e: runnerClass(main as string, E2E, { maxRunners: 6, cost: COST }),
    }),
    runs,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const rows = result.classes.map((c) => {
    const lp = c.live.queueSeconds?.p95 ?? Number.NaN;
    const sp = c.simulated.queueSeconds?.p95 ?? Number.NaN;
    return [
      c.name,
      String(c.live.jobs),
      `${c.live.queueSeconds?.p50} / ${lp} s`,
      `${c.simulated.queueSeconds?.p50} / ${sp} s`,
      lp === 0 ? '–' : `${(((sp - lp) / lp) * 100).toFixed(0)}%`,
      `$${c.live.cost.toFixed(4)}`,
      `$${c.simulated.cost.toFixed(4)}`,
      `${(((c.simulated.cost - c.live.cost) / c.live.cost) * 100).toFixed(0)}%`,
    ];
  });
  const header = [
    'class',
    'jobs',
    'live p50 / p95',
    'simulated p50 / p95',
    'p95 diff',
    'live cost',
    'simulated cost',
    'cost diff',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  process.stdout.write(
    `live run ${(result.liveMs / 1000).toFixed(0)} s\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`,
  );
  process.stdout.write(`start-up fitted: ${JSON.stringify(result.model.startupByClass)}\n`);
  process.stdout.write(`${JSON.stringify({ fidelity: result.classes })}\n`);
} finally {
  await plane.stop();
}
