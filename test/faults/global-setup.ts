import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheDir, controlPlaneBinDir } from '../support/control-plane/binaries.ts';
import { startControlPlane, stopRun } from '../support/control-plane/control-plane.ts';
import { renderTable, type ScenarioRow } from './report.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Kubeconfig of the fault suite's own control plane (never the shared one: its faults would hit other files). */
    faultsKubeconfig: string;
    /** That control plane's run folder, for process control of its components. */
    faultsRunDir: string;
    /** JSON-lines file each scenario appends its row to; the table is printed at the end. */
    faultsReport: string;
    /** Folder for the Gantry processes' logs. */
    faultsLogDir: string;
  }
}

/**
 * The fault suite's control plane: its own etcd, apiserver and the rest, which the scenarios
 * restart and pause while the integration tests keep theirs. Prints the table of faults survived
 * when the suite ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const plane = await startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    name: `faults-${process.pid}-${Date.now().toString(36)}`,
    log: (m) => process.stderr.write(`[faults control plane] ${m}\n`),
  });
  process.stderr.write(
    `[faults control plane] up in ${((Date.now() - started) / 1000).toFixed(1)} s, kubeconfig ${plane.kubeconfigPath}\n`,
  );
  const work = await mkdtemp(join(tmpdir(), 'gantry-faults-'));
  const report = join(work, 'report.jsonl');
  project.provide('faultsKubeconfig', plane.kubeconfigPath);
  project.provide('faultsRunDir', plane.runDir);
  project.provide('faultsReport', report);
  project.provide('faultsLogDir', join(work, 'logs'));
  return async () => {
    const rows = await readFile(report, 'utf8').then(
      (text) =>
        text
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as ScenarioRow),
      () => [] as ScenarioRow[],
    );
    if (rows.length > 0) {
      const wall = ((Date.now() - started) / 1000).toFixed(0);
      process.stderr.write(`\n${renderTable(rows)}\nfault suite: ${wall} s wall\n`);
    }
    const keep = process.env.GANTRY_FAULTS_KEEP_LOGS !== undefined || rows.some((r) => !r.passed);
    // The components' logs go with Gantry's when something failed: they tell what the cluster did.
    if (keep) await cp(join(plane.runDir, 'logs'), join(work, 'control-plane-logs'), { recursive: true });
    // By the record, not the start-up's list: restarted components have new pids.
    await stopRun(plane.runDir);
    if (keep) process.stderr.write(`fault suite logs kept in ${work}\n`);
    else await rm(work, { recursive: true, force: true });
  };
}
