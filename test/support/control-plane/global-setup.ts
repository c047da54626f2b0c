import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheDir, controlPlaneBinDir } from './binaries.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the kubeconfig every integration test talks to. */
    kubeconfig: string;
    /** Whether the cluster is the embedded one (with KWOK nodes this run created) or an existing one. */
    clusterKind: 'embedded' | 'existing';
  }
}

/**
 * Starts one control plane for the whole test run, shared by every integration file.
 * GANTRY_TEST_CLUSTER=existing uses the cluster named by KUBECONFIG instead (for example a kind
 * cluster where Docker exists); it must run KWOK with Gantry's stages and nodes labelled type=kwok.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.GANTRY_TEST_CLUSTER === 'existing') {
    const kubeconfig = process.env.KUBECONFIG;
    if (!kubeconfig) throw new Error('GANTRY_TEST_CLUSTER=existing needs KUBECONFIG to name the cluster');
    project.provide('kubeconfig', kubeconfig);
    project.provide('clusterKind', 'existing');
    return async () => {};
  }
  const started = Date.now();
  const plane: ControlPlane = await startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    log: (m) => process.stderr.write(`[control plane] ${m}\n`),
  });
  process.stderr.write(
    `[control plane] up in ${((Date.now() - started) / 1000).toFixed(1)} s, kubeconfig ${plane.kubeconfigPath}\n`,
  );
  project.provide('kubeconfig', plane.kubeconfigPath);
  project.provide('clusterKind', 'embedded');
  return () => plane.stop();
}
