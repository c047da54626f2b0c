import { createServer } from 'node:net';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { PipelineRun } from '../../src/sources/tekton/pipeline-run.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// The Tekton queue end to end: the real apiserver calls Gantry's admission webhook over TLS for
// every PipelineRun created in the test namespaces (Gantry makes its own certificate and injects
// the CA), Tekton's real CRD schema judges the patched runs, and Gantry admits them class by class.
// No Tekton controller runs here, so the test plays its part: it sets startTime on admitted runs
// and marks them Succeeded through the status subresource.

const kc = testKubeConfig();
const objects = kc.makeApiClient(CustomObjectsApi);
const admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);
const core = kc.makeApiClient(CoreV1Api);
const group = 'tekton.dev';
const version = 'v1';
const plural = 'pipelineruns';
const asMergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const logLevel = process.env.GANTRY_TEST_LOG ?? 'silent';

let gantryNamespace: string;
let teamA: string;
let teamB: string;
let webhookName: string;
let webhookPort: number;
let app: App | undefined;
const namespaces: string[] = [];

const withTekton = inject('clusterKind') !== 'existing';

beforeAll(async () => {
  if (!withTekton) return;
  gantryNamespace = await createTestNamespace(kc, 'gantry');
  teamA = await createTestNamespace(kc, 'team-a');
  teamB = await createTestNamespace(kc, 'team-b');
  namespaces.push(gantryNamespace, teamA, teamB);
  webhookPort = await freePort();
  webhookName = `gantry-test-${gantryNamespace}`;
  // What the chart installs, pointed at this process; Gantry fills in the caBundle.
  await admissionApi.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: webhookName },
      webhooks: [
        {
          name: 'pipelineruns.gantry.dev',
          clientConfig: { url: `https://127.0.0.1:${webhookPort}/admit/pipelineruns` },
          rules: [
            { operations: ['CREATE'], apiGroups: [group], apiVersions: [version], resources: [plural] },
          ],
          // Fail, so a run the webhook did not see cannot pass unnoticed in this test.
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
          namespaceSelector: {
            matchExpressions: [
              { key: 'kubernetes.io/metadata.name', operator: 'In', values: [teamA, teamB] },
            ],
          },
        },
      ],
    },
  });
  app = await startGantry();
});

afterAll(async () => {
  await app?.stop();
  if (webhookName)
    await admissionApi.deleteMutatingWebhookConfiguration({ name: webhookName }).catch(() => {});
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

async function startGantry(): Promise<App> {
  const tektonClass = (kind: string, extra: Record<string, unknown> = {}) => ({
    match: { tekton: { matchLabels: { kind } } },
    maxRunners: 3,
    maxCreatePerSecond: 100,
    ...extra,
  });
  const config = parseConfig({
    log: { level: logLevel },
    http: { address: '127.0.0.1', port: 0 },
    tekton: {
      enabled: true,
      namespaces: [teamA, teamB],
      webhook: {
        address: '127.0.0.1',
        port: webhookPort,
        tls: { webhookConfigurationName: webhookName, extraHosts: ['127.0.0.1'] },
      },
    },
    controller: { reconcilePeriodSeconds: 0.2 },
    classes: {
      lint: tektonClass('lint', {
        runtimeClassName: 'gvisor',
        nodeSelector: { pool: 'ci', disk: 'ssd' },
        tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
      }),
      integration: tektonClass('integration'),
      stale: tektonClass('stale', { maxRunners: 0, maxQueueAge: '2s' }),
    },
  });
  const started = createApp(config, { kubeConfig: kc, logger: pino({ level: logLevel }) });
  process.env.POD_NAMESPACE = gantryNamespace;
  await started.start();
  return started;
}

function pipelineRun(name: string, labels: Record<string, string>, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'PipelineRun',
    metadata: { name, labels },
    spec: {
      pipelineSpec: {
        tasks: [{ name: 'build', taskSpec: { steps: [{ name: 'make', image: 'alpine', script: 'make' }] } }],
      },
      ...spec,
    },
  };
}

async function create(namespace: string, body: ReturnType<typeof pipelineRun>): Promise<PipelineRun> {
  return (await objects.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural,
    body,
    fieldValidation: 'Strict',
  })) as PipelineRun;
}

async function list(namespace: string): Promise<PipelineRun[]> {
  const found = (await objects.listNamespacedCustomObject({ group, version, namespace, plural })) as {
    items: PipelineRun[];
  };
  return found.items;
}

async function get(namespace: string, name: string): Promise<PipelineRun> {
  return (await objects.getNamespacedCustomObject({
    group,
    version,
    namespace,
    plural,
    name,
  })) as PipelineRun;
}

const annotation = (run: PipelineRun, key: string) => run.metadata?.annotations?.[`gantry.dev/${key}`];
const isFinished = (run: PipelineRun) =>
  run.status?.conditions?.some((c) => c.type === 'Succeeded' && c.status !== 'Unknown') ?? false;
