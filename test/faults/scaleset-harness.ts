import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { inject } from 'vitest';
import { type RunningWatch, startWatch } from '../../src/kube/watch.ts';
import { reviveComponents } from '../support/control-plane/process-control.ts';
import { ensureSandboxRuntimeClass } from '../support/runtime-class.ts';
import {
  type ScaleSetFakes,
  scaleSetGithubConfig,
  scaleSetOf,
  startScaleSetFakes,
} from '../support/scaleset-fakes.ts';
import { startScaleSetRunnerSimulator } from '../support/scaleset-simulator.ts';
import { until } from '../support/until.ts';
import { faultsKubeConfig, type GantryProcess, RSS_LIMIT_MIB, startGantryProcess } from './harness.ts';
import type { ScenarioRow } from './report.ts';

/**
 * The fault suite in scale-set mode: the same invariants as harness.ts (every job completed on a
 * runner, no class above its maxRunners, no busy runner removed, nothing left after the drain, memory
 * under the chart's limit, a clean SIGTERM, no job on a runner of the other trust) with the fake
 * Actions service in front: Gantry as real processes with election on, the service's sessions,
 * messages, JIT configs and runner removal, and the scale-set runner simulator.
 */

export const SCALESET_CLASSES = {
  lint: { labels: ['self-hosted', 'lint'], maxRunners: 6, untrusted: false },
  build: { labels: ['self-hosted', 'build'], maxRunners: 4, untrusted: false },
  untrusted: { labels: ['self-hosted', 'sandbox'], maxRunners: 4, untrusted: true },
} as const;
type ClassName = keyof typeof SCALESET_CLASSES;

const MANAGED = 'app.kubernetes.io/managed-by=gantry';
const TRANSIENT_OVERSHOOT_MS = 2_000;

export interface ScaleSetScenarioOptions {
  name: string;
  fault: string;
  /** How long the fake service keeps a session nobody polls (a killed Gantry's). */
  sessionIdleTimeoutMs?: number;
  completeTimeoutMs?: number;
  drainTimeoutMs?: number;
}

export class ScaleSetScenario {
  readonly kc = faultsKubeConfig();
  readonly core = this.kc.makeApiClient(CoreV1Api);
  readonly replicas: GantryProcess[] = [];
  readonly jobs: number[] = [];
  readonly notes: string[] = [];
  readonly startedAt = Date.now();
  readonly options: ScaleSetScenarioOptions;
  readonly durations = new Map<number, number>();
  readonly downOnPurpose = new Set<string>();
  namespace = '';
  sandboxNamespace = '';
  fakes!: ScaleSetFakes;
  #configPath = '';
  #logDir = '';
  #simulator!: ReturnType<typeof startScaleSetRunnerSimulator>;
  #watches: RunningWatch[] = [];
  #replicaCount = 0;
  readonly #killed = new Set<GantryProcess>();
  #supervisor: NodeJS.Timeout | undefined;
  readonly #live = new Map<string, string>();
  readonly #peak = new Map<string, number>();
  readonly #seen = new Set<string>();
  readonly #killedBusy = new Map<number, string>();
  readonly #over = new Map<string, { since: number | null; longestMs: number }>();

  constructor(options: ScaleSetScenarioOptions) {
    this.options = options;
  }

