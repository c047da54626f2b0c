/**
 * What the end-to-end benchmarks (decision-latency, throughput) share: a local control plane with
 * room for many pods, Gantry in-process against it and the fake GitHub, the moments that matter per
 * job taken where they happen (webhook received by Gantry's webhook listener, pod create request sent by
 * its Kubernetes client, pod Running seen by a watch), and the bare client that measures the floor:
 * the same pods created by a loop with nothing in between.
 *
 * Every time is `performance.now()` of this one process, so times from different parts compare.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  KubeConfig,
  type RequestContext,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { type App, createApp } from '../../../src/app.ts';
import type { RunnerClass } from '../../../src/classes/schema.ts';
import { parseConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import { createKubeApis, type KubeApis } from '../../../src/kube/client.ts';
import { startWatch } from '../../../src/kube/watch.ts';
import { buildJitConfigSecret, runnerPodOwnerReference } from '../../../src/launcher/jit-config-secret.ts';
import { buildRunnerPod } from '../../../src/launcher/runner-pod.ts';
import type { CreateRunnerAction } from '../../../src/model/action.ts';
import { ANNOTATION_JOB } from '../../../src/model/keys.ts';
import { runnerNameFor } from '../../../src/model/runner-name.ts';
import { cacheDir, controlPlaneBinDir } from '../../../test/support/control-plane/binaries.ts';
import {
  type ControlPlane,
  KWOK_NODE_LABEL,
  startControlPlane,
} from '../../../test/support/control-plane/control-plane.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../../../test/support/fake-github/index.ts';
import { until } from '../../../test/support/until.ts';

export const now = () => performance.now();

export const CLASS_NAME = 'bench';
export const LABELS = ['self-hosted', 'bench'];
const SECRET = 'bench-webhook-secret';
const APP_ID = 7373;
/**
 * Class limits far above any load the benchmarks offer, so that what is measured is Gantry's own
 * path, not its throttles. Printed with the results.
 */
export const UNCAPPED = { maxRunners: 10_000, maxCreatePerSecond: 10_000 } as const;

export type Say = (message: string) => void;

