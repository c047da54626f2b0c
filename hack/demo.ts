// `npm run demo`: Gantry's main job on an embedded default. It starts the local control plane, a
// simulated GitHub with a mixed job load, and the Gantry daemon (src/main.ts with a generated
// config of three classes), then prints what happens every few seconds. Ctrl-C (or --duration N)
// stops everything it started.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { cacheDir, controlPlaneBinDir } from '../test/support/control-plane/binaries.ts';
import { startControlPlane } from '../test/support/control-plane/control-plane.ts';
import { freePort } from '../test/support/control-plane/processes.ts';
import { appKeys, FakeGithub } from '../test/support/fake-github/index.ts';
import { startRunnerSimulator } from '../test/support/runner-simulator.ts';

const { values: flags } = parseArgs({ options: { duration: { type: 'string' } } });
const durationMs = flags.duration ? Number(flags.duration) * 1000 : undefined;
const say = (m: string) => process.stderr.write(`[demo] ${m}\n`);
const WEBHOOK_SECRET = 'demo-webhook-secret';
const NAMESPACE = 'gantry-runners';

async function main(): Promise<void> {
  const plane = await startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    log: (m) => say(`control plane: ${m}`),
  });
  const stops: (() => Promise<unknown>)[] = [() => plane.stop()];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    for (const s of stops.reverse()) await s().catch(() => {});
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: { metadata: { name: NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });

    const keys = appKeys();
    const fake = new FakeGithub({
      repos: ['acme/web', 'acme/api', 'acme/docs'],
      app: { appId: 1001, publicKey: keys.publicKey },
      runnerGroups: [
        {
          name: 'release',
          allowsPublicRepositories: false,
          restrictedToWorkflows: true,
          selectedWorkflows: ['acme/web/.github/workflows/release.yml@refs/heads/main'],
        },
      ],
    });
    const apiUrl = await fake.start();
    fake.runInRealTime(100);
    stops.push(() => fake.stop());

    const port = await freePort();
    const keyPath = join(plane.runDir, 'github-app.pem');
    await writeFile(keyPath, keys.privateKeyPem, { mode: 0o600 });
    const configPath = join(plane.runDir, 'gantry.yaml');
    await writeFile(configPath, stringify(demoConfig(apiUrl, fake.installationId, keyPath, port)));

    const gantry = spawn(process.execPath, ['src/main.ts', '--config', configPath], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, KUBECONFIG: plane.kubeconfigPath },
    });
    stops.push(async () => {
      gantry.kill('SIGTERM');
      await new Promise((resolve) => gantry.once('exit', resolve));
    });
    gantry.once('exit', (code) => {
      if (!stopping) {
        say(`gantry exited with code ${code}`);
        void stop(1);
      }
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForReady(url);
    fake.setWebhookTarget(`${url}/webhooks/github`, WEBHOOK_SECRET);
    say(`gantry is up: ${url}/metrics, ${url}/healthz; kubeconfig ${plane.kubeconfigPath}`);
    say(`Ctrl-C stops the demo${durationMs ? `; it also stops by itself after ${durationMs / 1000} s` : ''}`);

    const simulator = startRunnerSimulator(kc, fake, [NAMESPACE]);
    stops.push(() => simulator.stop());
    const load = startLoad(fake);
    stops.push(async () => load.stop());
    const report = setInterval(() => void printStatus(core, fake), 5_000);
    stops.push(async () => clearInterval(report));
    if (durationMs) setTimeout(() => void stop(0), durationMs);
  } catch (err) {
    say(err instanceof Error ? err.message : String(err));
    await stop(1);
  }
}

/** Three classes: quick lint runners with a warm pool, bigger integration runners, trusted-only release. */
function demoConfig(apiUrl: string, installationId: number, privateKeyPath: string, port: number) {
  const onSimulatedNodes = { nodeSelector: { type: 'kwok' }, namespace: NAMESPACE, idleTimeout: '20s' };
  return {
    http: { address: '127.0.0.1', port },
    log: { level: 'warn' },
    github: {
      enabled: true,
      apiUrl,
      auth: { kind: 'app', appId: 1001, installationId, privateKeyPath },
      webhook: { secret: WEBHOOK_SECRET },
      runners: { org: 'acme', unsafeTrustedGroup: 'refuse' },
    },
    classes: {
      lint: {
        ...onSimulatedNodes,
        match: { github: { labels: ['self-hosted', 'linux', 'lint'] } },
        minIdle: 2,
        maxRunners: 15,
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
      },
      integration: {
        ...onSimulatedNodes,
        match: { github: { labels: ['self-hosted', 'linux', 'integration'] } },
        maxRunners: 10,
        resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '4Gi' } },
        caches: [{ name: 'deps', type: 'ephemeral', size: '5Gi', tools: ['npm', 'go'] }],
      },
      untrusted: {
        ...onSimulatedNodes,
        match: { github: { labels: ['self-hosted', 'linux', 'lint'] } },
        untrusted: true,
        maxRunners: 3,
      },
      release: {
        ...onSimulatedNodes,
        match: { github: { labels: ['self-hosted', 'linux', 'release'] } },
        trustedOnly: true,
        runnerGroup: 'release',
        maxRunners: 2,
      },
    },
  };
}

/** Bursts of lint jobs, steady integration jobs, a long release job now and then, and a fork PR. */
function startLoad(fake: FakeGithub) {
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    if (tick % 2 === 0) {
      fake.queueJobs({
        repo: 'acme/web',
        labels: ['self-hosted', 'linux', 'lint'],
        count: 6,
        jobsPerRun: 3,
        durationMs: 4_000,
      });
    }
    fake.queueJobs({
      repo: 'acme/api',
      labels: ['self-hosted', 'linux', 'integration'],
      count: 2,
      durationMs: 12_000,
    });
    if (tick % 10 === 1) {
      fake.queueJobs({
        repo: 'acme/web',
        labels: ['self-hosted', 'linux', 'release'],
        count: 1,
        durationMs: 30_000,
      });
    }
    if (tick % 7 === 3) {
      fake.queueJobs({
        repo: 'acme/docs',
        labels: ['self-hosted', 'linux', 'lint'],
        count: 1,
        fromFork: 'mallory/docs',
        durationMs: 5_000,
      });
    }
  }, 2_000);
  return { stop: () => clearInterval(timer) };
}

async function printStatus(core: CoreV1Api, fake: FakeGithub): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace: NAMESPACE }).catch(() => ({ items: [] }));
  const byClass = new Map<string, Record<string, number>>();
  for (const pod of pods.items) {
    const name = pod.metadata?.labels?.['gantry.dev/class'] ?? '?';
    const counts = byClass.get(name) ?? {};
    const phase = pod.metadata?.deletionTimestamp ? 'Terminating' : (pod.status?.phase ?? 'Pending');
    counts[phase] = (counts[phase] ?? 0) + 1;
    byClass.set(name, counts);
  }
  const jobs: Record<string, number> = {};
  for (const job of fake.jobs()) jobs[job.status] = (jobs[job.status] ?? 0) + 1;
  const classes = [...byClass].map(([name, counts]) => `${name} ${JSON.stringify(counts)}`).join('  ');
  say(`jobs ${JSON.stringify(jobs)} | pods: ${classes || 'none'}`);
}

async function waitForReady(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`gantry did not become ready at ${url}/readyz within 60 s`);
}

void main();
