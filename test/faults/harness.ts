import { createWriteStream, readFileSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { inject } from 'vitest';
import { type RunningWatch, startWatch } from '../../src/kube/watch.ts';
import { reviveComponents } from '../support/control-plane/process-control.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { metricSamples, metricSum, spawnGantry } from '../support/gantry-process.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';
import { ensureSandboxRuntimeClass } from '../support/runtime-class.ts';
import { until } from '../support/until.ts';
import type { ScenarioRow } from './report.ts';

/** The long, hand-run form (`npm run faults -- --soak`). */
export const SOAK = process.env.GANTRY_FAULTS_SOAK === '1';

export const SECRET = 'faults-webhook-secret';
export const APP_ID = 779;
/**
 * Old-space bound of each Gantry process. On a large machine V8 collects lazily: under a burst of
 * pod churn an unbounded Gantry reached 388 MiB resident, nearly all of it garbage. With the old
 * space bounded, what is resident is what Gantry keeps, and a leak ends the process (heap out of
 * memory) instead of hiding in slack.
 */
export const HEAP_MIB = 128;
/**
 * Bound of a Gantry process's resident set: an idle Gantry run from source holds about 160 MiB
 * (Node.js, its dependencies, the type-stripped sources), plus the bounded heap's working set.
 */
export const RSS_LIMIT_MIB = 300;
const MANAGED = 'app.kubernetes.io/managed-by=gantry';

/**
 * The classes every scenario runs: two for the jobs, so that each class's own maxRunners is what
 * holds, and the sandbox for untrusted jobs that a real configuration has (docs/trust.md): its own
 * namespace and runner group, which admits the public repository acme/oss only. Trusted jobs come
 * from the private repositories, fork jobs (where a scenario queues them) from forks of acme/oss. A
 * job that ran on a runner of the other trust was misjudged or misplaced, and fails the scenario.
 */
export const CLASSES = {
  lint: { labels: ['self-hosted', 'lint'], maxRunners: 6, untrusted: false },
  build: { labels: ['self-hosted', 'build'], maxRunners: 4, untrusted: false },
  untrusted: { labels: ['self-hosted', 'lint', 'build'], maxRunners: 4, untrusted: true },
} as const;

const TRUSTED_GROUP = 'ci';
const SANDBOX_GROUP = 'sandbox';
const PUBLIC_REPO = 'acme/oss';

export function faultsKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('faultsKubeconfig'));
  return kc;
}

// ── Gantry as a real process ─────────────────────────────────────────────────────────────────────

export interface LogEntry {
  at: number;
  level: number;
  msg: string;
}

export interface GantryProcess {
  name: string;
  url: string;
  /** GitHub's webhook listener. */
  webhookUrl: string;
  pid: number;
  /** Exit code; null when ended by a signal. */
  exited: Promise<number | null>;
  running(): boolean;
  logs: LogEntry[];
  /** Highest VmRSS seen, KiB (sampled from /proc every 250 ms while it runs). */
  peakRssKiB(): number;
  rssKiB(): number;
  /** The sum of the samples of metric `name` whose labels contain every one of `labels`. */
  metric(name: string, labels?: string[]): Promise<number>;
  /** Every sample of metric `name`, by its label text ('{a="b"}'). */
  samples(name: string): Promise<Map<string, number>>;
  isLeader(): Promise<boolean>;
  signal(signal: NodeJS.Signals): void;
}

function readRssKiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

