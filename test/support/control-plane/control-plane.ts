import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  KubeConfig,
  StorageV1Api,
  type V1CustomResourceDefinition,
  type V1Node,
  type V1StorageClass,
  type V1Taint,
} from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import {
  type Component,
  freePort,
  isAlive,
  isOurs,
  startComponent,
  stopProcess,
  waitUntil,
} from './processes.ts';

/**
 * A local Kubernetes control plane made of real components: etcd, kube-apiserver (with its default
 * admission, PodSecurity and ResourceQuota among them, and RBAC), kube-controller-manager (garbage
 * collection, quota status, service accounts, node lifecycle), kube-scheduler, and KWOK, which plays
 * the kubelets of a few simulated nodes. Everything listens on loopback ports chosen at start.
 */
export interface ControlPlane {
  kubeconfigPath: string;
  /** https URL of the apiserver. */
  server: string;
  /** Folder holding this run's certificates, data and logs. */
  runDir: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Folder with kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok. */
  binDir: string;
  /** Parent of all run folders; stale runs found there are cleaned up first. */
  runsDir: string;
  /** Fixed run name (people's cluster); a unique one is made otherwise. */
  name?: string;
  /** Keep the components running after this process exits (for `cluster:up`). */
  detached?: boolean;
  /** Simulated nodes to create. */
  nodes?: number;
  log?: (message: string) => void;
}

/** Label that KWOK's node selector matches; tests and Gantry's demo classes use it as a nodeSelector. */
export const KWOK_NODE_LABEL = { key: 'type', value: 'kwok' } as const;

const here = dirname(fileURLToPath(import.meta.url));
const execFileAsync = promisify(execFile);
const runnerStages = join(here, 'kwok-runner-stages.yaml');
const tektonStages = join(here, 'kwok-tekton-stages.yaml');

interface RunRecord {
  ownerPid: number;
  detached: boolean;
  components: Component[];
  kubeconfigPath: string;
  server: string;
}

