import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { inject } from 'vitest';
import { type RunningWatch, startWatch } from '../../src/kube/watch.ts';
import { reviveComponents } from '../support/control-plane/process-control.ts';
import { createTestNamespace } from '../support/kube.ts';
import { listManaged, MANAGED } from '../support/managed.ts';
import { ensureSandboxRuntimeClass } from '../support/runtime-class.ts';
import { until } from '../support/until.ts';
import { type GantryProcess, RSS_LIMIT_MIB, startGantryProcess } from './replica.ts';
import type { ScenarioRow } from './report.ts';

/**
 * What every fault scenario does, whichever way jobs reach Gantry (harness.ts: GitHub's webhooks;
 * scaleset-harness.ts: scale sets): its namespaces on the suite's own control plane, Gantry as real
 * processes with election on, a watch on the runner pods, and the invariants it ends with.
 */

export function faultsKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('faultsKubeconfig'));
  return kc;
}

/** The runner groups of the trusted classes and of the untrusted one. */
export const TRUSTED_GROUP = 'ci';
export const SANDBOX_GROUP = 'sandbox';

/**
 * Gantry counts a runner pod against maxRunners until the apiserver has removed it, but this check
 * sees pods through its own watch, which may learn of a removal after Gantry did: a spell above the
 * max this short is reported, and a class kept above it for longer fails the scenario.
 */
const TRANSIENT_OVERSHOOT_MS = 2_000;
const TRANSIENT_OVERSHOOT = 'above maxRunners for a moment, as this check’s own pod watch saw it';

/** The job a runner is running, as the fake CI service sees it. */
export interface BusyJob {
  id: number;
  runner: number | undefined;
}

/**
 * Watches the runner pods and keeps, per class, the most live ones (Pending or Running and not
 * being deleted: what a ResourceQuota counts) seen at once, re-evaluated on every event. Also notes
 * runner pods removed while the fake says their runner is running a job: a job that would fail on
 * the real service although the fake completes it on its own clock.
 */