export async function startGantryProcess(
  name: string,
  configPath: string,
  logPath: string,
): Promise<GantryProcess> {
  const file = createWriteStream(logPath, { flags: 'a' });
  const logs: LogEntry[] = [];
  const gantry = spawnGantry({
    configPath,
    env: {
      KUBECONFIG: inject('faultsKubeconfig'),
      HOSTNAME: name,
      // Replicas reach each other at the loopback address they listen on (see election/advertise.ts).
      POD_IP: '',
      // As the chart runs it, with less old space.
      NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB} --max-semi-space-size=8`,
    },
    stderr: 'pipe',
    onLine: (line, entry) => {
      file.write(`${line}\n`);
      if (process.env.GANTRY_TEST_LOG) process.stderr.write(`[${name}] ${line}\n`);
      if (entry) logs.push({ at: Date.now(), level: Number(entry.level ?? 0), msg: String(entry.msg ?? '') });
    },
  });
  const { child, pid, exited } = gantry;
  let running = true;
  void exited.then(() => {
    running = false;
  });
  child.stderr?.pipe(file, { end: false });
  let peak = 0;
  let last = 0;
  const sampler = setInterval(() => {
    last = readRssKiB(pid);
    peak = Math.max(peak, last);
  }, 250);
  sampler.unref();
  void exited.then(() => clearInterval(sampler));
  // 'close' comes once its output has been read to the end: nothing is written to the file after it.
  child.on('close', () => file.end());
  const { url, webhookUrl } = await gantry.started.catch((err: Error) => {
    throw new Error(`${name}: ${err.message} (${logPath})`);
  });
  const samples = (metricName: string) => metricSamples(url, metricName);
  const metric = (metricName: string, labels: string[] = []) => metricSum(url, metricName, labels);
  return {
    name,
    url,
    webhookUrl: webhookUrl ?? '',
    pid,
    exited,
    running: () => running,
    logs,
    peakRssKiB: () => Math.max(peak, readRssKiB(pid)),
    rssKiB: () => readRssKiB(pid) || last,
    metric,
    samples,
    isLeader: async () => (await metric('gantry_leader')) === 1,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
}

// ── what the cluster holds ───────────────────────────────────────────────────────────────────────

/**
 * Watches the runner pods and keeps, per class, the most live ones (Pending or Running and not
 * being deleted: what a ResourceQuota counts) seen at once, re-evaluated on every event. Also notes
 * runner pods removed while the fake GitHub says the runner of that name is running a job: a job
 * that would fail on real GitHub although the fake completes it on its own clock.
 */
function startPodSampler(
  kc: KubeConfig,
  namespaces: readonly string[],
  fake: FakeGithub,
  maxOf: (className: string) => number,
) {
  const core = kc.makeApiClient(CoreV1Api);
  /** Live pods by uid, with their class. */
  const live = new Map<string, string>();
  const peak = new Map<string, number>();
  const seen = new Set<string>();
  /** Busy runners whose pod was removed, by runner and job (a pod name can come back). */
  const killedBusy = new Map<string, string>();
  /** Per class, the spells above its maxRunners: when the current one began, and the longest. */
  const overMax = new Map<string, { since: number | null; longestMs: number; first: string }>();
  const update = (pod: V1Pod, removed: boolean) => {
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? name;
    const className = pod.metadata?.labels?.['gantry.dev/class'] ?? '';
    seen.add(uid);
    const phase = pod.status?.phase;
    const ending = removed || pod.metadata?.deletionTimestamp !== undefined;
    const wasLive = live.has(uid);
    if (!ending && (phase === 'Pending' || phase === 'Running')) live.set(uid, className);
    else live.delete(uid);
    if (ending && (wasLive || phase === 'Running')) {
      const busy = fake.jobs().find((j) => j.runner?.name === name && j.status === 'in_progress');
      if (busy)
        killedBusy.set(
          `${busy.runner?.id}/${busy.id}`,
          `${name} (runner ${busy.runner?.id}, job ${busy.id})`,
        );
    }
    let count = 0;
    for (const c of live.values()) if (c === className) count++;
    peak.set(className, Math.max(peak.get(className) ?? 0, count));
    const spell = overMax.get(className);
    if (count > maxOf(className)) {
      if (!spell)
        overMax.set(className, { since: Date.now(), longestMs: 0, first: new Date().toISOString() });
      else spell.since ??= Date.now();
    } else if (spell?.since != null) {
      spell.longestMs = Math.max(spell.longestMs, Date.now() - spell.since);
      spell.since = null;
    }
  };
  const watches: RunningWatch[] = namespaces.map((namespace) =>
    startWatch<V1Pod>({
      kc,
      logger: pino({ level: 'silent' }),
      path: `/api/v1/namespaces/${namespace}/pods`,
      labelSelector: MANAGED,
      list: () => core.listNamespacedPod({ namespace, labelSelector: MANAGED }),
      handlers: { upsert: (pod) => update(pod, false), remove: (pod) => update(pod, true) },
      restartDelayMs: 250,
    }),
  );
  return {
    synced: Promise.all(watches.map((w) => w.synced)),
    peak: (className: string) => peak.get(className) ?? 0,
    /** Runner pods seen (by uid). */
    seen,
    killedBusy,
    /** The longest spell of `className` above its maxRunners, ms (the current one counts to now). */
    overMax(className: string): { longestMs: number; first: string } | undefined {
      const spell = overMax.get(className);
      if (!spell) return undefined;
      const current = spell.since === null ? 0 : Date.now() - spell.since;
      return { longestMs: Math.max(spell.longestMs, current), first: spell.first };
    },
    stop: () => Promise.all(watches.map((w) => w.stop())),
  };
}

async function leftovers(core: CoreV1Api, namespaces: readonly string[], fake: FakeGithub) {
  const found = await Promise.all(
    namespaces.map(async (namespace) => {
      const selector = { namespace, labelSelector: MANAGED };
      const [pods, secrets] = await Promise.all([
        core.listNamespacedPod(selector),
        core.listNamespacedSecret(selector),
      ]);
      return { pods: pods.items, secrets: secrets.items };
    }),
  );
  const pods = found.flatMap((f) => f.pods);
  return {
    pods: pods.length,
    secrets: found.reduce((sum, f) => sum + f.secrets.length, 0),
    registrations: fake.runners().length,
    names: [
      ...pods.map((p) => `pod ${p.metadata?.name} (${p.status?.phase})`),
      ...fake.runners().map((r) => `runner ${r.name} (${r.status}${r.busy ? ', busy' : ''})`),
    ],
  };
}

// ── a scenario ───────────────────────────────────────────────────────────────────────────────────

export interface ScenarioOptions {
  /** Short name: the row's first cell and the Gantry log files' prefix. */
  name: string;
  /** What is done to the system, for the table. */
  fault: string;
  /** github.requestTimeoutSeconds of Gantry. */
  githubTimeoutSeconds?: number;
  /** controller.startTimeoutSeconds: how long a runner pod may take to start before it is replaced. */
  startTimeoutSeconds?: number;
  /** Time allowed for every job to complete once the scenario's body is done. */
  completeTimeoutMs?: number;
  /** Time allowed for the drain (the registration sweep runs every 60 s). */
  drainTimeoutMs?: number;
  /** Multiplies every class's maxRunners (the soak runs more at once). */
  scale?: number;
  /** Primary quota per hour of the fake GitHub (default 5,000, an App installation's floor). */
  quotaLimit?: number;
  /** Gantry's log level (info by default). */
  logLevel?: string;
}

/**
 * Gantry counts a runner pod against maxRunners until the apiserver has removed it, but this check
 * sees pods through its own watch, which may learn of a removal after Gantry did: a spell above the
 * max this short is reported, and a class kept above it for longer fails the scenario.
 */
const TRANSIENT_OVERSHOOT_MS = 2_000;
const TRANSIENT_OVERSHOOT = 'above maxRunners for a moment, as this check’s own pod watch saw it';

export class Scenario {
  readonly kc = faultsKubeConfig();
  readonly core = this.kc.makeApiClient(CoreV1Api);
  readonly replicas: GantryProcess[] = [];
  readonly jobs: number[] = [];
  readonly notes: string[] = [];
  readonly startedAt = Date.now();
  /** Control-plane components a fault keeps down: the supervisor leaves them alone. */
  readonly downOnPurpose = new Set<string>();
  namespace = '';
  /** The untrusted class's namespace. */
  sandboxNamespace = '';
  /** Jobs from forks of the public repository; they must run on the untrusted class. */
  readonly forkJobs: number[] = [];
  /** Jobs the fault itself takes down mid-job (a lost node): they must fail on GitHub, not run. */
  readonly expectedLost = new Set<number>();
  fake!: FakeGithub;
  #configPath = '';
  #logDir = '';
  #simulator!: ReturnType<typeof startRunnerSimulator>;
  #pods!: ReturnType<typeof startPodSampler>;
  #replicaCount = 0;
  readonly #killed = new Set<GantryProcess>();
  #supervisor: NodeJS.Timeout | undefined;

  readonly options: ScenarioOptions;

  constructor(options: ScenarioOptions) {
    this.options = options;
  }

  async open(): Promise<void> {
    this.#superviseControlPlane();
    await ensureSandboxRuntimeClass(this.kc);
    this.namespace = await this.#createNamespace(`faults-${this.options.name}-`.slice(0, 40));
    this.sandboxNamespace = await this.#createNamespace(`faults-sandbox-${this.options.name}-`.slice(0, 40));
    this.fake = new FakeGithub({
      repos: ['acme/app', 'acme/lib', PUBLIC_REPO],
      publicRepos: [PUBLIC_REPO],
      runnerGroups: [
        TRUSTED_GROUP,
        {
          name: SANDBOX_GROUP,
          visibility: 'selected',
          selectedRepositories: [PUBLIC_REPO],
          allowsPublicRepositories: true,
        },
      ],
      ...(this.options.quotaLimit ? { quotaLimit: this.options.quotaLimit } : {}),
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
    });
    await this.fake.start();
    this.fake.runInRealTime(100);
    this.#logDir = inject('faultsLogDir');
    await mkdir(this.#logDir, { recursive: true });
    this.#configPath = join(this.#logDir, `${this.options.name}.config.json`);
    await writeFile(this.#configPath, JSON.stringify(this.#config()));
    this.#pods = startPodSampler(this.kc, this.namespaces, this.fake, (name) =>
      name in CLASSES ? this.maxRunners(name as keyof typeof CLASSES) : 0,
    );
    await this.#pods.synced;
    this.#simulator = startRunnerSimulator(this.kc, this.fake, this.namespaces);
  }

  get namespaces(): string[] {
    return [this.namespace, this.sandboxNamespace];
  }

  async #createNamespace(generateName: string): Promise<string> {
    const ns = await this.core.createNamespace({
      body: {
        metadata: { generateName, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
      },
    });
    const namespace = ns.metadata?.name ?? '';
    await until(`default service account in ${namespace}`, async () => {
      await this.core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    });
    return namespace;
  }

  /**
   * Plays the kubelet for the control plane's components: one that exited is started again within
   * a second (noted in the row), so a component's own reaction to a fault does not end the run.
   */
  #superviseControlPlane(): void {
    const runDir = inject('faultsRunDir');
    let checking = false;
    this.#supervisor = setInterval(() => {
      if (checking) return;
      checking = true;
      reviveComponents(runDir, this.downOnPurpose)
        .then((revived) => {
          for (const name of revived) this.notes.push(`${name} exited and was started again`);
        })
        .catch(() => {})
        .finally(() => {
          checking = false;
        });
    }, 1_000);
    this.#supervisor.unref();
  }

  #config() {
    const runnerClass = (labels: readonly string[], maxRunners: number, untrusted: boolean) => ({
      namespace: untrusted ? this.sandboxNamespace : this.namespace,
      runnerGroup: untrusted ? SANDBOX_GROUP : TRUSTED_GROUP,
      match: { github: { labels: [...labels] } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
      idleTimeout: '5s',
      maxRunners,
      maxCreatePerSecond: 20,
      ...(untrusted ? { untrusted, runtimeClassName: 'gvisor' } : {}),
    });
    return {
      log: { level: this.options.logLevel ?? 'info' },
      http: { address: '127.0.0.1', port: 0 },
      github: {
        ...fakeGithubConfig(this.fake, APP_ID, SECRET),
        requestTimeoutSeconds: this.options.githubTimeoutSeconds ?? 3,
        maxRetries: 2,
      },
      kubernetes: { requestTimeoutSeconds: 5 },
      controller: {
        reconcilePeriodSeconds: 0.5,
        startTimeoutSeconds: this.options.startTimeoutSeconds ?? 10,
        deadlineGraceSeconds: 1,
      },
      // Every scenario runs with election on, as the chart deploys Gantry (two replicas by default).
      election: {
        enabled: true,
        namespace: this.namespace,
        leaseDurationSeconds: 5,
        renewDeadlineSeconds: 3,
        retryPeriodSeconds: 1,
      },
      shutdownTimeoutSeconds: 10,
      classes: Object.fromEntries(
        Object.entries(CLASSES).map(([name, c]) => [
          name,
          runnerClass(c.labels, this.maxRunners(name as keyof typeof CLASSES), c.untrusted),
        ]),
      ),
    };
  }

  maxRunners(className: keyof typeof CLASSES): number {
    return CLASSES[className].maxRunners * (this.options.scale ?? 1);
  }

  /** SIGTERM, as a rolling update does; the replica must exit 0. */
  async stop(replica: GantryProcess): Promise<number | null> {
    this.#killed.add(replica);
    replica.signal('SIGTERM');
    const code = await replica.exited;
    if (code !== 0) throw new Error(`${replica.name} exited with ${code} on SIGTERM`);
    return code;
  }

  /** Starts one more Gantry process; webhooks go to the first one unless pointed elsewhere. */
  async startReplica(): Promise<GantryProcess> {
    const name = `gantry-${String.fromCharCode(97 + this.#replicaCount++)}`;
    const replica = await startGantryProcess(
      name,
      this.#configPath,
      join(this.#logDir, `${this.options.name}.${name}.log`),
    );
    this.replicas.push(replica);
    if (this.live().length === 1) this.pointWebhooksAt(replica);
    return replica;
  }

  /** Replicas whose process has not exited. */
  live(): GantryProcess[] {
    return this.replicas.filter((r) => r.running());
  }

  pointWebhooksAt(replica: GantryProcess): void {
    this.fake.setWebhookTarget(`${replica.webhookUrl}/webhooks/github`, SECRET);
  }

  async leaderOf(candidates = this.live()): Promise<{ leader: GantryProcess; followers: GantryProcess[] }> {
    return until(
      'exactly one leader',
      async () => {
        const flags = await Promise.all(candidates.map((r) => r.isLeader()));
        if (flags.filter(Boolean).length !== 1) return undefined;
        const leader = candidates[flags.indexOf(true)] as GantryProcess;
        return { leader, followers: candidates.filter((r) => r !== leader) };
      },
      30_000,
      100,
    );
  }

  /** SIGKILL: no shutdown, no lease release, work in flight cut off. */
  async kill(replica: GantryProcess): Promise<void> {
    this.#killed.add(replica);
    replica.signal('SIGKILL');
    await replica.exited;
  }

  /**
   * Queues `count` jobs from forks of the public repository, asking for the trusted classes' labels
   * (an attacker writes their own runs-on): GitHub must give them to the sandbox group's runners only.
   */
  queueForks(count: number, { durationMs = 800 }: { durationMs?: number } = {}): number[] {
    const ids = this.fake.queueJobs({
      repo: PUBLIC_REPO,
      labels: [...CLASSES.lint.labels],
      count,
      jobsPerRun: 1,
      fromFork: 'mallory/oss',
      durationMs,
    }).jobIds;
    this.jobs.push(...ids);
    this.forkJobs.push(...ids);
    return ids;
  }

  /** Queues `count` jobs, split between the classes (lint first), `perRun` to a workflow run. */
  queue(
    count: number,
    { durationMs = 800, perRun = 5 }: { durationMs?: number; perRun?: number } = {},
  ): number[] {
    const lint = Math.ceil(count * 0.6);
    const ids = [
      ...this.fake.queueJobs({
        repo: 'acme/app',
        labels: [...CLASSES.lint.labels],
        count: lint,
        jobsPerRun: perRun,
        durationMs,
      }).jobIds,
      ...(count > lint
        ? this.fake.queueJobs({
            repo: 'acme/lib',
            labels: [...CLASSES.build.labels],
            count: count - lint,
            jobsPerRun: perRun,
            durationMs,
          }).jobIds
        : []),
    ];
    this.jobs.push(...ids);
    return ids;
  }

  /**
   * Jobs the fault takes down with their runner: GitHub fails them (the fake, once the runner
   * simulator saw their pods go). They count neither as unfinished nor as busy runners removed.
   */
  expectLost(jobs: readonly number[]): void {
    for (const id of jobs) this.expectedLost.add(id);
  }

  /** Jobs that have not completed on a runner (yet), those expected lost aside. */
  unfinished(jobs = this.jobs): number[] {
    return jobs.filter((id) => {
      if (this.expectedLost.has(id)) return false;
      const job = this.fake.job(id);
      return !(job?.status === 'completed' && job.conclusion === 'success' && job.runner !== null);
    });
  }

  /** Runner pods seen so far (each incarnation once). */
  podsSeen(): number {
    return this.#pods.seen.size;
  }

  async waitForRunnerPods(count: number, timeoutMs = 60_000): Promise<void> {
    await until(`${count} runner pods created`, async () => this.#pods.seen.size >= count, timeoutMs, 50);
  }

  async waitCompleted(timeoutMs = this.options.completeTimeoutMs ?? 120_000): Promise<void> {
    await until('every job completed', async () => this.unfinished().length === 0, timeoutMs, 250).catch(
      (err: Error) => {
        const left = this.unfinished();
        const sample = left.slice(0, 10).map((id) => `${id}:${this.fake.job(id)?.status}`);
        throw new Error(`${err.message}: ${left.length} left (${sample.join(', ')})`);
      },
    );
  }

  leftovers() {
    return leftovers(this.core, this.namespaces, this.fake);
  }

  /** Sum of a metric over the live replicas. */
  async metric(name: string, labels: string[] = []): Promise<number> {
    const values = await Promise.all(this.live().map((r) => r.metric(name, labels).catch(() => 0)));
    return values.reduce((a, b) => a + b, 0);
  }

  /** Every sample of a metric, summed over the live replicas by label text. */
  async samples(name: string): Promise<Map<string, number>> {
    const total = new Map<string, number>();
    for (const replica of this.live()) {
      const found = await replica.samples(name).catch(() => new Map<string, number>());
      for (const [labels, value] of found) total.set(labels, (total.get(labels) ?? 0) + value);
    }
    return total;
  }

  /** Log lines with this message from every replica in [from, to]. */
  logCount(msg: string, from = 0, to = Number.POSITIVE_INFINITY): number {
    return this.replicas.flatMap((r) => r.logs).filter((l) => l.msg === msg && l.at >= from && l.at <= to)
      .length;
  }

  peakRssMiB(): number {
    return Math.round(Math.max(0, ...this.replicas.map((r) => r.peakRssKiB())) / 1024);
  }

  /**
   * The invariants every scenario ends with: each job completed on a runner, no class above its
   * maxRunners at any time, no busy runner removed, everything cleaned up after the drain, memory
   * under the chart's limit, and a clean exit on SIGTERM.
   */
  async finish(bodyError?: unknown): Promise<ScenarioRow> {
    const failures: string[] = bodyError ? [`the fault step failed: ${(bodyError as Error).message}`] : [];
    let lost = this.unfinished().length;
    try {
      await this.waitCompleted();
    } catch (err) {
      failures.push((err as Error).message);
    }
    lost = this.unfinished().length;
    let left = { pods: -1, secrets: -1, registrations: -1, names: [] as string[] };
    try {
      left = await until(
        'pods, secrets and GitHub runners cleaned up',
        async () => {
          const l = await this.leftovers();
          left = l;
          return l.pods + l.secrets + l.registrations === 0 ? l : undefined;
        },
        this.options.drainTimeoutMs ?? 90_000,
        500,
      );
    } catch {
      const { names, ...counts } = left;
      failures.push(`leftovers after the drain: ${JSON.stringify(counts)}: ${names.join(', ')}`);
    }
    const peakRunners = Object.fromEntries(
      Object.keys(CLASSES).map((name) => [
        name,
        { peak: this.#pods.peak(name), max: this.maxRunners(name as keyof typeof CLASSES) },
      ]),
    );
    for (const [name, { peak, max }] of Object.entries(peakRunners)) {
      const over = this.#pods.overMax(name);
      if (peak <= max || !over) continue;
      const spell = `${peak} live runner pods, above its maxRunners ${max}, for at most ${over.longestMs} ms (first at ${over.first})`;
      if (over.longestMs <= TRANSIENT_OVERSHOOT_MS) {
        this.notes.push(`KNOWN ISSUE (${TRANSIENT_OVERSHOOT}): class ${name} reached ${spell}`);
      } else {
        failures.push(`class ${name} reached ${spell}`);
      }
    }
    const busyRemoved = [...this.#pods.killedBusy]
      .filter(([key]) => !this.expectedLost.has(Number(key.split('/')[1])))
      .map(([, description]) => description);
    const notFailed = [...this.expectedLost].filter((id) => this.fake.job(id)?.conclusion !== 'failure');
    if (notFailed.length > 0) {
      failures.push(`${notFailed.length} jobs expected lost did not fail on GitHub: ${notFailed.join(', ')}`);
    }
    if (busyRemoved.length > 0) failures.push(`busy runner pods removed: ${busyRemoved.join(', ')}`);
    const peakRssMiB = this.peakRssMiB();
    if (peakRssMiB > RSS_LIMIT_MIB) failures.push(`peak RSS ${peakRssMiB} MiB above ${RSS_LIMIT_MIB} MiB`);
    for (const replica of this.replicas) {
      if (!replica.running() && !this.#killed.has(replica)) {
        failures.push(`${replica.name} died on its own (exit ${await replica.exited})`);
      }
    }
    const violationsCounted = await this.metric('gantry_trust_violations_total');
    for (const replica of this.live()) {
      replica.signal('SIGTERM');
      const code = await Promise.race([replica.exited, sleep(15_000).then(() => 'hung' as const)]);
      if (code !== 0) failures.push(`${replica.name} exited with ${code} on SIGTERM`);
    }
    // Trust: where GitHub (the fake) ran each job, and what Gantry counted.
    const forks = new Set(this.forkJobs);
    const onSandbox = (id: number) => this.fake.job(id)?.runner?.name.startsWith('gantry-untrusted-');
    const sandboxed = this.jobs.filter((id) => !forks.has(id) && onSandbox(id));
    if (sandboxed.length > 0) {
      failures.push(`${sandboxed.length} jobs from no fork ran on the untrusted class`);
    }
    const escaped = this.forkJobs.filter((id) => this.fake.job(id)?.runner && !onSandbox(id));
    if (escaped.length > 0) failures.push(`${escaped.length} fork jobs ran on trusted runners`);
    if (violationsCounted > 0) failures.push(`${violationsCounted} trust violations counted`);
    if (failures.length) this.notes.push(...failures.map((f) => `FAILED: ${f}`));
    const row: ScenarioRow = {
      scenario: this.options.name,
      fault: this.options.fault,
      jobs: this.jobs.length,
      lost,
      leaked: { pods: left.pods, secrets: left.secrets, registrations: left.registrations },
      busyRemoved: busyRemoved.length,
      peakRunners,
      peakRssMiB,
      seconds: Math.round((Date.now() - this.startedAt) / 1000),
      passed: failures.length === 0,
      notes: this.notes.join('; '),
    };
    await appendFile(inject('faultsReport'), `${JSON.stringify(row)}\n`);
    if (failures.length) {
      throw new Error(`${this.options.name}: ${failures.join('\n')}\n(logs in ${this.#logDir})`);
    }
    return row;
  }

  async close(): Promise<void> {
    clearInterval(this.#supervisor);
    for (const replica of this.replicas) replica.signal('SIGKILL');
    await Promise.all(this.replicas.map((r) => r.exited));
    await this.#simulator?.stop();
    await this.#pods?.stop();
    await this.fake?.stop();
    for (const name of this.namespaces.filter(Boolean)) {
      await this.core.deleteNamespace({ name }).catch(() => {});
    }
  }
}

/** Opens a scenario, runs `body` (the fault), then checks the invariants; always cleans up. */
export async function runScenario(
  options: ScenarioOptions,
  body: (s: Scenario) => Promise<void>,
): Promise<ScenarioRow> {
  const scenario = new Scenario(options);
  try {
    await scenario.open();
    let bodyError: unknown;
    try {
      await body(scenario);
    } catch (err) {
      bodyError = err;
    }
    return await scenario.finish(bodyError);
  } finally {
    await scenario.close();
  }
}