export async function startControlPlane(options: StartOptions): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  await sweepStaleRuns(options.runsDir, log);
  const name = options.name ?? `run-${process.pid}-${Date.now().toString(36)}`;
  const runDir = join(options.runsDir, name);
  await rm(runDir, { recursive: true, force: true });
  await mkdir(join(runDir, 'logs'), { recursive: true });
  await mkdir(join(runDir, 'pki'), { recursive: true });

  const detached = options.detached ?? false;
  const components: Component[] = [];
  // What run.json says about this run; rewritten as components start, so a crash leaves a record.
  const run: RunRecord = { ownerPid: process.pid, detached, components, kubeconfigPath: '', server: '' };
  const record = async () => {
    await writeFile(join(runDir, 'run.json'), JSON.stringify(run, null, 2));
  };
  const start = (component: string, binary: string, args: string[]) => {
    const started = startComponent(
      component,
      join(options.binDir, binary),
      args,
      join(runDir, 'logs', `${component}.log`),
      detached,
    );
    components.push(started);
    return record().then(() => started);
  };
  const stop = async () => {
    await stopAddons(runDir);
    for (const c of [...components].reverse()) await stopProcess(c.pid);
    await rm(runDir, { recursive: true, force: true });
  };

  try {
    await record();
    const [etcdPort, etcdPeerPort, apiPort, schedulerPort, controllerPort] = await Promise.all(
      Array.from({ length: 5 }, freePort),
    );

    log('starting etcd');
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = await start('etcd', 'etcd', [
      `--name=gantry-test`,
      `--data-dir=${join(runDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=gantry-test=${peerUrl}`,
      // A throw-away test store: durability is not worth the fsync latency.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitUntil('etcd health', async () => (await httpGet(`${etcdUrl}/health`)).includes('"true"'), {
      timeoutMs: 30_000,
      component: etcd,
    });

    log('starting kube-apiserver');
    const token = randomBytes(24).toString('hex');
    const pki = join(runDir, 'pki');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(pki, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    await writeFile(join(pki, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(pki, 'tokens.csv'), `${token},gantry-admin,gantry-admin,"system:masters"\n`, {
      mode: 0o600,
    });
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = await start('kube-apiserver', 'kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      // The apiserver makes its own CA and serving certificate (for localhost and 127.0.0.1) here.
      `--cert-dir=${pki}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // No kube-proxy or real endpoints here; a loopback address is not a valid endpoint anyway.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    const caPath = join(pki, 'apiserver.crt');
    await waitUntil('the apiserver certificate', async () => existsSync(caPath), {
      timeoutMs: 30_000,
      component: apiserver,
    });
    const ca = await readFile(caPath);
    await waitUntil(
      'kube-apiserver /readyz',
      async () => (await httpsGet(`${server}/readyz`, { ca, token })) === 'ok',
      {
        timeoutMs: 90_000,
        component: apiserver,
      },
    );

    const kubeconfigPath = join(runDir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, caPath, token), { mode: 0o600 });
    Object.assign(run, { kubeconfigPath, server });
    await record();

    log('starting kube-controller-manager, kube-scheduler and kwok');
    const controllerManager = await start('kube-controller-manager', 'kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${controllerPort}`,
      `--service-account-private-key-file=${join(pki, 'sa.key')}`,
      `--root-ca-file=${caPath}`,
      // Quota status and garbage collection should follow changes within a test's patience.
      '--concurrent-gc-syncs=5',
      '--resource-quota-sync-period=10s',
    ]);
    const scheduler = await start('kube-scheduler', 'kube-scheduler', [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
    ]);
    const kwok = await start('kwok', 'kwok', [
      `--kubeconfig=${kubeconfigPath}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-label-selector=${KWOK_NODE_LABEL.key}=${KWOK_NODE_LABEL.value}`,
      '--manage-nodes-with-annotation-selector=',
      '--manage-single-node=',
      '--cidr=10.244.0.0/16',
      '--node-lease-duration-seconds=40',
      ...kwokStageFiles(options.binDir).map((f) => `--config=${f}`),
    ]);
    await waitUntil(
      'kube-controller-manager /healthz',
      async () => (await httpsGet(`https://127.0.0.1:${controllerPort}/healthz`)) === 'ok',
      {
        timeoutMs: 60_000,
        component: controllerManager,
      },
    );
    await waitUntil(
      'kube-scheduler /healthz',
      async () => (await httpsGet(`https://127.0.0.1:${schedulerPort}/healthz`)) === 'ok',
      {
        timeoutMs: 60_000,
        component: scheduler,
      },
    );

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await kc.makeApiClient(StorageV1Api).createStorageClass({ body: simulatedStorageClass() });
    await installTektonCrds(kc, kubeconfigPath, options.binDir, log);
    const nodeNames = Array.from({ length: options.nodes ?? 3 }, (_, i) => `kwok-node-${i}`);
    log(`creating ${nodeNames.length} simulated nodes`);
    await Promise.all(nodeNames.map((nodeName) => core.createNode({ body: simulatedNode(nodeName) })));
    // Ready comes from KWOK; removing the not-ready taint is the node lifecycle controller's job.
    await waitUntil(
      'simulated nodes Ready and untainted',
      async () => {
        const { items } = await core.listNode({
          labelSelector: `${KWOK_NODE_LABEL.key}=${KWOK_NODE_LABEL.value}`,
        });
        return items.length === nodeNames.length && items.every(isSchedulable);
      },
      { timeoutMs: 60_000, component: kwok },
    );
    await waitUntil(
      'the default service account',
      async () => {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        return true;
      },
      { timeoutMs: 60_000, component: controllerManager },
    );

    log(`control plane ready: ${server}`);
    return { kubeconfigPath, server, runDir, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** Stops a run by its folder: what `cluster:down` does for a detached cluster. */
export async function stopRun(runDir: string): Promise<boolean> {
  const run = await readRun(runDir);
  if (!run) return false;
  await stopAddons(runDir);
  for (const c of [...run.components].reverse()) if (isOurs(c.pid, runDir)) await stopProcess(c.pid);
  await rm(runDir, { recursive: true, force: true });
  return true;
}

/** Reads a run's record; null when there is none. */
export async function readRun(runDir: string): Promise<RunRecord | null> {
  try {
    return JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8')) as RunRecord;
  } catch {
    return null;
  }
}

/** True when every component of a run is still alive, so the run can be used as it is. */
export function runIsHealthy(run: RunRecord, runDir: string): boolean {
  return run.components.length === 5 && run.components.every((c) => isOurs(c.pid, runDir));
}

/**
 * Add-ons are processes that tests start later against a running control plane (Tekton's
 * controller, for one), from any process. Each is recorded in a file of its own under the run's
 * folder, so that stopping the run, or the sweep after a killed test run, stops them too (before
 * the apiserver they talk to).
 */
function addonRecordPath(runDir: string, name: string): string {
  return join(runDir, 'addons', `${name}.json`);
}

/** The run folder of an embedded control plane's kubeconfig; undefined for another cluster's. */
export function runDirOf(kubeconfigPath: string): string | undefined {
  const runDir = dirname(kubeconfigPath);
  return existsSync(join(runDir, 'run.json')) ? runDir : undefined;
}

export async function recordAddon(runDir: string, component: Component): Promise<void> {
  await mkdir(join(runDir, 'addons'), { recursive: true });
  const path = addonRecordPath(runDir, component.name);
  // Written aside and renamed, so a sweep never reads half a record.
  await writeFile(`${path}.partial`, JSON.stringify(component, null, 2));
  await rename(`${path}.partial`, path);
}

export async function forgetAddon(runDir: string, name: string): Promise<void> {
  await rm(addonRecordPath(runDir, name), { force: true });
}

async function stopAddons(runDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(runDir, 'addons'));
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((file) => file.endsWith('.json'))
      .map(async (file) => {
        let addon: Component;
        try {
          addon = JSON.parse(await readFile(join(runDir, 'addons', file), 'utf8')) as Component;
        } catch {
          return; // removed meanwhile by its owner, which stops it itself
        }
        // The marker guards against a reused pid: an add-on's command line names the run's kubeconfig.
        if (isOurs(addon.pid, runDir)) await stopProcess(addon.pid);
      }),
  );
}

/**
 * A run whose owning process died without cleaning up (a crashed or killed test run) leaves
 * processes and folders behind; remove them so nothing breaks the next run.
 */
async function sweepStaleRuns(runsDir: string, log: (m: string) => void): Promise<void> {
  await mkdir(runsDir, { recursive: true });
  for (const entry of await readdir(runsDir)) {
    const runDir = join(runsDir, entry);
    const run = await readRun(runDir);
    if (run?.detached || (run && isAlive(run.ownerPid))) continue;
    // A folder without its record may belong to a run starting right now in another process.
    if (!run && Date.now() - (await stat(runDir)).mtimeMs < 120_000) continue;
    log(`cleaning up stale run ${entry}`);
    if (run) await stopRun(runDir);
    else await rm(runDir, { recursive: true, force: true });
  }
}

/** KWOK v0.8 has no default stages: use its upstream node and pod stages plus Gantry's runner stages. */
function kwokStageFiles(binDir: string): string[] {
  const candidates = [join(dirname(realpathSync(join(binDir, 'kwok'))), 'stage'), join(binDir, 'stage')];
  const stageDir = candidates.find((d) => existsSync(join(d, 'node', 'fast', 'node-initialize.yaml')));
  if (!stageDir) {
    throw new Error(
      `KWOK's stage files (stage/node/fast/...) were not found beside kwok: looked in ${candidates.join(', ')}`,
    );
  }
  return [
    join(stageDir, 'node', 'fast', 'node-initialize.yaml'),
    join(stageDir, 'node', 'heartbeat-with-lease', 'node-heartbeat-with-lease.yaml'),
    join(stageDir, 'pod', 'fast', 'pod-ready.yaml'),
    join(stageDir, 'pod', 'fast', 'pod-complete.yaml'),
    join(stageDir, 'pod', 'fast', 'pod-delete.yaml'),
    // Volumes: claims of the kwok-volume StorageClass are provisioned and bound, like a CSI driver would.
    ...['pvc-provision', 'pv-bind', 'pvc-delete', 'pv-delete'].map((s) =>
      join(stageDir, 'volume', 'fast', `${s}.yaml`),
    ),
    runnerStages,
    tektonStages,
  ];
}

/** A node KWOK plays (it manages nodes labelled type=kwok), with `extra` labels and taints. */
export function simulatedNode(
  name: string,
  extra: { labels?: Record<string, string>; taints?: V1Taint[] } = {},
): V1Node {
  const capacity = { cpu: '32', memory: '128Gi', 'ephemeral-storage': '500Gi', pods: '110' };
  return {
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value,
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        ...extra.labels,
      },
    },
    ...(extra.taints ? { spec: { taints: extra.taints } } : {}),
    status: {
      capacity,
      allocatable: capacity,
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        kubeletVersion: 'kwok',
        kubeProxyVersion: 'kwok',
        bootID: '',
        containerRuntimeVersion: 'kwok',
        kernelVersion: '',
        machineID: '',
        osImage: 'kwok',
        systemUUID: '',
      },
    },
  };
}