const isAdmitted = (run: PipelineRun) => annotation(run, 'admitted-at') !== undefined;

/** What Tekton's controller does to a run it picked up, then to one that ended. */
async function markStarted(run: PipelineRun): Promise<void> {
  const { namespace = '', name = '' } = run.metadata ?? {};
  const body = {
    status: {
      startTime: new Date().toISOString(),
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Running' }],
    },
  };
  await objects.patchNamespacedCustomObjectStatus(
    { group, version, namespace, plural, name, body },
    asMergePatch,
  );
}

async function markSucceeded(run: PipelineRun): Promise<void> {
  const { namespace = '', name = '' } = run.metadata ?? {};
  const body = {
    status: {
      startTime: run.status?.startTime ?? new Date().toISOString(),
      completionTime: new Date().toISOString(),
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded' }],
    },
  };
  await objects.patchNamespacedCustomObjectStatus(
    { group, version, namespace, plural, name, body },
    asMergePatch,
  );
}

/**
 * Plays Tekton until every run of `kinds` in the namespaces finished, finishing one admitted run per
 * class per round, and checks the class limit at every look. Returns the order runs were admitted in.
 */
async function drain(kinds: string[], limit: number): Promise<PipelineRun[]> {
  // `until` retries a failing check, so the limit is recorded here and asserted after.
  let peak = 0;
  const ended = new Map<string, PipelineRun>();
  await until(
    'every run admitted and finished',
    async () => {
      const runs = (await Promise.all([list(teamA), list(teamB)])).flat();
      const ours = runs.filter((run) => kinds.includes(run.metadata?.labels?.kind ?? ''));
      for (const kind of kinds) {
        const running = ours.filter(
          (run) => run.metadata?.labels?.kind === kind && isAdmitted(run) && !isFinished(run),
        );
        peak = Math.max(peak, running.length);
        const next = running[0];
        if (next) {
          if (!next.status?.startTime) await markStarted(next);
          await markSucceeded(await get(next.metadata?.namespace ?? '', next.metadata?.name ?? ''));
        }
      }
      for (const run of ours) if (isFinished(run)) ended.set(run.metadata?.uid ?? '', run);
      return ours.length > 0 && ours.every(isFinished);
    },
    90_000,
    150,
  );
  expect(peak, 'most runs of a class admitted and unfinished at once').toBe(limit);
  return [...ended.values()];
}

