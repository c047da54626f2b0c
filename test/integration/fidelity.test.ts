import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveVersusSimulated, type PlayedRun } from '../support/fidelity.ts';
import { ensureSandboxRuntimeClass, runnerClass } from '../support/gantry-env.ts';
import { deleteNamespace, testKubeConfig } from '../support/kube.ts';

// The simulator against the real thing, small: the same jobs run live on the local control plane and
// through `gantry simulate` (the trace Gantry recorded, its measured start-ups, its configuration).
// Per class the simulated queue time p95 and cost must come close to the live ones. The live side runs
// on a shared machine, so the bounds here are wider than the README's figures (15% and 10%), which come
// from hack/simulate/fidelity.ts.

const kc = testKubeConfig();
const cleanup: string[] = [];
beforeAll(() => ensureSandboxRuntimeClass(kc));
afterAll(async () => {
  await Promise.all(cleanup.map((ns) => deleteNamespace(kc, ns)));
});

const LINT = ['self-hosted', 'lint'];
const BUILD = ['self-hosted', 'build'];
const E2E = ['self-hosted', 'e2e'];
const COST = { perVcpuHour: 2, perGibHour: 1, perRunnerHour: 0.5 };

const run = (
  atSeconds: number,
  labels: string[],
  jobs: number,
  seconds: number,
  repo = 'acme/app',
): PlayedRun => ({
  atMs: atSeconds * 1000,
  repo,
  labels,
  jobs,
  durationMs: seconds * 1000,
});

describe('the simulator against a live run of the same jobs', () => {
  it('finds the queue times and the cost Gantry found live', { timeout: 400_000 }, async () => {
    const result = await liveVersusSimulated(kc, {
      namespaces: ['main'],
      cleanup,
      classes: ({ main }) => ({
        // Warm: most jobs find an idle runner.
        lint: runnerClass(main as string, LINT, { minIdle: 2, maxRunners: 8, cost: COST }),
        // Two at a time: jobs wait for the ones before them.
        build: runnerClass(main as string, BUILD, { maxRunners: 2, cost: COST }),
        // Cold: every job waits for its runner to start.
        e2e: runnerClass(main as string, E2E, { maxRunners: 6, cost: COST }),
      }),
      runs: [
        run(0, LINT, 3, 6),
        run(2, BUILD, 5, 8),
        run(5, E2E, 1, 10),
        run(10, LINT, 2, 5, 'acme/lib'),
        run(15, E2E, 2, 6),
        run(20, LINT, 4, 6),
        run(30, BUILD, 3, 8, 'acme/web'),
        run(35, LINT, 1, 4),
        run(40, E2E, 1, 5),
        run(45, LINT, 3, 5),
      ],
    });
    for (const c of result.classes) {
      const live = c.live.queueSeconds?.p95 ?? Number.NaN;
      const simulated = c.simulated.queueSeconds?.p95 ?? Number.NaN;
      const figures = `${c.name}: queue p95 live ${live} s, simulated ${simulated} s; cost live $${c.live.cost.toFixed(4)}, simulated $${c.simulated.cost.toFixed(4)}`;
      expect(c.simulated.jobs, figures).toBe(c.live.jobs);
      expect(Math.abs(simulated - live), figures).toBeLessThanOrEqual(Math.max(0.3 * live, 2));
      expect(Math.abs(c.simulated.cost - c.live.cost), figures).toBeLessThanOrEqual(0.25 * c.live.cost);
    }
    // The classes did what they were set up to do, on both sides.
    const build = result.classes.find((c) => c.name === 'build');
    expect(build?.live.queueSeconds?.p95).toBeGreaterThan(8);
    const lint = result.classes.find((c) => c.name === 'lint');
    expect(lint?.live.queueSeconds?.p50).toBeLessThanOrEqual(1);
    expect(result.classes.map((c) => c.live.jobs)).toEqual([8, 4, 13]);
  });
});