  async open(): Promise<void> {
    const runDir = inject('faultsRunDir');
    this.#supervisor = setInterval(() => {
      reviveComponents(runDir, this.downOnPurpose)
        .then((revived) => {
          for (const name of revived) this.notes.push(`${name} exited and was started again`);
        })
        .catch(() => {});
    }, 1_000);
    this.#supervisor.unref();
    await ensureSandboxRuntimeClass(this.kc);
    this.namespace = await this.#createNamespace(`faults-ss-${this.options.name}-`.slice(0, 40));
    this.sandboxNamespace = await this.#createNamespace(
      `faults-ss-sandbox-${this.options.name}-`.slice(0, 40),
    );
    this.fakes = await startScaleSetFakes({
      github: { repos: ['acme/app', 'acme/lib', 'acme/oss'], publicRepos: ['acme/oss'] },
      runnerGroups: [{ name: 'ci' }, { name: 'sandbox', allowsPublicRepositories: true }],
      actions: {
        longPollMs: 3_000,
        pickupTimeoutMs: 600_000,
        sessionIdleTimeoutMs: this.options.sessionIdleTimeoutMs ?? 10_000,
        pats: ['stray-listener-token'],
      },
    });
    this.fakes.actions.runInRealTime(100);
    this.fakes.github.runInRealTime(100);
    this.#logDir = inject('faultsLogDir');
    await mkdir(this.#logDir, { recursive: true });
    this.#configPath = join(this.#logDir, `${this.options.name}.config.json`);
    await writeFile(this.#configPath, JSON.stringify(this.#config()));
    await this.#watchPods();
    this.#simulator = startScaleSetRunnerSimulator(
      this.kc,
      this.fakes.actions,
      this.namespaces,
      this.durations,
    );
  }

  get namespaces(): string[] {
    return [this.namespace, this.sandboxNamespace];
  }

  async #createNamespace(generateName: string): Promise<string> {
    const ns = await this.core.createNamespace({
      body: { metadata: { generateName, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });
    const namespace = ns.metadata?.name ?? '';
    await until(`default service account in ${namespace}`, async () => {
      await this.core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    });
    return namespace;
  }

  #config() {
    const runnerClass = (labels: readonly string[], maxRunners: number, untrusted: boolean) => ({
      namespace: untrusted ? this.sandboxNamespace : this.namespace,
      runnerGroup: untrusted ? 'sandbox' : 'ci',
      match: { github: { labels: [...labels] } },
      nodeSelector: { type: 'kwok' },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
      idleTimeout: '5s',
      maxRunners,
      maxCreatePerSecond: 20,
      ...(untrusted ? { untrusted, runtimeClassName: 'gvisor' } : {}),
    });
    return {
      log: { level: 'info' },
      http: { address: '127.0.0.1', port: 0 },
      github: {
        ...scaleSetGithubConfig(this.fakes, { scaleSets: { sessionConflictRetrySeconds: 1 } }),
        requestTimeoutSeconds: 3,
        maxRetries: 2,
      },
      kubernetes: { requestTimeoutSeconds: 5 },
      controller: { reconcilePeriodSeconds: 0.5, startTimeoutSeconds: 10, deadlineGraceSeconds: 1 },
      election: {
        enabled: true,
        namespace: this.namespace,
        leaseDurationSeconds: 5,
        renewDeadlineSeconds: 3,
        retryPeriodSeconds: 1,
      },
      shutdownTimeoutSeconds: 10,
      classes: Object.fromEntries(
        Object.entries(SCALESET_CLASSES).map(([name, c]) => [
          name,
          runnerClass(c.labels, c.maxRunners, c.untrusted),
        ]),
      ),
    };
  }

  /** Live runner pods per class, their peaks and spells above maxRunners, and busy runners removed. */
  async #watchPods(): Promise<void> {
    const update = (pod: V1Pod, removed: boolean) => {
      const name = pod.metadata?.name ?? '';
      const uid = pod.metadata?.uid ?? name;
      const className = pod.metadata?.labels?.['gantry.dev/class'] ?? '';
      this.#seen.add(uid);
      const phase = pod.status?.phase;
      const ending = removed || pod.metadata?.deletionTimestamp !== undefined;
      const wasLive = this.#live.has(uid);
      if (!ending && (phase === 'Pending' || phase === 'Running')) this.#live.set(uid, className);
      else this.#live.delete(uid);
      if (ending && (wasLive || phase === 'Running')) {
        const busy = this.fakes.actions.jobs().find((j) => j.runner?.name === name && j.state === 'running');
        if (busy) this.#killedBusy.set(busy.runnerRequestId, `${name} (job ${busy.runnerRequestId})`);
      }
      let count = 0;
      for (const c of this.#live.values()) if (c === className) count++;
      this.#peak.set(className, Math.max(this.#peak.get(className) ?? 0, count));
      const max = className in SCALESET_CLASSES ? SCALESET_CLASSES[className as ClassName].maxRunners : 0;
      const spell = this.#over.get(className);
      if (count > max) {
        if (!spell) this.#over.set(className, { since: Date.now(), longestMs: 0 });
        else spell.since ??= Date.now();
      } else if (spell?.since != null) {
        spell.longestMs = Math.max(spell.longestMs, Date.now() - spell.since);
        spell.since = null;
      }
    };
    this.#watches = this.namespaces.map((namespace) =>
      startWatch<V1Pod>({
        kc: this.kc,
        logger: pino({ level: 'silent' }),
        path: `/api/v1/namespaces/${namespace}/pods`,
        labelSelector: MANAGED,
        list: () => this.core.listNamespacedPod({ namespace, labelSelector: MANAGED }),
        handlers: { upsert: (pod) => update(pod, false), remove: (pod) => update(pod, true) },
        restartDelayMs: 250,
      }),
    );
    await Promise.all(this.#watches.map((w) => w.synced));
  }

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

  /** Waits until every class's scale set has a session (held by `owner`, when given). */
  async waitForSessions(owner?: string, timeoutMs = 60_000): Promise<number> {
    const from = Date.now();
    await until(
      `every scale set's session${owner ? ` held by ${owner}` : ''}`,
      async () => {
        const sessions = this.fakes.actions.sessions();
        return (
          sessions.length === Object.keys(SCALESET_CLASSES).length &&
          // The owner is the replica's election identity: its host name and a random suffix.
          (owner === undefined || sessions.every((s) => s.ownerName.startsWith(`${owner}_`)))
        );
      },
      timeoutMs,
      50,
    );
    return Date.now() - from;
  }

  /** Queues `count` jobs, 60 % lint and 40 % build, from the private repositories. */
  queue(count: number, { durationMs = 800 }: { durationMs?: number } = {}): number[] {
    const lint = Math.ceil(count * 0.6);
    const ids = [
      ...this.#queueFor('lint', lint, 'app', durationMs),
      ...(count > lint ? this.#queueFor('build', count - lint, 'lib', durationMs) : []),
    ];
    this.jobs.push(...ids);
    return ids;
  }

  #queueFor(className: ClassName, count: number, repository: string, durationMs: number): number[] {
    const { runIds } = this.fakes.github.queueJobs({
      repo: `acme/${repository}`,
      labels: ['self-hosted'],
      count: 1,
    });
    const ids = this.fakes.actions.queueJobs(scaleSetOf(this.fakes, className).id, count, {
      repository,
      eventName: 'push',
      workflowRef: `acme/${repository}/.github/workflows/ci.yml@refs/heads/main`,
      workflowRunId: runIds[0] ?? 0,
    });
    for (const id of ids) this.durations.set(id, durationMs);
    return ids;
  }

  async waitForRunnerPods(count: number, timeoutMs = 60_000): Promise<void> {
    await until(`${count} runner pods created`, async () => this.#seen.size >= count, timeoutMs, 50);
  }

  unfinished(jobs = this.jobs): number[] {
    return jobs.filter((id) => {
      const job = this.fakes.actions.job(id);
      return !(job?.state === 'completed' && job.result === 'succeeded' && job.runner !== null);
    });
  }

  podsSeen(): number {
    return this.#seen.size;
  }

  async leftovers() {
    let pods = 0;
    let secrets = 0;
    const names: string[] = [];
    for (const namespace of this.namespaces) {
      const selector = { namespace, labelSelector: MANAGED };
      const [p, s] = await Promise.all([
        this.core.listNamespacedPod(selector),
        this.core.listNamespacedSecret(selector),
      ]);
      pods += p.items.length;
      secrets += s.items.length;
      names.push(...p.items.map((pod) => `pod ${pod.metadata?.name} (${pod.status?.phase})`));
    }
    const registrations = this.fakes.actions.runners();
    names.push(...registrations.map((r) => `runner ${r.name} (${r.status})`));
    return { pods, secrets, registrations: registrations.length, names };
  }

  async metric(name: string, labels: string[] = []): Promise<number> {
    const values = await Promise.all(this.live().map((r) => r.metric(name, labels).catch(() => 0)));
    return values.reduce((a, b) => a + b, 0);
  }

  async finish(bodyError?: unknown): Promise<ScenarioRow> {
    const failures: string[] = bodyError ? [`the fault step failed: ${(bodyError as Error).message}`] : [];
    try {
      await until(
        'every job completed',
        async () => this.unfinished().length === 0,
        this.options.completeTimeoutMs ?? 120_000,
        250,
      );
    } catch (err) {
      const left = this.unfinished();
      const sample = left.slice(0, 10).map((id) => `${id}:${this.fakes.actions.job(id)?.state}`);
      failures.push(`${(err as Error).message}: ${left.length} left (${sample.join(', ')})`);
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
      Object.entries(SCALESET_CLASSES).map(([name, c]) => [
        name,
        { peak: this.#peak.get(name) ?? 0, max: c.maxRunners },
      ]),
    );
    for (const [name, { peak, max }] of Object.entries(peakRunners)) {
      const spell = this.#over.get(name);
      if (peak <= max || !spell) continue;
      const longest = Math.max(spell.longestMs, spell.since === null ? 0 : Date.now() - spell.since);
      const text = `class ${name} reached ${peak} live runner pods, above its maxRunners ${max}, for at most ${longest} ms`;
      if (longest <= TRANSIENT_OVERSHOOT_MS)
        this.notes.push(`KNOWN ISSUE (a moment, as this check's pod watch saw it): ${text}`);
      else failures.push(text);
    }
    const busyRemoved = [...this.#killedBusy.values()];
    if (busyRemoved.length > 0) failures.push(`busy runner pods removed: ${busyRemoved.join(', ')}`);
    const peakRssMiB = Math.round(Math.max(0, ...this.replicas.map((r) => r.peakRssKiB())) / 1024);
    if (peakRssMiB > RSS_LIMIT_MIB) failures.push(`peak RSS ${peakRssMiB} MiB above ${RSS_LIMIT_MIB} MiB`);
    for (const replica of this.replicas) {
      if (!replica.running() && !this.#killed.has(replica)) {
        failures.push(`${replica.name} died on its own (exit ${await replica.exited})`);
      }
    }
    const violations = await this.metric('gantry_trust_violations_total');
    if (violations > 0) failures.push(`${violations} trust violations counted`);
    const onSandbox = this.jobs.filter((id) => this.#simulator.classOfJob(id) === 'untrusted');
    if (onSandbox.length > 0) failures.push(`${onSandbox.length} trusted jobs ran on the untrusted class`);
    for (const replica of this.live()) {
      replica.signal('SIGTERM');
      const code = await Promise.race([replica.exited, sleep(15_000).then(() => 'hung' as const)]);
      if (code !== 0) failures.push(`${replica.name} exited with ${code} on SIGTERM`);
    }
    // A clean shutdown deletes the sessions: a successor need not wait for the service to end them.
    if (this.fakes.actions.sessions().length > 0) failures.push('sessions left after SIGTERM');
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
    if (failures.length)
      throw new Error(`${this.options.name}: ${failures.join('\n')}\n(logs in ${this.#logDir})`);
    return row;
  }

  async close(): Promise<void> {
    clearInterval(this.#supervisor);
    for (const replica of this.replicas) replica.signal('SIGKILL');
    await Promise.all(this.replicas.map((r) => r.exited));
    await this.#simulator?.stop();
    await Promise.all(this.#watches.map((w) => w.stop()));
    await this.fakes?.stop();
    for (const name of this.namespaces.filter(Boolean))
      await this.core.deleteNamespace({ name }).catch(() => {});
  }
}

export async function runScaleSetScenario(
  options: ScaleSetScenarioOptions,
  body: (s: ScaleSetScenario) => Promise<void>,
): Promise<ScenarioRow> {
  const scenario = new ScaleSetScenario(options);
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

/**
 * A listener that is not Gantry's opens a session on the scale set (with a token of its own), as a
 * second installation or a forgotten ARC listener would; returns a function that deletes it.
 */
export async function openStraySession(
  fakes: ScaleSetFakes,
  scaleSetId: number,
): Promise<() => Promise<void>> {
  const { actions } = fakes;
  const post = async (url: string, auth: string, body: unknown) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const registration = await post(
    `${actions.githubApiUrl}/orgs/${actions.org}/actions/runners/registration-token`,
    'token stray-listener-token',
    {},
  );
  const admin = await post(
    `${actions.githubApiUrl}/actions/runner-registration`,
    `RemoteAuth ${registration.token}`,
    {
      url: actions.githubConfigUrl,
      runner_event: 'register',
    },
  );
  const base = `${String(admin.url)}_apis/runtime/runnerscalesets/${scaleSetId}/sessions`;
  const session = await post(`${base}?api-version=6.0-preview`, `Bearer ${admin.token}`, {
    ownerName: 'stray-listener',
  });
  return async () => {
    await fetch(`${base}/${String(session.sessionId)}?api-version=6.0-preview`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin.token}` },
    });
  };
}
