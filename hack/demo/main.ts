// `npm run demo`: Gantry's main job on an embedded default. It starts the local control plane, a
// simulated GitHub with a mixed job load, the Gantry daemon (src/main.ts with a generated config of
// four classes) and a runner simulator, then shows Gantry's own status report live: redrawn in place
// on a terminal, as periodic plain lines otherwise. Ctrl-C (or --duration SECONDS) stops everything
// it started, last started first, and exits 0.
//
// GANTRY_TEST_CLUSTER=existing runs it against the cluster named by KUBECONFIG instead of starting
// one (as the integration tests do); it then works in a namespace of its own and deletes it at the end.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig, NodeV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { cacheDir, controlPlaneBinDir } from '../../test/support/control-plane/binaries.ts';
import { startControlPlane } from '../../test/support/control-plane/control-plane.ts';
import { freePort } from '../../test/support/control-plane/processes.ts';
import { appKeys, FakeGithub } from '../../test/support/fake-github/index.ts';
import { spawnGantry } from '../../test/support/gantry-process.ts';
import { startRunnerSimulator } from '../../test/support/runner-simulator.ts';
import { ensureSandboxRuntimeClass } from '../../test/support/runtime-class.ts';
import { APP_ID, demoConfig, WEBHOOK_SECRET } from './config.ts';
import { startLoad } from './load.ts';
import { formatElapsed, LiveView } from './view.ts';

const { values: flags } = parseArgs({ options: { duration: { type: 'string' } } });
const durationMs = flags.duration === undefined ? undefined : Number(flags.duration) * 1000;
if (durationMs !== undefined && !(Number.isFinite(durationMs) && durationMs > 0)) {
  process.stderr.write(`[demo] --duration: expected a number of seconds > 0, got ${flags.duration}\n`);
  process.exit(2);
}

/** The only workflow the release class's runner group admits. */
const RELEASE_WORKFLOW = 'acme/web/.github/workflows/release.yml@refs/heads/main';

// ── stopping ─────────────────────────────────────────────────────────────────────────────────────

/** Thrown by a startup step that finds the demo stopping: nothing more is started. */
class Stopping extends Error {}

/** What was started, stopped last first; each runs once whichever way the demo ends. */
const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
let stopRequested = false;
let stopping: Promise<void> | undefined;
let startup: Promise<void> | undefined;
let view: LiveView | undefined;

const say = (message: string) => {
  view?.clear();
  process.stderr.write(`[demo] ${message}\n`);
};

function checkpoint(): void {
  if (stopRequested) throw new Stopping();
}

function stop(code: number, reason: string): Promise<void> {
  stopRequested = true;
  stopping ??= (async () => {
    view?.stop();
    view = undefined;
    say(reason);
    // A startup step in progress finishes (the control plane's start cannot be cut short) and then
    // stops at the next checkpoint, so that what it started is in `cleanups` too.
    await startup?.catch(() => {});
    let failed = 0;
    for (let next = cleanups.pop(); next; next = cleanups.pop()) {
      const what = next.what;
      await next.run().catch((err: unknown) => {
        failed++;
        say(`stopping ${what} failed: ${messageOf(err)}`);
      });
    }
    say(failed === 0 ? 'stopped everything it started' : `stopped, with ${failed} failure(s) above`);
    process.exit(failed === 0 ? code : 1);
  })();
  return stopping;
}

let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    // A second Ctrl-C means now. The control plane is in this process group, so a terminal's Ctrl-C
    // reached it too; a run left behind anyway is swept by the next start.
    if (++signals > 1) {
      process.stderr.write('[demo] second signal: exiting now\n');
      process.exit(130);
    }
    void stop(0, `${signal}: stopping everything the demo started`);
  });
}

// ── startup ──────────────────────────────────────────────────────────────────────────────────────

interface Cluster {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** Where the demo keeps its files (config, key, Gantry's log). */
  workDir: string;
  namespace: string;
  /** The untrusted class's namespace: the sandbox tier shares nothing with the trusted classes. */
  sandboxNamespace: string;
}

/** The local control plane, started here; or, with GANTRY_TEST_CLUSTER=existing, KUBECONFIG's cluster. */
async function startCluster(): Promise<Cluster> {
  const kubeConfig = new KubeConfig();
  if (process.env.GANTRY_TEST_CLUSTER === 'existing') {
    const kubeconfigPath = process.env.KUBECONFIG;
    if (!kubeconfigPath) throw new Error('GANTRY_TEST_CLUSTER=existing needs KUBECONFIG to name the cluster');
    kubeConfig.loadFromDefault();
    const workDir = await mkdtemp(join(tmpdir(), 'gantry-demo-'));
    cleanups.push({ what: 'the demo files', run: () => rm(workDir, { recursive: true, force: true }) });
    const namespace = `gantry-demo-${process.pid}`;
    say(`using the cluster of KUBECONFIG (${kubeconfigPath}), namespace ${namespace}`);
    return { kubeconfigPath, kubeConfig, workDir, namespace, sandboxNamespace: `${namespace}-sandbox` };
  }
  const starting = startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    log: (m) => say(`control plane: ${m}`),
  });
  // Registered before it is up, so a stop during the start still stops it; a failed start cleans up itself.
  cleanups.push({
    what: 'the control plane',
    run: () =>
      starting.then(
        (plane) => plane.stop(),
        () => {},
      ),
  });
  const plane = await starting;
  kubeConfig.loadFromFile(plane.kubeconfigPath);
  return {
    kubeconfigPath: plane.kubeconfigPath,
    kubeConfig,
    workDir: plane.runDir,
    namespace: 'gantry-runners',
    sandboxNamespace: 'gantry-sandbox',
  };
}

