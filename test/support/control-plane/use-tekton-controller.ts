import { afterAll, beforeAll, inject } from 'vitest';
import { createTestNamespace, deleteNamespace, testKubeConfig } from '../kube.ts';
import { controlPlaneBinDir } from './binaries.ts';
import {
  startTektonController,
  type TektonController,
  type TektonControllerOptions,
  tektonControllerMissing,
} from './tekton-controller.ts';

/**
 * Why a test file cannot have Tekton's controller, or undefined when it can: it runs only against
 * the embedded control plane (another cluster may run a Tekton of its own), and only when
 * build.sh built it. For `describe.skipIf(tektonControllerSkipReason())`.
 */
export function tektonControllerSkipReason(): string | undefined {
  if (inject('clusterKind') === 'existing')
    return 'Tekton’s controller runs only on the embedded control plane';
  return tektonControllerMissing(binDir());
}

let cachedBinDir: string | undefined;
/** build.sh, run once per test file: the global setup has built or checked everything already. */
function binDir(): string {
  cachedBinDir ??= controlPlaneBinDir();
  return cachedBinDir;
}

export interface TektonNamespace {
  /** A fresh namespace whose runs Tekton's controller reconciles. */
  readonly namespace: string;
  readonly controller: TektonController;
}

/**
 * For one test file: before its tests, a fresh namespace and a Tekton controller that watches it;
 * after them, both are removed. Call at the top of the file (or of a describe block). The fields of
 * the returned object are set once beforeAll has run.
 */
export function useTektonController(
  options: {
    /** Prefix of the namespace's generated name. */
    prefix?: string;
    /** Labels of the namespace, e.g. Pod Security levels. */
    labels?: Record<string, string>;
  } & Pick<TektonControllerOptions, 'featureFlags' | 'defaults'> = {},
): TektonNamespace {
  const kc = testKubeConfig();
  let namespace: string | undefined;
  let controller: TektonController | undefined;
  beforeAll(async () => {
    namespace = await createTestNamespace(kc, options.prefix ?? 'tekton', options.labels);
    controller = await startTektonController({
      kubeconfigPath: inject('kubeconfig'),
      namespace,
      binDir: binDir(),
      ...(options.featureFlags ? { featureFlags: options.featureFlags } : {}),
      ...(options.defaults ? { defaults: options.defaults } : {}),
    });
  });
  afterAll(async () => {
    await controller?.stop();
    if (namespace) await deleteNamespace(kc, namespace);
  });
  return {
    get namespace() {
      if (!namespace) throw new Error('the Tekton namespace exists only once beforeAll has run');
      return namespace;
    },
    get controller() {
      if (!controller) throw new Error('Tekton’s controller runs only once beforeAll has run');
      return controller;
    },
  };
}
