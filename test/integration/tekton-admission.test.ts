import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  SchedulingV1Api,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MAX_REVIEW_DEPTH } from '../../src/sources/tekton/admission-review.ts';
import {
  applyAll,
  type ChartObject,
  clusterScoped,
  deleteAll,
  manifests,
  objectsOfKind,
  render,
} from '../support/chart.ts';
import {
  tektonControllerSkipReason,
  useTektonController,
} from '../support/control-plane/use-tekton-controller.ts';
import {
  createTestNamespace,
  deleteNamespace,
  kubeConfigWithToken,
  messageOf,
  statusOf,
  testKubeConfig,
  until,
} from '../support/kube.ts';
import { ensureSandboxRuntimeClass, SANDBOX_RUNTIME_CLASS } from '../support/runtime-class.ts';

// The whole Tekton path with nothing played: the chart's objects (webhook configuration, Roles,
// admission policies) in the cluster, Gantry running with a token of the chart's ServiceAccount, and
// Tekton's real controller turning admitted runs into TaskRuns and pods that KWOK runs on its nodes,
// in a namespace that enforces Pod Security "restricted". The webhook keeps the chart's default
// failurePolicy, Ignore: what Gantry refuses must be refused with an answer, not an error.

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const objects = kc.makeApiClient(CustomObjectsApi);
const group = 'tekton.dev';
const version = 'v1';
const plural = 'pipelineruns';
const asJsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const skipReason = tektonControllerSkipReason();

interface Run {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { status?: string };
  status?: { conditions?: { type: string; status: string; reason?: string }[]; completionTime?: string };
}