/** Cleanups of what was started, run last first; each runs once, whichever way the process ends. */
export function createCleanups(say: Say) {
  const list: { what: string; run: () => Promise<unknown> }[] = [];
  const runAll = async () => {
    for (let next = list.pop(); next; next = list.pop()) {
      const what = next.what;
      await next.run().catch((err: unknown) => say(`stopping ${what} failed: ${String(err)}`));
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping what was started`);
      void runAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  return {
    push(what: string, run: () => Promise<unknown>) {
      list.push({ what, run });
    },
    runAll,
  };
}

export type Cleanups = ReturnType<typeof createCleanups>;

/**
 * The local control plane with `nodes` KWOK nodes (110 pods each), so that every pod of a run
 * can be Running at once and scheduling never waits for room.
 */
export async function startPlane(cleanups: Cleanups, say: Say, nodes: number) {
  const starting = startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    nodes,
    log: (m) => say(`control plane: ${m}`),
  });
  // Registered before it is up, so a signal during the start still stops it.
  cleanups.push('the control plane', () =>
    starting.then(
      (started) => started.stop(),
      () => {},
    ),
  );
  const plane: ControlPlane = await starting;
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  return { plane, kc, core: kc.makeApiClient(CoreV1Api) };
}

export async function createNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({
    body: { metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
  });
  await until(
    `the default service account of ${name}`,
    async () => Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: name })),
    60_000,
  );
}

/**
 * A kubeconfig that notes when each pod create request leaves: the client authenticates a request
 * through it last, once the body is serialised, just before sending it.
 */
export class TimingKubeConfig extends KubeConfig {
  /** Pod name → when its first create request was sent, and the job it was made for. */
  readonly podCreates = new Map<string, { at: number; job?: string }>();
  /** Every request sent with this kubeconfig (watch streams included), in order. */
  readonly requests: { at: number; method: string; path: string }[] = [];

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const url = new URL(context.getUrl());
    const path = url.pathname;
    this.requests.push({ at: now(), method: String(context.getHttpMethod()), path: path + url.search });
    if (context.getHttpMethod() !== 'POST' || !/^\/api\/v1\/namespaces\/[^/]+\/pods$/.test(path)) return;
    const at = now();
    const body = context.getBody();
    if (typeof body !== 'string') return;
    const pod = JSON.parse(body) as V1Pod;
    const name = pod.metadata?.name ?? '';
    const job = pod.metadata?.annotations?.[ANNOTATION_JOB];
    if (name && !this.podCreates.has(name)) this.podCreates.set(name, { at, ...(job ? { job } : {}) });
  }
}

export interface PodTimes {
  name: string;
  job?: string;
  /** Its phase when last seen. */
  phase?: string;
  addedAt: number;
  runningAt?: number;
  /** First seen Succeeded or Failed. */
  finishedAt?: number;
  goneAt?: number;
}

/**
 * When each pod of a namespace was first seen, first seen Running and seen gone, from a watch; on
 * `clock` (performance.now() by default; Date.now to set them against another process's timestamps).
 */
export async function watchPods(
  cleanups: Cleanups,
  kc: KubeConfig,
  core: CoreV1Api,
  namespace: string,
  clock: () => number = now,
) {
  const pods = new Map<string, PodTimes>();
  /** Job key → its pod (the first one made for it). */
  const byJob = new Map<string, PodTimes>();
  const seen = (pod: V1Pod) => {
    const at = clock();
    const name = pod.metadata?.name ?? '';
    let times = pods.get(name);
    if (!times || times.goneAt !== undefined) {
      const job = pod.metadata?.annotations?.[ANNOTATION_JOB];
      times = { name, addedAt: at, ...(job ? { job } : {}) };
      pods.set(name, times);
      if (job && !byJob.has(job)) byJob.set(job, times);
    }
    times.phase = pod.status?.phase;
    if (pod.status?.phase === 'Running') times.runningAt ??= at;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') times.finishedAt ??= at;
  };
  const watch = startWatch<V1Pod>({
    kc,
    logger: pino({ level: 'silent' }),
    path: `/api/v1/namespaces/${namespace}/pods`,
    list: () => core.listNamespacedPod({ namespace }),
    handlers: {
      upsert: seen,
      remove(pod) {
        const times = pods.get(pod.metadata?.name ?? '');
        if (times) times.goneAt ??= clock();
      },
    },
    restartDelayMs: 200,
  });
  cleanups.push(`the watch of ${namespace}`, () => watch.stop());
  await watch.synced;
  return {
    pods,
    byJob,
    /** Pods of the namespace that still exist. */
    live: () => [...pods.values()].filter((p) => p.goneAt === undefined).length,
  };
}

export type PodWatch = Awaited<ReturnType<typeof watchPods>>;

export interface BenchGantry {
  app: App;
  config: Config;
  runnerClass: RunnerClass;
  fake: FakeGithub;
  kc: TimingKubeConfig;
  /** Webhook delivery id → when Gantry's HTTP server received it. */
  received: Map<string, number>;
  /** When Gantry received the `queued` webhook of the job with this key (github:ID). */
  queuedReceivedAt(jobKey: string): number | undefined;
}

/**
 * The fake GitHub and Gantry (createApp, as main.ts runs it) with one class `bench` in `namespace`,
 * limits out of the way. Runner pods stay Running until something ends them: the benchmark decides.
 */
export async function startGantry(
  cleanups: Cleanups,
  kubeconfigPath: string,
  namespace: string,
  /** controller.concurrency; Gantry's default when absent. */
  concurrency?: number,
): Promise<BenchGantry> {
  const keys = appKeys();
  const fake = new FakeGithub({ repos: ['acme/app'], app: { appId: APP_ID, publicKey: keys.publicKey } });
  await fake.start();
  cleanups.push('the fake GitHub', () => fake.stop());
  fake.runInRealTime(100);

  const kc = new TimingKubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const config = parseConfig({
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    github: fakeGithubConfig(fake, APP_ID, SECRET),
    ...(concurrency !== undefined ? { controller: { concurrency } } : {}),
    classes: {
      [CLASS_NAME]: {
        namespace,
        match: { github: { labels: LABELS } },
        nodeSelector: { [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value },
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '32Mi' } },
        ...UNCAPPED,
        // Runners wait for their job as long as a measurement lasts.
        idleTimeout: '10m',
      },
    },
  });
  const runnerClass = config.classes[CLASS_NAME];
  if (!runnerClass) throw new Error('the bench class is missing from the parsed configuration');
  const app = createApp(config, { kubeConfig: kc, logger: pino({ level: 'silent' }) });
  const received = new Map<string, number>();
  if (!app.webhooks) throw new Error('the bench config has no GitHub webhook listener');
  app.webhooks.addHook('onRequest', (request, _reply, done) => {
    const delivery = request.headers['x-github-delivery'];
    if (typeof delivery === 'string' && !received.has(delivery)) received.set(delivery, now());
    done();
  });
  cleanups.push('Gantry', () => app.stop());
  const { webhookUrl } = await app.start();
  fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, SECRET);

  const queuedDelivery = new Map<string, string>();
  return {
    app,
    config,
    runnerClass,
    fake,
    kc,
    received,
    queuedReceivedAt(jobKey) {
      if (queuedDelivery.size < fake.deliveries.length) {
        for (const d of fake.deliveries)
          if (d.action === 'queued' && !queuedDelivery.has(`github:${d.jobId}`))
            queuedDelivery.set(`github:${d.jobId}`, d.id);
      }
      const id = queuedDelivery.get(jobKey);
      return id === undefined ? undefined : received.get(id);
    },
  };
}

/**
 * The floor's client: a bare loop's own kubeconfig and transport (client-node's, bounded as Gantry's
 * are), and the runner pods Gantry would create, the same spec (Gantry's own builder) but for the
 * name, with the JIT config Secret Gantry writes beside each for the loops that write it too.
 */
export function bareClient(kubeconfigPath: string, runnerClass: RunnerClass, namespace: string) {
  const kc = new TimingKubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const apis: KubeApis = createKubeApis(kc, { timeoutMs: 15_000 });
  let made = 0;
  /** The next runner; its annotation names a job of its own, `floor:N`. */
  const nextRunner = () => {
    const nameSeed = `floor-${made++}`;
    const action: CreateRunnerAction = {
      kind: 'create-runner',
      className: CLASS_NAME,
      namespace,
      nameSeed,
      runnerName: runnerNameFor(CLASS_NAME, nameSeed),
      jobKey: `floor:${nameSeed}`,
      reason: 'queued-jobs',
    };
    return {
      pod: buildRunnerPod(action, { ...runnerClass, namespace }),
      /** Its JIT config Secret, owned by the pod once created (as the launcher does it). */
      secret(podUid: string): V1Secret {
        const secret = buildJitConfigSecret(action, 'bench-jit-config');
        secret.metadata = {
          ...secret.metadata,
          ownerReferences: [runnerPodOwnerReference({ name: action.runnerName, uid: podUid })],
        };
        return secret;
      },
    };
  };
  return { kc, core: apis.core, nextRunner, nextPod: (): V1Pod => nextRunner().pod };
}

/**
 * Calls `fire(n)` so that `rate` items a second are offered for `seconds`: an open loop on a short
 * tick that catches up when a tick comes late, so a slow consumer does not slow the offer.
 * Resolves with the seconds the offer really took.
 */
export async function offerAtRate(rate: number, seconds: number, fire: (count: number) => void) {
  const total = Math.round(rate * seconds);
  const start = now();
  let fired = 0;
  while (fired < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
    if (due > fired) {
      fire(due - fired);
      fired = due;
    }
    await sleep(2);
  }
  return { total, seconds: (now() - start) / 1000 };
}

/** Removes every pod of the namespace at once and waits until the watch saw them all go. */
export async function deleteAllPods(core: CoreV1Api, watch: PodWatch, namespace: string) {
  await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
  await until(`every pod of ${namespace} gone`, async () => watch.live() === 0, 120_000, 200).catch(
    async (err: unknown) => {
      const { items } = await core.listNamespacedPod({ namespace });
      const left = items.map(
        (p) => `${p.metadata?.name} ${p.status?.phase}${p.metadata?.deletionTimestamp ? ' deleting' : ''}`,
      );
      const watched = [...watch.pods.values()].filter((p) => p.goneAt === undefined).map((p) => p.name);
      throw new Error(
        `${String(err)}; the apiserver still has ${left.length}: ${left.slice(0, 5).join(', ')}; ` +
          `the watch ${watched.length}: ${watched.slice(0, 5).join(', ')}`,
      );
    },
  );
}

export { until };
