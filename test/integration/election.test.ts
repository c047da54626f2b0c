import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { metricSum, spawnGantry } from '../support/gantry-process.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';

// Two and three Gantry daemons (the real process, src/main.ts) share one Lease on the real
// apiserver: exactly one acts; killing it hands over within the lease duration, SIGTERM at once.

const kc = testKubeConfig();
const coordination = kc.makeApiClient(CoordinationV1Api);
const SECRET = 'election-webhook-secret';
const APP_ID = 778;
const LEASE_SECONDS = 3;
const RETRY_SECONDS = 0.5;

interface Replica {
  name: string;
  url: string;
  webhookUrl: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

let namespace: string;
let fake: FakeGithub;
let simulator: ReturnType<typeof startRunnerSimulator>;
let configPath: string;
const replicas: Replica[] = [];

async function startReplica(name: string, config = configPath): Promise<Replica> {
  const gantry = spawnGantry({
    configPath: config,
    env: { KUBECONFIG: inject('kubeconfig'), HOSTNAME: name },
    onLine: (line) => {
      if (process.env.GANTRY_TEST_LOG) process.stderr.write(`[${name}] ${line}\n`);
    },
  });
  const { url, webhookUrl } = await gantry.started;
  const replica = { name, url, webhookUrl: webhookUrl ?? '', process: gantry.child, exited: gantry.exited };
  replicas.push(replica);
  return replica;
}

const metric = (replica: Replica, name: string, labels: string[] = []) =>
  metricSum(replica.url, name, labels);

const isLeader = async (r: Replica) => (await metric(r, 'gantry_leader')) === 1;
const podCreates = (r: Replica) =>
  metric(r, 'gantry_kube_requests_total', ['verb="post"', 'resource="pods"']);

async function leaderOf(candidates: Replica[]): Promise<{ leader: Replica; followers: Replica[] }> {
  return until('exactly one leader', async () => {
    const flags = await Promise.all(candidates.map(isLeader));
    if (flags.filter(Boolean).length !== 1) return undefined;
    const leader = candidates[flags.indexOf(true)] as Replica;
    return { leader, followers: candidates.filter((r) => r !== leader) };
  });
}

function queue(count: number): number[] {
  return fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'lint'], count, durationMs: 500 }).jobIds;
}