/**
 * Tekton Pipelines' real CRDs (from its module, fetched by build.sh), so PipelineRuns are judged by
 * Tekton's own schemas. Optional: a GANTRY_BIN_DIR without tekton-crds/ gets none.
 */
async function installTektonCrds(
  kc: KubeConfig,
  kubeconfigPath: string,
  binDir: string,
  log: (m: string) => void,
): Promise<void> {
  const link = join(binDir, 'tekton-crds');
  if (!existsSync(link)) return;
  // kubectl takes a symlink to a folder for a file.
  const names = await applyCrds(kc, kubeconfigPath, binDir, [realpathSync(link)]);
  log(`installed ${names.length} Tekton CRDs`);
}

/**
 * Applies the CRDs in `paths` (files or folders of YAML) and waits until they are Established;
 * returns their names. Server-side apply, so applying the same CRDs again, from another process
 * too, changes nothing.
 */
export async function applyCrds(
  kc: KubeConfig,
  kubeconfigPath: string,
  binDir: string,
  paths: string[],
): Promise<string[]> {
  // kubectl, not client-node's typed models: those drop the x-kubernetes-* schema keys.
  await execFileAsync(
    join(binDir, 'kubectl'),
    ['--kubeconfig', kubeconfigPath, 'apply', '--server-side', ...paths.flatMap((p) => ['-f', p])],
    { timeout: 60_000 },
  );
  const names: string[] = [];
  for (const path of paths) {
    const files = (await stat(path)).isDirectory()
      ? (await readdir(path)).map((file) => join(path, file))
      : [path];
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        const crd = doc.toJS() as V1CustomResourceDefinition | null;
        if (crd?.kind === 'CustomResourceDefinition' && crd.metadata?.name) names.push(crd.metadata.name);
      }
    }
  }
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await waitUntil(
    'CRDs established',
    async () => {
      for (const name of names) {
        const crd = await api.readCustomResourceDefinition({ name });
        if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
          return false;
      }
      return true;
    },
    { timeoutMs: 30_000 },
  );
  return names;
}