/** A PipelineRun of one embedded Task whose steps meet Pod Security "restricted" (what only a Task can say). */
function pipelineRun(name: string, labels: Record<string, string>, spec: Record<string, unknown> = {}) {
  const step = (stepName: string) => ({
    name: stepName,
    image: 'busybox',
    script: `echo ${stepName}`,
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  });
  return {
    apiVersion: `${group}/${version}`,
    kind: 'PipelineRun',
    metadata: { name, labels },
    spec: { pipelineSpec: { tasks: [{ name: 'build', taskSpec: { steps: [step('make')] } }] }, ...spec },
  };
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

describe.skipIf(skipReason || inject('clusterKind') === 'existing')(
  'Tekton runs through Gantry’s chart and Tekton’s controller',
  () => {
    const tekton = useTektonController({
      prefix: 'tekton-admission',
      labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
      // Tekton's own init containers then meet "restricted" too.
      featureFlags: { 'set-security-context': 'true' },
    });
    const suffix = randomBytes(3).toString('hex');
    const release = `gantry-${suffix}`;
    const priorityClass = `gantry-tekton-${suffix}`;
    const namespaces: string[] = [];
    let cluster: ChartObject[] = [];
    let app: App | undefined;
    let queuePolicy = '';

    const create = (body: ReturnType<typeof pipelineRun>) =>
      objects.createNamespacedCustomObject({ group, version, namespace: tekton.namespace, plural, body });
    const get = async (name: string) =>
      (await objects.getNamespacedCustomObject({
        group,
        version,
        namespace: tekton.namespace,
        plural,
        name,
      })) as Run;
    const succeeded = (run: Run) => run.status?.conditions?.find((c) => c.type === 'Succeeded');
    /** Waits for the run's end; when time runs out the error carries the tail of Tekton's log. */
    const finished = async (name: string) => {
      try {
        return await until(
          `${name} finished`,
          async () => {
            const run = await get(name);
            return succeeded(run)?.status !== 'Unknown' && succeeded(run) !== undefined && run;
          },
          45_000,
          250,
        );
      } catch (err) {
        throw new Error(
          `${(err as Error).message}\nTekton controller log:\n${await tekton.controller.logTail()}`,
        );
      }
    };

    beforeAll(async () => {
      const gantryNamespace = await createTestNamespace(kc, 'tekton-admission-gantry', {
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
      namespaces.push(gantryNamespace);
      const runnerNamespace = `tekton-admission-runners-${suffix}`;
      namespaces.push(runnerNamespace);
      await ensureSandboxRuntimeClass(kc);
      await kc
        .makeApiClient(SchedulingV1Api)
        .createPriorityClass({ body: { metadata: { name: priorityClass }, value: 100 } });
      await core.createNamespacedServiceAccount({
        namespace: tekton.namespace,
        body: { metadata: { name: 'builder' } },
      });

      const webhookPort = await freePort();
      const rendered = manifests(
        render({
          release,
          namespace: gantryNamespace,
          values: {
            replicaCount: 1,
            tekton: { webhook: { certManager: { enabled: false } } },
            config: {
              log: { level: process.env.GANTRY_TEST_LOG ?? 'silent' },
              controller: { reconcilePeriodSeconds: 0.2 },
              tekton: {
                enabled: true,
                namespaces: [tekton.namespace],
                webhook: { port: webhookPort, tls: { extraHosts: ['127.0.0.1'] } },
              },
              classes: {
                sandbox: {
                  namespace: runnerNamespace,
                  match: { tekton: { matchLabels: { kind: 'sandbox' }, namespaces: [tekton.namespace] } },
                  enforce: true,
                  maxRunners: 1,
                  maxCreatePerSecond: 100,
                  runtimeClassName: SANDBOX_RUNTIME_CLASS,
                  priorityClassName: priorityClass,
                  nodeSelector: { type: 'kwok' },
                  tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }],
                  serviceAccountName: 'builder',
                },
              },
            },
          },
        }),
      );
      // The apiserver calls this process rather than the Service, which leads nowhere here.
      const objectsToApply = rendered
        .filter((object) => object.kind !== 'Deployment')
        .map((object) =>
          object.kind === 'MutatingWebhookConfiguration'
            ? {
                ...object,
                webhooks: (object.webhooks as { clientConfig: unknown }[]).map((webhook) => ({
                  ...webhook,
                  clientConfig: { url: `https://127.0.0.1:${webhookPort}/admit/pipelineruns` },
                })),
              }
            : object,
        );
      cluster = clusterScoped(objectsToApply);
      applyAll(inject('kubeconfig'), objectsToApply, 'gantry-tekton-admission-test');
      const [policy] = objectsOfKind(rendered, 'ValidatingAdmissionPolicy').filter((p) =>
        p.metadata.name.endsWith('-tekton-queue'),
      );
      queuePolicy = policy?.metadata.name ?? '';

      const [account] = objectsOfKind(rendered, 'ServiceAccount');
      const token = await core.createNamespacedServiceAccountToken({
        name: account?.metadata.name ?? '',
        namespace: gantryNamespace,
        body: { spec: { audiences: [], expirationSeconds: 900 } },
      });
      if (!token.status?.token) throw new Error('no token');
      // Gantry's own namespace, as in its pod.
      const asGantry = kubeConfigWithToken(kc, token.status.token, gantryNamespace);
      const [configMap] = objectsOfKind(rendered, 'ConfigMap');
      const raw = parseYaml(
        (configMap?.data as Record<string, string> | undefined)?.['config.yaml'] ?? '',
      ) as {
        http?: unknown;
        tekton: { webhook: { address?: string } };
      };
      raw.http = { address: '127.0.0.1', port: 0 };
      raw.tekton.webhook.address = '127.0.0.1';
      app = createApp(parseConfig(raw, 'rendered ConfigMap'), {
        kubeConfig: asGantry,
        logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
      });
      await app.start();

      // The apiserver trusts Gantry once it has taken in the caBundle Gantry wrote; until then, with
      // failurePolicy Ignore, runs would pass unseen. A run naming no class is denied once it is seen.
      await until(
        'Gantry’s webhook answering the apiserver',
        async () => {
          const probe = pipelineRun(`probe-${Date.now()}`, { 'gantry.dev/class': 'no-such-class' });
          try {
            await create(probe);
          } catch (err) {
            return messageOf(err).includes('names no class that takes Tekton runs');
          }
          await objects.deleteNamespacedCustomObject({
            group,
            version,
            namespace: tekton.namespace,
            plural,
            name: probe.metadata.name,
          });
          return false;
        },
        30_000,
        250,
      );
      // The apiserver enforces a new admission policy a moment after it is created.
      await create(pipelineRun('policy-probe', {}, { status: 'PipelineRunPending' }));
      let attempt = 0;
      await until(
        'the queue policy in force',
        () =>
          objects
            .patchNamespacedCustomObject(
              {
                group,
                version,
                namespace: tekton.namespace,
                plural,
                name: 'policy-probe',
                body: [
                  {
                    op: 'add',
                    path: '/metadata/annotations',
                    value: { 'gantry.dev/probe': String(++attempt) },
                  },
                ],
              },
              asJsonPatch,
            )
            .then(
              () => false,
              (err: unknown) => statusOf(err) === 403,
            ),
        30_000,
        250,
      );
    }, 120_000);

    afterAll(async () => {
      await app?.stop();
      deleteAll(inject('kubeconfig'), cluster);
      await kc
        .makeApiClient(SchedulingV1Api)
        .deletePriorityClass({ name: priorityClass })
        .catch(() => {});
      await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
    });

    it('admits a queued run, whose pod runs on a KWOK node with the class’s settings, and frees its slot for the next', async () => {
      await create(pipelineRun('first', { kind: 'sandbox' }));
      await create(pipelineRun('second', { kind: 'sandbox' }));
      const queued = await get('second');
      expect(queued.spec.status).toBe('PipelineRunPending');
      expect(queued.metadata.annotations?.['gantry.dev/class']).toBe('sandbox');
      // Only Gantry starts a run it queued: not even the cluster admin, by the chart's policy.
      const refusal = await objects
        .patchNamespacedCustomObject(
          {
            group,
            version,
            namespace: tekton.namespace,
            plural,
            name: 'second',
            body: [{ op: 'remove', path: '/spec/status' }],
          },
          asJsonPatch,
        )
        .then(
          () => undefined,
          (err: unknown) => ({ status: statusOf(err), message: messageOf(err) }),
        );
      expect(refusal?.status).toBe(403);
      expect(refusal?.message).toContain(
        `ValidatingAdmissionPolicy '${queuePolicy}' with binding '${queuePolicy}' denied request: Gantry starts the runs it queued`,
      );

      const pod = await until(
        'the pod of first on a node',
        async () => {
          const { items } = await core.listNamespacedPod({
            namespace: tekton.namespace,
            labelSelector: 'tekton.dev/pipelineRun=first',
          });
          return items.find((p: V1Pod) => p.spec?.nodeName);
        },
        45_000,
        250,
      );
      const node = await core.readNode({ name: pod.spec?.nodeName ?? '' });
      expect(node.metadata?.labels?.type).toBe('kwok');
      // What the class said, as the apiserver stored it on the pod Tekton made.
      expect(pod.spec).toMatchObject({
        runtimeClassName: SANDBOX_RUNTIME_CLASS,
        priorityClassName: priorityClass,
        serviceAccountName: 'builder',
        automountServiceAccountToken: false,
        nodeSelector: { type: 'kwok' },
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      });
      expect(pod.spec?.tolerations).toContainEqual({
        key: 'sandbox',
        operator: 'Exists',
        effect: 'NoSchedule',
      });
      // One slot: the second waits while the first runs.
      expect((await get('second')).spec.status).toBe('PipelineRunPending');

      const first = await finished('first');
      expect(succeeded(first)).toMatchObject({ status: 'True', reason: 'Succeeded' });
      const second = await finished('second');
      expect(succeeded(second)).toMatchObject({ status: 'True', reason: 'Succeeded' });
      const admittedAt = Date.parse(second.metadata.annotations?.['gantry.dev/admitted-at'] ?? '');
      // Admitted once the first had finished (Tekton's completionTime has whole seconds).
      expect(admittedAt).toBeGreaterThanOrEqual(Date.parse(first.status?.completionTime ?? '') - 1);
    });

    it('refuses a run that sets its own runtime class, the host network and a per-task override, saying why', async () => {
      const run = pipelineRun(
        'own-settings',
        { kind: 'sandbox' },
        {
          taskRunTemplate: { podTemplate: { runtimeClassName: 'runc', hostNetwork: true } },
          taskRunSpecs: [{ pipelineTaskName: 'build', podTemplate: { nodeSelector: { pool: 'fast' } } }],
        },
      );
      const refusal = await create(run).then(
        () => undefined,
        (err: unknown) => ({ status: statusOf(err), message: messageOf(err) }),
      );
      expect(refusal).toEqual({
        status: 403,
        message:
          'admission webhook "pipelineruns.gantry.dev" denied the request: class sandbox enforces its pod settings: ' +
          'spec.taskRunTemplate.podTemplate.runtimeClassName "runc" is not class sandbox\'s "gvisor"; ' +
          "spec.taskRunTemplate.podTemplate.hostNetwork true shares the node's namespaces; " +
          'spec.taskRunSpecs[0].podTemplate.nodeSelector replaces the run\'s and lacks class sandbox\'s type="kwok"',
      });
      expect(await get('own-settings').catch(statusOf)).toBe(404);
    });

    it('keeps Tekton from copying a referenced Pipeline’s gantry.dev/ annotations onto a run, which still runs', async () => {
      // Tekton copies a referenced Pipeline's labels and annotations onto the run (those the run lacks),
      // with an update the queue policy refuses when a gantry.dev/ annotation is among them.
      const { spec } = pipelineRun('unused', {});
      await objects.createNamespacedCustomObject({
        group,
        version,
        namespace: tekton.namespace,
        plural: 'pipelines',
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'Pipeline',
          metadata: {
            name: 'forging',
            annotations: { 'gantry.dev/cancel-reason': 'forged', 'example.com/team': 'web' },
          },
          spec: spec.pipelineSpec,
        },
      });
      const run = pipelineRun('by-reference', { kind: 'sandbox' });
      await create({ ...run, spec: { pipelineRef: { name: 'forging' } } } as unknown as typeof run);
      const done = await finished('by-reference');
      expect(succeeded(done)).toMatchObject({ status: 'True', reason: 'Succeeded' });
      expect(done.metadata.annotations?.['gantry.dev/cancel-reason']).toBeUndefined();
      expect(done.metadata.annotations?.['example.com/team']).toBeUndefined();
      expect(await tekton.controller.logTail(400)).toContain(queuePolicy);
    });

    it('refuses a run nested deeper than Gantry reads, under failurePolicy Ignore, and nothing starts', async () => {
      let nested: unknown = 'deep';
      for (let i = 0; i < MAX_REVIEW_DEPTH; i++) nested = { level: nested };
      const run = pipelineRun('depth-bomb', { kind: 'sandbox' });
      // A custom task's spec is free-form: the apiserver stores it as written.
      run.spec.pipelineSpec.tasks.push({
        name: 'custom',
        taskSpec: { apiVersion: 'example.dev/v1', kind: 'Wait', spec: nested },
      } as unknown as (typeof run.spec.pipelineSpec.tasks)[number]);
      const refusal = await create(run).then(
        () => undefined,
        (err: unknown) => ({ status: statusOf(err), message: messageOf(err) }),
      );
      expect(refusal).toEqual({
        status: 400,
        message: `admission webhook "pipelineruns.gantry.dev" denied the request: the object nests JSON deeper than ${MAX_REVIEW_DEPTH} levels, which Gantry does not read`,
      });
      expect(await get('depth-bomb').catch(statusOf)).toBe(404);
      const { items } = (await objects.listNamespacedCustomObject({
        group,
        version,
        namespace: tekton.namespace,
        plural: 'taskruns',
        labelSelector: 'tekton.dev/pipelineRun=depth-bomb',
      })) as { items: unknown[] };
      expect(items).toEqual([]);
    });
  },
);
