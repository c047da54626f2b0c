import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { applyCrds, forgetAddon, recordAddon, runDirOf } from './control-plane.ts';
import {
  type Component,
  freePort,
  isAlive,
  logTail,
  startComponent,
  stopProcess,
  waitUntil,
} from './processes.ts';

/**
 * Tekton Pipelines' real controller (cmd/controller of github.com/tektoncd/pipeline, built by
 * hack/control-plane/build.sh) run as a child process against a running control plane. It turns
 * PipelineRuns into TaskRuns and pods; KWOK plays those pods (kwok-tekton-stages.yaml finishes them
 * as Tekton's entrypoint would), so runs really reach Succeeded.
 *
 * Each controller watches one namespace (`--namespace`) and has a system namespace of its own for
 * its ConfigMaps, with high availability (leader election) off: controllers of test files running
 * at the same time never reconcile the same run, and each may have its own feature flags. Runs in
 * several namespaces need a controller for each.
 *
 * Tekton's webhook is not run: runs are not defaulted or validated at admission (the controller
 * applies the defaults itself when it reconciles), and only tekton.dev/v1 may be used. Steps need a
 * `script` (or a `command`): for a step with neither Tekton would look the image's entrypoint up
 * in its registry, which these tests cannot reach.
 */
export interface TektonController {
  /** The namespace whose runs it reconciles. */
  namespace: string;
  /** The namespace of its ConfigMaps (what a release installs into tekton-pipelines). */
  systemNamespace: string;
  pid: number;
  logPath: string;
  /** The last lines of its log, for a failing test's message. */
  logTail(lines?: number): Promise<string>;
  /** Stops the process (SIGTERM, then SIGKILL) and removes its system namespace. */
  stop(): Promise<void>;
}

export interface TektonControllerOptions {
  kubeconfigPath: string;
  /** Namespace whose PipelineRuns and TaskRuns it reconciles (it must exist). */
  namespace: string;
  /** Folder of the control-plane binaries, with tekton-controller and tekton-config/. */
  binDir: string;
  /** Entries over those of Tekton's feature-flags ConfigMap, e.g. { 'set-security-context': 'true' }. */
  featureFlags?: Record<string, string>;
  /** Entries over those of Tekton's config-defaults ConfigMap, e.g. { 'default-timeout-minutes': '5' }. */
  defaults?: Record<string, string>;
  /** Where its log goes when the cluster is not an embedded control plane (default: the OS temp folder). */
  logDir?: string;
}

/** Image names the controller puts into pods; KWOK runs no containers, so they are never pulled. */
const images = {
  'entrypoint-image': 'tekton.kwok.invalid/entrypoint',
  'nop-image': 'tekton.kwok.invalid/nop',
  'sidecarlogresults-image': 'tekton.kwok.invalid/sidecarlogresults',
  'workingdirinit-image': 'tekton.kwok.invalid/workingdirinit',
  'shell-image': 'tekton.kwok.invalid/busybox',
  'shell-image-win': 'tekton.kwok.invalid/powershell',
};

/** Why Tekton's controller cannot run from `binDir`, or undefined when it can. */
export function tektonControllerMissing(binDir: string): string | undefined {
  for (const entry of ['tekton-controller', 'tekton-config']) {
    if (!existsSync(join(binDir, entry))) {
      return `no ${entry} in ${binDir} (built by hack/control-plane/build.sh; GANTRY_BIN_DIR folders may leave it out)`;
    }
  }
  return undefined;
}