/** A port free now on loopback, for the webhook URL that must be known before Gantry starts. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe.skipIf(!withTekton)('Tekton queue', () => {
  it('holds every new run of a class pending and admits at most maxRunners per class, FIFO per namespace', async () => {
    const created: PipelineRun[] = [];
    for (let i = 0; i < 20; i++) {
      const kind = i % 2 === 0 ? 'lint' : 'integration';
      const namespace = i % 4 < 2 ? teamA : teamB;
      created.push(await create(namespace, pipelineRun(`run-${String(i).padStart(2, '0')}`, { kind })));
    }
    // The apiserver stored what the webhook made of them: each held pending in its class.
    for (const run of created) {
      expect(annotation(run, 'class')).toBe(run.metadata?.labels?.kind);
      expect(annotation(run, 'queued-at')).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(run.spec?.status).toBe('PipelineRunPending');
    }
    const lint = created.find((run) => run.metadata?.labels?.kind === 'lint');
    expect(lint?.spec?.taskRunTemplate?.podTemplate).toMatchObject({
      runtimeClassName: 'gvisor',
      nodeSelector: { pool: 'ci', disk: 'ssd' },
      tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    });

    const finished = await drain(['lint', 'integration'], 3);
    expect(finished).toHaveLength(20);
    // FIFO within a namespace and class: admitted in the order they were queued.
    for (const namespace of [teamA, teamB]) {
      for (const kind of ['lint', 'integration']) {
        const runs = finished.filter(
          (r) => r.metadata?.namespace === namespace && r.metadata?.labels?.kind === kind,
        );
        const byQueue = [...runs].sort((a, b) =>
          (annotation(a, 'queued-at') ?? '').localeCompare(annotation(b, 'queued-at') ?? ''),
        );
        const byAdmission = [...runs].sort((a, b) =>
          (annotation(a, 'admitted-at') ?? '').localeCompare(annotation(b, 'admitted-at') ?? ''),
        );
        expect(byAdmission.map((r) => r.metadata?.name)).toEqual(byQueue.map((r) => r.metadata?.name));
      }
    }
    const metrics = await app?.metrics.getSingleMetricAsString('gantry_job_queue_seconds');
    expect(metrics).toMatch(/gantry_job_queue_seconds_count\{source="tekton",class="lint"\} 10/);
    const starts = await app?.metrics.getSingleMetricAsString('gantry_run_start_seconds');
    expect(starts).toMatch(/gantry_run_start_seconds_count\{class="integration"\} 10/);
  });

  it('never releases a run its author created pending, and leaves runs of no class alone', async () => {
    const held = await create(
      teamA,
      pipelineRun('held-by-author', { kind: 'lint' }, { status: 'PipelineRunPending' }),
    );
    expect(annotation(held, 'held')).toBe('user');
    expect(annotation(held, 'queued-at')).toBeUndefined();
    const other = await create(teamA, pipelineRun('no-class', { kind: 'docs' }));
    expect(other.metadata?.annotations ?? {}).toEqual({});
    expect(other.spec?.status).toBeUndefined();
    expect(other.spec?.taskRunTemplate).toBeUndefined();
    // A run queued after the held one is admitted, and the held one is still pending.
    await create(teamA, pipelineRun('after-held', { kind: 'lint' }));
    await until('the later run admitted', async () => isAdmitted(await get(teamA, 'after-held')));
    expect((await get(teamA, 'held-by-author')).spec?.status).toBe('PipelineRunPending');
    await markSucceeded(await get(teamA, 'after-held'));
  });

  it('keeps the pod settings the author wrote and adds the class’s others', async () => {
    const run = await create(
      teamB,
      pipelineRun(
        'own-settings',
        { kind: 'lint' },
        {
          taskRunTemplate: {
            serviceAccountName: 'builder',
            podTemplate: {
              nodeSelector: { pool: 'mine' },
              runtimeClassName: 'kata',
              automountServiceAccountToken: true,
            },
          },
        },
      ),
    );
    expect(run.spec?.taskRunTemplate).toEqual({
      serviceAccountName: 'builder',
      podTemplate: {
        nodeSelector: { pool: 'mine', disk: 'ssd' },
        runtimeClassName: 'kata',
        automountServiceAccountToken: true,
        tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      },
    });
  });

  it('refuses a run that names a class that does not exist, saying which', async () => {
    await expect(create(teamA, pipelineRun('typo', { 'gantry.dev/class': 'lnit' }))).rejects.toMatchObject({
      body: expect.stringContaining('lnit'),
    });
  });

  it('answers a malformed AdmissionReview with a denial at HTTP 200, naming the problem, and keeps serving', async () => {
    const secret = await core.readNamespacedSecret({
      name: 'gantry-webhook-tls',
      namespace: gantryNamespace,
    });
    const ca = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString();
    const answer = await postWithCa(
      `https://127.0.0.1:${webhookPort}/admit/pipelineruns`,
      ca,
      '{"kind":"Nope"}',
    );
    // A denial is honoured whatever the failurePolicy; an HTTP error would be the policy's to judge.
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: '',
        allowed: false,
        status: { code: 400, message: 'apiVersion: expected "admission.k8s.io/v1", got nothing' },
      },
    });
    const broken = await postWithCa(
      `https://127.0.0.1:${webhookPort}/admit/pipelineruns`,
      ca,
      '{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u-1","object":{',
    );
    expect(broken.status).toBe(200);
    expect(JSON.parse(broken.body).response).toEqual({
      uid: 'u-1',
      allowed: false,
      status: { code: 400, message: 'the request body is not valid JSON; an AdmissionReview was expected' },
    });
    const run = await create(teamA, pipelineRun('after-garbage', { kind: 'integration' }));
    expect(annotation(run, 'class')).toBe('integration');
    await drain(['integration'], 1);
  });

  it('cancels a run queued longer than its class allows, saying why', async () => {
    await create(teamB, pipelineRun('too-long', { kind: 'stale' }));
    await until(
      'the stale run cancelled',
      async () => (await get(teamB, 'too-long')).spec?.status === 'Cancelled',
      15_000,
    );
    const run = await get(teamB, 'too-long');
    expect(annotation(run, 'cancel-reason')).toBe('max-queue-age');
    expect(annotation(run, 'admitted-at')).toBeUndefined();
  });

  it('rebuilds the queue from the runs after a restart: nothing admitted twice, nothing lost', async () => {
    for (let i = 0; i < 8; i++) await create(teamA, pipelineRun(`restart-${i}`, { kind: 'integration' }));
    await until(
      'three admitted',
      async () =>
        (await list(teamA)).filter((r) => r.metadata?.name?.startsWith('restart-') && isAdmitted(r))
          .length === 3,
    );
    await app?.stop();
    const before = new Map(
      (await list(teamA))
        .filter((r) => r.metadata?.name?.startsWith('restart-') && isAdmitted(r))
        .map((r) => [r.metadata?.name, annotation(r, 'admitted-at')]),
    );
    expect(before.size).toBe(3);
    app = await startGantry();
    // Give the new process time to act on what it found: it must not admit a fourth.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const after = (await list(teamA)).filter(
      (r) => r.metadata?.name?.startsWith('restart-') && isAdmitted(r),
    );
    expect(after).toHaveLength(3);
    for (const run of after) expect(annotation(run, 'admitted-at')).toBe(before.get(run.metadata?.name));
    const finished = await drain(['integration'], 3);
    expect(finished.filter((r) => r.metadata?.name?.startsWith('restart-'))).toHaveLength(8);
  });
});

async function postWithCa(url: string, ca: string, body: string): Promise<{ status: number; body: string }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
