import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { type GantryChild, spawnGantry } from '../support/gantry-process.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';

// Gantry killed (SIGKILL) between a runner's pod and its JIT Secret, then started again: the pods
// it left without Secrets never become runners, so the new run must find and replace them, with
// the default start timeout (10 min) far away. Runner names carry a non-default prefix, and none is
// given to a second pod across the restart.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const admission = kc.makeApiClient(AdmissionregistrationV1Api);
const SECRET = 'recovery-webhook-secret';
const APP_ID = 779;
const PREFIX = 'ci-acme';
const LABELS = ['self-hosted', 'lint'];

let namespace: string;
let fake: FakeGithub;
let simulator: ReturnType<typeof startRunnerSimulator>;
let configPath: string;
const children: GantryChild[] = [];
const webhookName = `recovery-hang-${process.pid}`;
/** A TLS endpoint that never answers: the apiserver's call to it waits, and so does the write. */
const hanging = new Set<Socket>();
const hangServer = createServer((socket) => {
  hanging.add(socket);
  socket.on('close', () => hanging.delete(socket));
});

function start(): GantryChild {
  const gantry = spawnGantry({
    configPath,
    env: { KUBECONFIG: inject('kubeconfig') },
    onLine: (line) => {
      if (process.env.GANTRY_TEST_LOG) process.stderr.write(`[gantry] ${line}\n`);
    },
  });
  children.push(gantry);
  return gantry;
}

const queue = (count: number) =>
  fake.queueJobs({ repo: 'acme/app', labels: LABELS, count, durationMs: 500 }).jobIds;
const done = (jobs: number[]) => jobs.every((id) => fake.job(id)?.status === 'completed');
const runnerPods = async () =>
  (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=runner' })).items;

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'recovery', {
    'pod-security.kubernetes.io/enforce': 'restricted',
  });
  const keys = appKeys();
  fake = new FakeGithub({ repos: ['acme/app'], app: { appId: APP_ID, publicKey: keys.publicKey } });
  await fake.start();
  fake.runInRealTime(100);
  await new Promise<void>((resolve) => hangServer.listen(0, '127.0.0.1', resolve));
  const github = fakeGithubConfig(fake, APP_ID, SECRET);
  const config = {
    log: { level: 'info' },
    http: { address: '127.0.0.1', port: 0 },
    github: { ...github, runners: { ...github.runners, namePrefix: PREFIX } },
    // The start timeout stays at its default: only the check of the JIT Secret can find the pods.
    controller: { reconcilePeriodSeconds: 0.5 },
    classes: {
      lint: {
        namespace,
        match: { github: { labels: LABELS } },
        nodeSelector: { type: 'kwok' },
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
        minIdle: 1,
        idleTimeout: '5s',
      },
    },
  };
  configPath = join(await mkdtemp(join(tmpdir(), 'gantry-recovery-')), 'config.json');
  await writeFile(configPath, JSON.stringify(config));
  simulator = startRunnerSimulator(kc, fake, [namespace]);
});

afterAll(async () => {
  for (const gantry of children) if (gantry.child.exitCode === null) gantry.child.kill('SIGKILL');
  await admission.deleteValidatingWebhookConfiguration({ name: webhookName }).catch(() => {});
  for (const socket of hanging) socket.destroy();
  hangServer.close();
  await simulator?.stop();
  await fake?.stop();
  if (namespace) await deleteNamespace(kc, namespace);
});

/** Holds every JIT Secret write in this namespace until the apiserver's webhook timeout. */
async function holdSecretWrites(): Promise<void> {
  const { port } = hangServer.address() as { port: number };
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: webhookName },
      webhooks: [
        {
          name: 'hold.recovery.gantry.dev',
          clientConfig: { url: `https://127.0.0.1:${port}/hold` },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'] }],
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
          objectSelector: { matchLabels: { 'app.kubernetes.io/component': 'runner-jit-config' } },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 30,
        },
      ],
    },
  });
  // The apiserver picks the configuration up within a moment: wait until a write of that kind hangs.
  await until('secret writes held', async () => {
    const name = `probe-${Date.now()}`;
    const write = core.createNamespacedSecret({
      namespace,
      body: { metadata: { name, labels: { 'app.kubernetes.io/component': 'runner-jit-config' } } },
    });
    write.catch(() => {});
    const held = await Promise.race([write.then(() => false), sleep(1_500).then(() => true)]);
    if (!held) await core.deleteNamespacedSecret({ name, namespace }).catch(() => {});
    return held;
  });
}

describe('a Gantry killed between a runner’s pod and its JIT Secret', { timeout: 180_000 }, () => {
  it('is followed by one that replaces the half-made runners within seconds, leaks nothing and reuses no name', async () => {
    // A first run that works: jobs run on runners named under the prefix.
    const first = start();
    await first.started;
    const early = queue(2);
    await until('the first jobs completed', async () => done(early), 60_000);
    for (const name of simulator.podNames.values()) expect(name).toMatch(/^ci-acme-lint-[0-9a-f]{10}$/);

    // Then every JIT Secret write hangs; the kill lands while the pods wait for theirs.
    await holdSecretWrites();
    const registeredBefore = new Set(fake.runners().map((r) => r.name));
    const late = queue(4);
    const halfMade = await until('four pods made, registered, without Secrets', async () => {
      const names = (await runnerPods())
        .filter((pod) => pod.status?.phase !== 'Succeeded' && pod.metadata?.deletionTimestamp === undefined)
        .map((pod) => pod.metadata?.name ?? '')
        .filter((name) => !registeredBefore.has(name) && fake.runners().some((r) => r.name === name));
      return names.length >= 4 ? names : undefined;
    });
    first.child.kill('SIGKILL');
    await first.exited;
    await admission.deleteValidatingWebhookConfiguration({ name: webhookName });
    for (const socket of hanging) socket.destroy();
    for (const name of halfMade) {
      await expect(core.readNamespacedSecret({ name: `${name}-jit`, namespace })).rejects.toThrow();
    }

    const restartedAt = Date.now();
    await start().started;
    await until('every job completed', async () => done(late), 30_000);
    const recoveredInMs = Date.now() - restartedAt;
    process.stderr.write(`[recovery] ${late.length} jobs ran ${recoveredInMs} ms after the restart\n`);

    // Nothing leaks: the half-made pods and their registrations go; what is left is the warm pool,
    // each live pod with its registration and nothing else registered.
    await until(
      'only the warm pool left, registered',
      async () => {
        const live = (await runnerPods()).filter((pod) => pod.metadata?.deletionTimestamp === undefined);
        const names = new Set(live.map((pod) => pod.metadata?.name));
        const registered = fake.runners().map((r) => r.name);
        return live.length === 1 && registered.length === 1 && registered.every((name) => names.has(name));
      },
      60_000,
    );
    for (const name of halfMade) expect(fake.runners().some((r) => r.name === name)).toBe(false);

    // No name was given to two pods, across the restart.
    const byName = new Map<string, string[]>();
    for (const [uid, name] of simulator.podNames) byName.set(name, [...(byName.get(name) ?? []), uid]);
    expect([...byName].filter(([, uids]) => uids.length > 1)).toEqual([]);
    expect(byName.size).toBeGreaterThanOrEqual(2 + 4 + 4);
  });
});