/** The default StorageClass, served by KWOK's volume stages: claims bind at once, nothing is stored. */
function simulatedStorageClass(): V1StorageClass {
  return {
    metadata: { name: 'kwok-volume', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kwok.x-k8s.io/volume',
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}

/** Ready (KWOK's heartbeat) and rid of the not-ready taint (the node lifecycle controller's part). */
export function isSchedulable(node: V1Node): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const notReadyTaint = node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/not-ready');
  return ready && !notReadyTaint;
}

function kubeconfigYaml(server: string, caPath: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'gantry-local', cluster: { server, 'certificate-authority': caPath } }],
    users: [{ name: 'gantry-admin', user: { token } }],
    contexts: [{ name: 'gantry-local', context: { cluster: 'gantry-local', user: 'gantry-admin' } }],
    'current-context': 'gantry-local',
  });
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2_000 }, (res) => collect(res, resolve, reject));
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * GET over TLS. With `ca`, the server is verified; without it (the loopback health ports of the
 * scheduler and controller manager, which serve an in-memory self-signed certificate) it is not.
 */
function httpsGet(url: string, { ca, token }: { ca?: Buffer; token?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        timeout: 2_000,
        ...(ca ? { ca } : { rejectUnauthorized: false }),
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => collect(res, resolve, reject),
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function collect(
  res: import('node:http').IncomingMessage,
  resolve: (body: string) => void,
  reject: (err: Error) => void,
): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  res.on('error', reject);
}