export async function startTektonController(options: TektonControllerOptions): Promise<TektonController> {
  const missing = tektonControllerMissing(options.binDir);
  if (missing) throw new Error(missing);
  const kc = new KubeConfig();
  kc.loadFromFile(options.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  // A symlink to the folder, like tekton-crds/.
  const configDir = realpathSync(join(options.binDir, 'tekton-config'));
  // ResolutionRequest and VerificationPolicy: its informers wait for them before it starts.
  const crdFiles = (await readdir(configDir))
    .filter((f) => f.startsWith('300-'))
    .map((f) => join(configDir, f));
  await applyCrds(kc, options.kubeconfigPath, options.binDir, crdFiles);

  const system = await core.createNamespace({
    body: { metadata: { generateName: 'tekton-pipelines-', labels: { 'gantry.dev/test': 'true' } } },
  });
  const systemNamespace = system.metadata?.name;
  if (!systemNamespace) throw new Error('the apiserver returned a namespace without a name');
  const removeSystemNamespace = () => core.deleteNamespace({ name: systemNamespace }).catch(() => {});

  let component: Component | undefined;
  const runDir = runDirOf(options.kubeconfigPath);
  const name = `tekton-controller-${options.namespace}`;
  try {
    for (const configMap of await tektonConfigMaps(configDir, options)) {
      await core.createNamespacedConfigMap({ namespace: systemNamespace, body: configMap });
    }
    const logDir = runDir ? join(runDir, 'logs') : (options.logDir ?? tmpdir());
    await mkdir(logDir, { recursive: true });
    // The binary takes ports, not addresses, so its listeners bind every interface: Tekton's probe
    // server on PROBES_PORT, knative's profiling server (404 unless profiling is on) on
    // PROFILING_PORT, and knative's own probe server on 8080, fixed. When 8080 is taken (by the
    // controller of another test file, say) knative closes those two servers and the
    // reconcilers run on.
    const [probesPort, profilingPort] = await Promise.all([freePort(), freePort()]);
    component = startComponent(
      name,
      join(options.binDir, 'tekton-controller'),
      [
        `--kubeconfig=${options.kubeconfigPath}`,
        `--namespace=${options.namespace}`,
        // Leases would make two test files' controllers share one set of buckets.
        '--disable-ha',
        ...Object.entries(images).map(([flag, image]) => `--${flag}=${image}`),
      ],
      join(logDir, `${name}.log`),
      false,
      {
        SYSTEM_NAMESPACE: systemNamespace,
        METRICS_DOMAIN: 'tekton.dev/pipeline',
        KUBERNETES_MIN_VERSION: 'v1.28.0',
        PROBES_PORT: String(probesPort),
        PROFILING_PORT: String(profilingPort),
      },
    );
    if (runDir) await recordAddon(runDir, component);
    const started = component;
    // knative logs "Started workers" for each reconciler (TaskRun, PipelineRun, ResolutionRequest)
    // once its informers have synced: from then on no event is missed.
    await waitUntil(
      'Tekton controller started',
      async () => (await readFile(started.logPath, 'utf8')).split('"Started workers"').length > 3,
      { timeoutMs: 60_000, component: started },
    );
  } catch (err) {
    if (component) await stopProcess(component.pid);
    if (component && runDir) await forgetAddon(runDir, name);
    await removeSystemNamespace();
    throw err;
  }

  const running = component;
  return {
    namespace: options.namespace,
    systemNamespace,
    pid: running.pid,
    logPath: running.logPath,
    logTail: (lines = 40) => logTail(running, lines),
    stop: async () => {
      if (isAlive(running.pid)) await stopProcess(running.pid);
      if (runDir) await forgetAddon(runDir, name);
      await removeSystemNamespace();
    },
  };
}

/**
 * The ConfigMaps of Tekton's release (config/config-*.yaml of its module, copied by build.sh), with
 * the test's overrides. Metrics export is off: its Prometheus listener would bind every interface.
 */
async function tektonConfigMaps(dir: string, options: TektonControllerOptions): Promise<V1ConfigMap[]> {
  const overrides: Record<string, Record<string, string>> = {
    'config-observability': { 'metrics-protocol': 'none', 'tracing-protocol': 'none' },
    'feature-flags': options.featureFlags ?? {},
    'config-defaults': options.defaults ?? {},
  };
  const configMaps: V1ConfigMap[] = [];
  for (const file of (await readdir(dir)).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      const object = doc.toJS() as V1ConfigMap | null;
      const configName = object?.metadata?.name;
      if (object?.kind !== 'ConfigMap' || !configName) continue;
      configMaps.push({
        metadata: { name: configName, labels: object.metadata?.labels ?? {} },
        data: { ...object.data, ...overrides[configName] },
      });
    }
  }
  return configMaps;
}
