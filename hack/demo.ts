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
import { formatSeconds } from '../src/http/status-page.ts';
import type { StatusReport } from '../src/metrics/status.ts';
import { cacheDir, controlPlaneBinDir } from '../test/support/control-plane/binaries.ts';
import { startControlPlane } from '../test/support/control-plane/control-plane.ts';
import { freePort } from '../test/support/control-plane/processes.ts';
import { appKeys, FakeGithub } from '../test/support/fake-github/index.ts';
import { spawnGantry } from '../test/support/gantry-process.ts';
import { startRunnerSimulator } from '../test/support/runner-simulator.ts';
import { ensureSandboxRuntimeClass } from '../test/support/runtime-class.ts';

const { values: flags } = parseArgs({ options: { duration: { type: 'string' } } });
const durationMs = flags.duration === undefined ? undefined : Number(flags.duration) * 1000;
if (durationMs !== undefined && !(Number.isFinite(durationMs) && durationMs > 0)) {
  process.stderr.write(`[demo] --duration: expected a number of seconds > 0, got ${flags.duration}\n`);
  process.exit(2);
}

const WEBHOOK_SECRET = 'demo-webhook-secret';
const APP_ID = 1001;
/** The only workflow the release class's runner group admits. */
const RELEASE_WORKFLOW = 'acme/web/.github/workflows/release.yml@refs/heads/main';
/** How often the view is refreshed: in place on a terminal, as new lines elsewhere (logs, CI). */
const REDRAW_MS = 1_000;
const PLAIN_EVERY_MS = 5_000;
const EVENTS_SHOWN = 6;

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
  view = new LiveView({ url, fake, startedAt: Date.now(), interactive: out.isTTY === true });
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

interface DemoConfigInput {
  apiUrl: string;
  installationId: number;
  keyPath: string;
  port: number;
  /** GitHub's webhook listener, apart from the status page and metrics. */
  webhookPort: number;
  namespace: string;
  sandboxNamespace: string;
}

/**
 * Four classes: quick lint runners with a warm pool, bigger integration runners with a cache volume,
 * a small class for fork pull requests (they may only go to an untrusted class), and trusted-only
 * release runners in a protected runner group. Cost rates are typical on-demand cloud prices.
 */
function demoConfig({
  apiUrl,
  installationId,
  keyPath,
  port,
  webhookPort,
  namespace,
  sandboxNamespace,
}: DemoConfigInput) {
  const common = {
    namespace,
    nodeSelector: { type: 'kwok' },
    idleTimeout: '20s',
    cost: { perVcpuHour: 0.04, perGibHour: 0.005 },
  };
  return {
    http: { address: '127.0.0.1', port },
    log: { level: 'info' },
    github: {
      enabled: true,
      apiUrl,
      auth: { kind: 'app', appId: APP_ID, installationId, privateKeyPath: keyPath },
      webhook: { secret: WEBHOOK_SECRET, address: '127.0.0.1', port: webhookPort },
      runners: { org: 'acme' },
    },
    classes: {
      lint: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'lint'] } },
        minIdle: 2,
        maxRunners: 15,
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
      },
      integration: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'integration'] } },
        maxRunners: 10,
        resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '4Gi' } },
        caches: [{ name: 'deps', type: 'ephemeral', size: '5Gi', tools: ['npm', 'go'] }],
      },
      untrusted: {
        ...common,
        // A namespace and runner group of its own, and a sandboxing runtime: see docs/trust.md.
        namespace: sandboxNamespace,
        runnerGroup: 'sandbox',
        runtimeClassName: 'gvisor',
        match: { github: { labels: ['self-hosted', 'linux', 'sandbox'] } },
        untrusted: true,
        maxRunners: 3,
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
      },
      release: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'release'] } },
        trustedOnly: true,
        allowedEvents: ['push', 'release'],
        allowedRefs: ['refs/heads/main', 'refs/tags/v*'],
        runnerGroup: 'release',
        maxRunners: 2,
        resources: { requests: { cpu: '4', memory: '8Gi' }, limits: { memory: '8Gi' } },
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
        workflowPath: '.github/workflows/release.yml',
      });
    }
    if (tick % 7 === 3) {
      fake.queueJobs({
        repo: 'acme/docs',
        labels: ['self-hosted', 'linux', 'sandbox'],
        count: 1,
        fromFork: 'mallory/docs',
        durationMs: 5_000,
      });
    }
  }, 2_000);
  return { stop: () => clearInterval(timer) };
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

// ── the live view ────────────────────────────────────────────────────────────────────────────────

interface Frame {
  report?: StatusReport;
  /** Dollars per class since Gantry started: gantry_cost_dollars_total, busy and idle. */
  costs: Map<string, number>;
  error?: string;
  /** Jobs on the simulated GitHub by status: the load's side, not Gantry's. */
  jobs: Map<string, number>;
  elapsedMs: number;
}

/**
 * Gantry's own view of its classes (GET /api/status, the status page's source, and the cost counter
 * of GET /metrics), polled: nothing here is counted by the demo itself.
 */
class LiveView {
  readonly #url: string;
  readonly #fake: FakeGithub;
  readonly #startedAt: number;
  readonly #interactive: boolean;
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #busy = false;

  constructor(options: { url: string; fake: FakeGithub; startedAt: number; interactive: boolean }) {
    this.#url = options.url;
    this.#fake = options.fake;
    this.#startedAt = options.startedAt;
    this.#interactive = options.interactive;
  }