function startPodSampler(
  kc: KubeConfig,
  namespaces: readonly string[],
  maxOf: (className: string) => number,
  busyJobOf: (podName: string) => BusyJob | undefined,
) {
  const core = kc.makeApiClient(CoreV1Api);
  /** Live pods by uid, with their class. */
  const live = new Map<string, string>();
  const peak = new Map<string, number>();
  const seen = new Set<string>();
  /** Busy runners whose pod was removed, by runner and job (a pod name can come back). */
  const killedBusy = new Map<string, { job: number; description: string }>();
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
      const busy = busyJobOf(name);
      if (busy) {
        killedBusy.set(`${busy.runner}/${busy.id}`, {
          job: busy.id,
          description: `${name} (runner ${busy.runner}, job ${busy.id})`,
        });
      }
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

export interface FaultScenarioOptions {
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
  /** Gantry's log level (info by default). */
  logLevel?: string;
}

/** A class of the scenario's configuration: the labels its jobs ask for, and how many at once. */
export interface ScenarioClass {
  labels: readonly string[];
  maxRunners: number;
  /** Runs in the sandbox namespace, runtime and runner group. */
  untrusted: boolean;
}

/** Where the fake stands with a job. */
export interface JobOutcome {
  /** For messages. */
  state: string | undefined;
  /** Completed successfully on a runner. */
  succeeded: boolean;
  failed: boolean;
}

export abstract class FaultScenario<Options extends FaultScenarioOptions = FaultScenarioOptions> {
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
  /** Jobs the fault itself takes down mid-job (a lost node): they must fail, not run. */
  readonly expectedLost = new Set<number>();
  readonly options: Options;
  #configPath = '';
  #logDir = '';
  #fakes: { stop(): Promise<void> } | undefined;
  #simulator: { stop(): Promise<void> } | undefined;
  #pods!: ReturnType<typeof startPodSampler>;
  #replicaCount = 0;
  readonly #killed = new Set<GantryProcess>();
  #supervisor: NodeJS.Timeout | undefined;

  /** The classes Gantry runs, by name. */
  protected abstract readonly classes: Readonly<Record<string, ScenarioClass>>;
  /** Start of the scenario's namespace names. */
  protected abstract readonly namespacePrefix: string;
  /** Starts the fakes Gantry talks to. */
  protected abstract startFakes(): Promise<{ stop(): Promise<void> }>;
  /** The `github:` section of Gantry's configuration that points it at the fakes. */
  protected abstract githubConfig(): Record<string, unknown>;
  /** Starts the runner simulator on the scenario's namespaces. */
  protected abstract startSimulator(): { stop(): Promise<void> };
  /** The job the runner of this pod is running, if the fake says it is. */
  protected abstract busyJobOf(podName: string): BusyJob | undefined;
  protected abstract jobOutcome(id: number): JobOutcome;
  /** Runner registrations the fake still holds, described. */
  protected abstract registrationsLeft(): string[];
  /** This kind of scenario's own invariants, checked once every replica has shut down. */
  protected abstract ownFailures(): string[];

  constructor(options: Options) {
    this.options = options;
  }

  async open(): Promise<void> {
    this.#superviseControlPlane();
    await ensureSandboxRuntimeClass(this.kc);
    const restricted = { 'pod-security.kubernetes.io/enforce': 'restricted' };
    const { name } = this.options;
    this.namespace = await createTestNamespace(
      this.kc,
      `${this.namespacePrefix}-${name}`.slice(0, 39),
      restricted,
    );
    this.sandboxNamespace = await createTestNamespace(
      this.kc,
      `${this.namespacePrefix}-sandbox-${name}`.slice(0, 39),
      restricted,
    );
    this.#fakes = await this.startFakes();
    this.#logDir = inject('faultsLogDir');
    await mkdir(this.#logDir, { recursive: true });
    this.#configPath = join(this.#logDir, `${name}.config.json`);
    await writeFile(this.#configPath, JSON.stringify(this.#config()));
    this.#pods = startPodSampler(
      this.kc,
      this.namespaces,
      (className) => this.maxRunners(className),
      (podName) => this.busyJobOf(podName),
    );
    await this.#pods.synced;
    this.#simulator = this.startSimulator();
  }

  get namespaces(): string[] {
    return [this.namespace, this.sandboxNamespace];
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
    const runnerClass = (c: ScenarioClass, maxRunners: number) => ({
      namespace: c.untrusted ? this.sandboxNamespace : this.namespace,
      runnerGroup: c.untrusted ? SANDBOX_GROUP : TRUSTED_GROUP,
      match: { github: { labels: [...c.labels] } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
      idleTimeout: '5s',
      maxRunners,
      maxCreatePerSecond: 20,
      ...(c.untrusted ? { untrusted: true, runtimeClassName: 'gvisor' } : {}),
    });
    return {
      log: { level: this.options.logLevel ?? 'info' },
      http: { address: '127.0.0.1', port: 0 },
      github: {
        ...this.githubConfig(),
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
        Object.entries(this.classes).map(([name, c]) => [name, runnerClass(c, this.maxRunners(name))]),
      ),
    };
  }

  maxRunners(className: string): number {
    return (this.classes[className]?.maxRunners ?? 0) * (this.options.scale ?? 1);
  }

  /** Starts one more Gantry process. */
  async startReplica(): Promise<GantryProcess> {
    const name = `gantry-${String.fromCharCode(97 + this.#replicaCount++)}`;
    const replica = await startGantryProcess(
      name,
      this.#configPath,
      join(this.#logDir, `${this.options.name}.${name}.log`),
    );
    this.replicas.push(replica);
    return replica;
  }

  /** Replicas whose process has not exited. */
  live(): GantryProcess[] {
    return this.replicas.filter((r) => r.running());
  }

  /** SIGTERM, as a rolling update does; the replica must exit 0. */
  async terminate(replica: GantryProcess): Promise<void> {
    this.#killed.add(replica);
    replica.signal('SIGTERM');
    const code = await replica.exited;
    if (code !== 0) throw new Error(`${replica.name} exited with ${code} on SIGTERM`);
  }

  /** SIGKILL: no shutdown, no lease release, work in flight cut off. */
  async kill(replica: GantryProcess): Promise<void> {
    this.#killed.add(replica);
    replica.signal('SIGKILL');
    await replica.exited;
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

  /**
   * Jobs the fault takes down with their runner: the fake fails them (once the runner simulator saw
   * their pods go). They count neither as unfinished nor as busy runners removed.
   */
  expectLost(jobs: readonly number[]): void {
    for (const id of jobs) this.expectedLost.add(id);
  }

  /** Jobs that have not completed on a runner (yet), those expected lost aside. */
  unfinished(jobs = this.jobs): number[] {
    return jobs.filter((id) => !this.expectedLost.has(id) && !this.jobOutcome(id).succeeded);
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
        const sample = left.slice(0, 10).map((id) => `${id}:${this.jobOutcome(id).state}`);
        throw new Error(`${err.message}: ${left.length} left (${sample.join(', ')})`);
      },
    );
  }

  /** Runner pods and JIT Secrets left in the scenario's namespaces, and registrations on the fake. */
  async leftovers() {
    const found = await Promise.all(this.namespaces.map((namespace) => listManaged(this.core, namespace)));
    const pods = found.flatMap((f) => f.pods);
    const registrations = this.registrationsLeft();
    return {
      pods: pods.length,
      secrets: found.reduce((sum, f) => sum + f.secrets.length, 0),
      registrations: registrations.length,
      names: [...pods.map((p) => `pod ${p.metadata?.name} (${p.status?.phase})`), ...registrations],
    };
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
   * under the chart's limit, a clean exit on SIGTERM, and no trust violation counted; then the
   * scenario's own (ownFailures). Appends the row to the suite's report.
   */
  async finish(bodyError?: unknown): Promise<ScenarioRow> {
    const failures: string[] = bodyError ? [`the fault step failed: ${(bodyError as Error).message}`] : [];
    try {
      await this.waitCompleted();
    } catch (err) {
      failures.push((err as Error).message);
    }
    const lost = this.unfinished().length;
    let left = { pods: -1, secrets: -1, registrations: -1, names: [] as string[] };
    try {
      left = await until(
        'pods, secrets and registrations cleaned up',
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
      Object.keys(this.classes).map((name) => [
        name,
        { peak: this.#pods.peak(name), max: this.maxRunners(name) },
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
    const busyRemoved = [...this.#pods.killedBusy.values()]
      .filter(({ job }) => !this.expectedLost.has(job))
      .map(({ description }) => description);
    const notFailed = [...this.expectedLost].filter((id) => !this.jobOutcome(id).failed);
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
    const violations = await this.metric('gantry_trust_violations_total');
    if (violations > 0) failures.push(`${violations} trust violations counted`);
    for (const replica of this.live()) {
      replica.signal('SIGTERM');
      const code = await Promise.race([replica.exited, sleep(15_000).then(() => 'hung' as const)]);
      if (code !== 0) failures.push(`${replica.name} exited with ${code} on SIGTERM`);
    }
    failures.push(...this.ownFailures());
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
    await this.#fakes?.stop();
    for (const name of this.namespaces.filter(Boolean)) {
      await this.core.deleteNamespace({ name }).catch(() => {});
    }
  }
}

/** Opens `scenario`, runs `body` (the fault), then checks the invariants; always cleans up. */
export async function runFaultScenario<S extends FaultScenario>(
  scenario: S,
  body: (s: S) => Promise<void>,
): Promise<ScenarioRow> {
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