async function completed(jobs: number[], timeoutMs = 60_000): Promise<void> {
  await until(
    `${jobs.length} jobs completed`,
    async () => jobs.every((id) => fake.job(id)?.status === 'completed'),
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(jobs.map((id) => [id, fake.job(id)?.status]))}`);
  });
}

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'election', {
    'pod-security.kubernetes.io/enforce': 'restricted',
  });
  const keys = appKeys();
  fake = new FakeGithub({ repos: ['acme/app'], app: { appId: APP_ID, publicKey: keys.publicKey } });
  await fake.start();
  fake.runInRealTime(100);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-election-'));
  configPath = join(dir, 'config.json');
  const config = {
    log: { level: 'info' },
    http: { address: '127.0.0.1', port: 0 },
    github: fakeGithubConfig(fake, APP_ID, SECRET),
    // A runner half-made by a killed leader (pod without its JIT secret) is replaced quickly.
    controller: { reconcilePeriodSeconds: 0.5, startTimeoutSeconds: 4, deadlineGraceSeconds: 1 },
    election: {
      enabled: true,
      namespace,
      leaseDurationSeconds: LEASE_SECONDS,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: RETRY_SECONDS,
    },
    shutdownTimeoutSeconds: 10,
    classes: {
      lint: {
        namespace,
        match: { github: { labels: ['self-hosted', 'lint'] } },
        nodeSelector: { type: 'kwok' },
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
        idleTimeout: '5s',
      },
    },
  };
  await writeFile(configPath, JSON.stringify(config));
  simulator = startRunnerSimulator(kc, fake, [namespace]);
});

afterAll(async () => {
  for (const r of replicas) if (r.process.exitCode === null) r.process.kill('SIGKILL');
  await simulator?.stop();
  await fake?.stop();
  if (namespace) await deleteNamespace(kc, namespace);
});

describe('leader election between replicas', { timeout: 150_000 }, () => {
  let leader: Replica;
  let follower: Replica;

  it('elects exactly one leader, and only it creates runner pods, for webhooks that reach a follower too', async () => {
    const [a, b] = await Promise.all([startReplica('gantry-a'), startReplica('gantry-b')]);
    const elected = await leaderOf([a, b]);
    leader = elected.leader;
    follower = elected.followers[0] as Replica;
    // Deliveries go to the follower, which passes them on to the leader.
    fake.setWebhookTarget(`${follower.webhookUrl}/webhooks/github`, SECRET);
    await completed(queue(3));
    expect(await podCreates(follower)).toBe(0);
    expect(await podCreates(leader)).toBeGreaterThanOrEqual(3);
    // The follower still serves.
    expect((await fetch(`${follower.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${follower.url}/healthz`)).status).toBe(200);
    expect(await isLeader(follower)).toBe(false);
  });

  it('hands over within the lease duration when the leader dies, and jobs still get runners', async () => {
    const killedAt = performance.now();
    leader.process.kill('SIGKILL');
    await leader.exited;
    await until('the follower leads', () => isLeader(follower), 10_000, 50);
    const takeoverMs = performance.now() - killedAt;
    process.stderr.write(`[election] takeover after the leader was killed: ${Math.round(takeoverMs)} ms\n`);
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 2 * RETRY_SECONDS) * 1000 + 500);
    fake.setWebhookTarget(`${follower.webhookUrl}/webhooks/github`, SECRET);
    await completed(queue(2));
    leader = follower;
  });

  it('releases the lease on SIGTERM, exits 0, and the next replica takes over at once', async () => {
    const standby = await startReplica('gantry-c');
    await until(
      'the new replica follows',
      async () => !(await isLeader(standby)) && (await isLeader(leader)),
    );
    const termAt = performance.now();
    leader.process.kill('SIGTERM');
    await until('the standby leads', () => isLeader(standby), 10_000, 50);
    const takeoverMs = performance.now() - termAt;
    process.stderr.write(`[election] takeover after SIGTERM: ${Math.round(takeoverMs)} ms\n`);
    expect(await leader.exited).toBe(0);
    expect(takeoverMs).toBeLessThan(LEASE_SECONDS * 1000);
    const lease = await coordination.readNamespacedLease({ name: 'gantry-leader', namespace });
    expect(lease.spec?.holderIdentity).toMatch(/^gantry-c_/);
    fake.setWebhookTarget(`${standby.webhookUrl}/webhooks/github`, SECRET);
    await completed(queue(2));
  });
});

describe('webhooks received by a follower', { timeout: 90_000 }, () => {
  // The leader polls at start and then only every 2 minutes: a job it learns of sooner came by the
  // follower's forwarding.
  const POLL_SECONDS = 120;
  let leader: Replica;
  let follower: Replica;

  beforeAll(async () => {
    // The replicas of the tests above stop first: these two would share their runner class.
    await Promise.all(
      replicas.map(async (r) => {
        if (r.process.exitCode !== null) return;
        r.process.kill('SIGTERM');
        await r.exited;
      }),
    );
    const forwardConfig = join(dirname(configPath), 'forward.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, Record<string, unknown>>;
    await writeFile(
      forwardConfig,
      JSON.stringify({
        ...config,
        github: {
          ...config.github,
          poll: { intervalSeconds: POLL_SECONDS, backstopIntervalSeconds: POLL_SECONDS },
        },
        election: { ...config.election, leaseName: 'gantry-forwarding' },
      }),
    );
    const started = await Promise.all([
      startReplica('gantry-f1', forwardConfig),
      startReplica('gantry-f2', forwardConfig),
    ]);
    const elected = await leaderOf(started);
    leader = elected.leader;
    follower = elected.followers[0] as Replica;
    // The leader's first sweep (at the start of its term) is over before the job is queued.
    await until(
      'the first poll sweep done',
      async () => (await metric(leader, 'gantry_github_poll_sweeps_total')) >= 1,
    );
  });

  it('publishes the leader URL on the Lease', async () => {
    const lease = await coordination.readNamespacedLease({ name: 'gantry-forwarding', namespace });
    // Followers forward deliveries to the leader's webhook listener.
    expect(lease.metadata?.annotations?.['gantry.dev/leader-url']).toBe(leader.webhookUrl);
  });

  it('forwards a delivery to the leader, which launches its runner long before its next poll', async () => {
    fake.setWebhookTarget(`${follower.webhookUrl}/webhooks/github`, SECRET);
    const queuedAt = performance.now();
    const [job] = queue(1);
    await until('the leader created a runner pod', async () => (await podCreates(leader)) >= 1, 20_000, 50);
    const launchMs = performance.now() - queuedAt;
    process.stderr.write(
      `[election] runner pod created ${Math.round(launchMs)} ms after a delivery to the follower\n`,
    );
    expect(launchMs).toBeLessThan(10_000);
    await completed([job as number]);
    expect(await podCreates(follower)).toBe(0);
    expect(
      await metric(follower, 'gantry_github_webhook_forwards_total', ['result="ok"']),
    ).toBeGreaterThanOrEqual(1);
    expect(await metric(follower, 'gantry_github_webhook_forwards_total', ['result="failed"'])).toBe(0);
    // The leader learnt of the job from the forwarded delivery, not from a poll.
    expect(
      await metric(leader, 'gantry_github_job_events_total', ['kind="queued"', 'via="webhook"']),
    ).toBeGreaterThanOrEqual(1);
  });
});