  start(): void {
    if (this.#interactive) {
      process.stdout.write('\x1b[?25l');
      process.stdout.on('resize', this.#onResize);
    }
    void this.#refresh();
    this.#timer = setInterval(() => void this.#refresh(), this.#interactive ? REDRAW_MS : PLAIN_EVERY_MS);
  }

  /** Leaves the last frame on screen. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#interactive) {
      process.stdout.off('resize', this.#onResize);
      process.stdout.write('\x1b[?25h');
    }
    this.#drawn = 0;
  }

  /** Removes the frame, so a message can be written where it was (the next refresh draws it below). */
  clear(): void {
    if (this.#interactive && this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  readonly #onResize = () => {
    // Lines wrapped at the old width cannot be counted back: start from a clean screen.
    process.stdout.write('\x1b[2J\x1b[H');
    this.#drawn = 0;
  };

  async #refresh(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const frame = await this.#frame();
      if (this.#timer === undefined) return;
      if (this.#interactive) this.#draw(renderFrame(frame, process.stdout.columns ?? 120));
      else process.stdout.write(`${renderPlain(frame).join('\n')}\n`);
    } finally {
      this.#busy = false;
    }
  }

  async #frame(): Promise<Frame> {
    const jobs = new Map<string, number>();
    for (const job of this.#fake.jobs()) jobs.set(job.status, (jobs.get(job.status) ?? 0) + 1);
    const elapsedMs = Date.now() - this.#startedAt;
    try {
      const signal = AbortSignal.timeout(2_000);
      const [report, metrics] = await Promise.all([
        fetch(`${this.#url}/api/status`, { signal }).then((r) => r.json() as Promise<StatusReport>),
        fetch(`${this.#url}/metrics`, { signal }).then((r) => r.text()),
      ]);
      return { report, costs: costsFromMetrics(metrics), jobs, elapsedMs };
    } catch (err) {
      return { costs: new Map(), jobs, elapsedMs, error: `status unavailable: ${messageOf(err)}` };
    }
  }

  #draw(lines: string[]): void {
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}F\x1b[J` : '';
    process.stdout.write(`${up}${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }
}

const COLUMNS = ['CLASS', 'QUEUED', 'STARTING', 'IDLE', 'BUSY', 'MAX', 'QUEUE P95', 'COST SO FAR'];

function classRows(frame: Frame): string[][] {
  return (frame.report?.classes ?? []).map((c) => [
    c.name,
    String(c.queued),
    String(c.starting),
    String(c.idle),
    String(c.busy),
    String(c.maxRunners),
    formatSeconds(c.queueP95Seconds),
    formatCost(frame.costs.get(c.name) ?? 0),
  ]);
}

function jobsLine(frame: Frame): string {
  const parts = ['completed', 'in_progress', 'queued']
    .map((status) => `${frame.jobs.get(status) ?? 0} ${status.replace('_', ' ')}`)
    .join(', ');
  return `jobs on the simulated GitHub: ${parts}`;
}

/** The terminal frame, every line cut to the width so that the redraw can count them. */
function renderFrame(frame: Frame, width: number): string[] {
  const rows = classRows(frame);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ');
  const lines = [
    `gantry demo · ${formatElapsed(frame.elapsedMs)}${durationMs ? ` of ${formatElapsed(durationMs)}` : ''} · Ctrl-C stops everything`,
    '',
    line(COLUMNS),
    ...rows.map(line),
    ...(frame.error ? [frame.error] : []),
    '',
    jobsLine(frame),
    '',
    'recent events',
    ...(frame.report?.events ?? [])
      .slice(0, EVENTS_SHOWN)
      .map(
        (e) =>
          `  ${e.at.slice(11, 19)}  ${e.class ? `${e.class}: ` : ''}${e.message.replace(/\p{Cc}/gu, ' ')}`,
      ),
  ];
  return lines.map((l) => (l.length >= width ? `${l.slice(0, Math.max(0, width - 2))}…` : l));
}

/** One line per class and one for the jobs, each stamped with the time since the load began. */
function renderPlain(frame: Frame): string[] {
  const stamp = `[demo ${formatElapsed(frame.elapsedMs)}]`;
  const rows = classRows(frame);
  const nameWidth = Math.max(0, ...rows.map((r) => (r[0] ?? '').length));
  return [
    ...rows.map(
      ([name = '', queued, starting, idle, busy, max, p95, cost]) =>
        `${stamp} ${name.padEnd(nameWidth)}  queued ${queued}  starting ${starting}  idle ${idle}  busy ${busy}  ` +
        `max ${max}  queue p95 ${p95}  cost so far ${cost}`,
    ),
    ...(frame.error ? [`${stamp} ${frame.error}`] : []),
    `${stamp} ${jobsLine(frame)}`,
  ];
}

/** Sums `gantry_cost_dollars_total` per class from a Prometheus text scrape. */
function costsFromMetrics(text: string): Map<string, number> {
  const costs = new Map<string, number>();
  for (const match of text.matchAll(/^gantry_cost_dollars_total\{([^}]*)\} (\S+)$/gm)) {
    const className = /(?:^|,)class="([^"]*)"/.exec(match[1] ?? '')?.[1];
    const value = Number(match[2]);
    if (className !== undefined && Number.isFinite(value)) {
      costs.set(className, (costs.get(className) ?? 0) + value);
    }
  }
  return costs;
}

/** A demo's runners cost fractions of a cent: four decimals. */
const formatCost = (dollars: number) => `$${dollars.toFixed(4)}`;

function formatElapsed(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

startup = main();
startup.catch((err: unknown) => {
  if (!(err instanceof Stopping)) void stop(1, `the demo could not start: ${messageOf(err)}`);
});