async function main(): Promise<void> {
  const cluster = await startCluster();
  checkpoint();
  const { kubeConfig: kc, namespace, sandboxNamespace } = cluster;
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of [namespace, sandboxNamespace]) {
    await core.createNamespace({
      body: { metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });
    cleanups.push({
      what: `namespace ${name}`,
      // Its own control plane goes as a whole; on a cluster it borrows, the demo removes what it made.
      run: async () => {
        if (process.env.GANTRY_TEST_CLUSTER === 'existing') await core.deleteNamespace({ name });
      },
    });
  }
  // The untrusted class's sandboxing runtime (KWOK runs no containers, so only its name matters).
  if (await ensureSandboxRuntimeClass(kc)) {
    cleanups.push({
      what: 'RuntimeClass gvisor',
      run: async () => {
        if (process.env.GANTRY_TEST_CLUSTER === 'existing') {
          await kc.makeApiClient(NodeV1Api).deleteRuntimeClass({ name: 'gvisor' });
        }
      },
    });
  }
  checkpoint();

  const keys = appKeys();
  const fake = new FakeGithub({
    repos: ['acme/web', 'acme/api', 'acme/docs'],
    // acme/docs is open source: anyone may fork it and open a pull request.
    publicRepos: ['acme/docs'],
    app: { appId: APP_ID, publicKey: keys.publicKey },
    // Default, which lint and integration use, admits the private repositories only (GitHub's default).
    runnerGroups: [
      {
        name: 'release',
        allowsPublicRepositories: false,
        restrictedToWorkflows: true,
        selectedWorkflows: [RELEASE_WORKFLOW],
      },
      {
        name: 'sandbox',
        visibility: 'selected',
        selectedRepositories: ['acme/docs'],
        allowsPublicRepositories: true,
      },
    ],
  });
  const apiUrl = await fake.start();
  cleanups.push({ what: 'the simulated GitHub', run: () => fake.stop() });
  fake.runInRealTime(100);

  const port = await freePort();
  const webhookPort = await freePort();
  const keyPath = join(cluster.workDir, 'github-app.pem');
  await writeFile(keyPath, keys.privateKeyPem, { mode: 0o600 });
  const configPath = join(cluster.workDir, 'gantry.yaml');
  const config = demoConfig({
    apiUrl,
    installationId: fake.installationId,
    keyPath,
    port,
    webhookPort,
    namespace,
    sandboxNamespace,
  });
  await writeFile(configPath, stringify(config));
  checkpoint();

  const logPath = join(cluster.workDir, 'gantry.log');
  const gantry = startGantry(configPath, cluster.kubeconfigPath, logPath);
  const url = `http://127.0.0.1:${port}`;
  await waitForReady(url, gantry.process);
  checkpoint();
  fake.setWebhookTarget(`http://127.0.0.1:${webhookPort}/webhooks/github`, WEBHOOK_SECRET);

  const simulator = startRunnerSimulator(kc, fake, [namespace, sandboxNamespace]);
  cleanups.push({ what: 'the runner simulator', run: () => simulator.stop() });
  const load = startLoad(fake);
  cleanups.push({ what: 'the job load', run: async () => load.stop() });

  const out = process.stdout;
  out.write(
    [
      '',
      `Gantry is running with ${Object.keys(config.classes).length} runner classes (${Object.keys(config.classes).join(', ')}), jobs from a simulated GitHub`,
      `  status page  ${url}/`,
      `  metrics      ${url}/metrics`,
      `  status JSON  ${url}/api/status`,
      `  gantry log   ${logPath}`,
      `  runner pods  kubectl --kubeconfig ${cluster.kubeconfigPath} -n ${namespace} get pods`,
      `Ctrl-C stops everything${durationMs ? `; the demo also stops by itself after ${formatElapsed(durationMs)}` : ''}.`,
      '',
    ].join('\n'),
  );
  view = new LiveView({
    url,
    fake,
    startedAt: Date.now(),
    interactive: out.isTTY === true,
    ...(durationMs ? { durationMs } : {}),
  });
  cleanups.push({
    what: 'the live view',
    run: async () => {
      view?.stop();
      view = undefined;
    },
  });
  view.start();
  if (durationMs) setTimeout(() => void stop(0, `${formatElapsed(durationMs)} passed: stopping`), durationMs);
}

/**
 * The daemon as a user runs it, in a process group of its own: a terminal's Ctrl-C goes to the demo,
 * which stops Gantry with one SIGTERM (a second signal would make Gantry exit at once, with code 1).
 */
function startGantry(configPath: string, kubeconfigPath: string, logPath: string) {
  const { child, exited } = spawnGantry({
    configPath,
    env: { KUBECONFIG: kubeconfigPath },
    logPath,
    detached: true,
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  // Whichever way this process ends, Gantry does not outlive it.
  process.on('exit', () => {
    if (alive()) child.kill('SIGKILL');
  });
  cleanups.push({
    what: 'gantry',
    run: async () => {
      if (alive()) child.kill('SIGTERM');
      await exited;
    },
  });
  void exited.then(async (code) => {
    if (stopRequested) return;
    const tail = await readFile(logPath, 'utf8').then(
      (text) => text.trimEnd().split('\n').slice(-10).join('\n'),
      () => '(no log)',
    );
    void stop(1, `gantry exited with code ${code}; the end of its log (${logPath}):\n${tail}`);
  });
  return { process: child };
}

async function waitForReady(url: string, gantry: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    checkpoint();
    if (gantry.exitCode !== null)
      throw new Error(`gantry exited with code ${gantry.exitCode} while starting`);
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`gantry did not become ready at ${url}/readyz within 60 s`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

startup = main();
startup.catch((err: unknown) => {
  if (!(err instanceof Stopping)) void stop(1, `the demo could not start: ${messageOf(err)}`);
});
