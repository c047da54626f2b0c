import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKubeApis } from '../../src/kube/client.ts';
import {
  ADMISSION_PATH,
  type AdmissionServer,
  createAdmissionServer,
} from '../../src/sources/tekton/admission-server.ts';
import { splitPemCertificates } from '../../src/sources/tekton/tls/certificates.ts';
import {
  SECRET_KEYS,
  type SelfManagedTls,
  type SelfManagedTlsOptions,
  selfManagedHosts,
  startSelfManagedTls,
} from '../../src/sources/tekton/tls/self-managed.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// The apiserver of the local control plane calls a webhook served here, over TLS it can only trust
// through the caBundle that the self-managed certificate puts into the MutatingWebhookConfiguration.
// Each scenario scopes its webhook (failurePolicy Fail) to its own namespace, so a webhook that stops
// answering refuses PipelineRuns there only.

const kc = testKubeConfig();
const apis = createKubeApis(kc, { timeoutMs: 10_000 });
const core = kc.makeApiClient(CoreV1Api);
const admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);
const objects = kc.makeApiClient(CustomObjectsApi);
const logger = pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' });
const MARK = 'gantry.dev/webhook-tls-test';

/** Stands in for the real decision: marks every PipelineRun with an annotation, by JSON patch. */
function markingReview(text: string) {
  const request = (
    JSON.parse(text) as { request?: { uid?: string; object?: { metadata?: { annotations?: object } } } }
  ).request;
  const patch = request?.object?.metadata?.annotations
    ? [{ op: 'add', path: `/metadata/annotations/${MARK.replace('/', '~1')}`, value: 'mutated' }]
    : [{ op: 'add', path: '/metadata/annotations', value: { [MARK]: 'mutated' } }];
  return {
    httpStatus: 200,
    body: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: request?.uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      },
    },
  };
}

function webhookConfiguration(name: string, url: string, namespace: string): V1MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, labels: { 'gantry.dev/test': 'true' } },
    webhooks: [
      {
        name: 'pipelineruns.gantry.dev',
        clientConfig: { url },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: ['tekton.dev'],
            apiVersions: ['v1'],
            resources: ['pipelineruns'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [namespace] }],
        },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 5,
      },
    ],
  };
}

/** Creates a PipelineRun and returns its annotations as stored (after every mutating webhook). */
async function createPipelineRun(namespace: string): Promise<Record<string, string>> {
  const created = (await objects.createNamespacedCustomObject({
    group: 'tekton.dev',
    version: 'v1',
    namespace,
    plural: 'pipelineruns',
    body: {
      apiVersion: 'tekton.dev/v1',
      kind: 'PipelineRun',
      metadata: { generateName: 'webhook-tls-' },
      spec: {
        pipelineSpec: {
          tasks: [
            { name: 'build', taskSpec: { steps: [{ name: 'make', image: 'alpine', script: 'make' }] } },
          ],
        },
      },
    },
  })) as { metadata?: { annotations?: Record<string, string> } };
  return created.metadata?.annotations ?? {};
}

async function caBundleOf(name: string): Promise<string> {
  const config = await admissionApi.readMutatingWebhookConfiguration({ name });
  return Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
}

async function secretValue(namespace: string, name: string, key: string): Promise<string> {
  const secret = await core.readNamespacedSecret({ name, namespace });
  return Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
}

/** The fingerprint of the certificate a TLS server presents to a new connection. */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.on('error', reject);
  });
}

interface Scenario {
  namespace: string;
  secretName: string;
  configName: string;
  tls: SelfManagedTls[];
  server?: AdmissionServer;
  url: string;
}

/** A test namespace with Gantry's Secret, one self-managed replica, its server and a webhook pointing at it. */
async function setUp(prefix: string, options: Partial<SelfManagedTlsOptions> = {}): Promise<Scenario> {
  const namespace = await createTestNamespace(kc, prefix);
  const scenario: Scenario = {
    namespace,
    secretName: 'gantry-webhook-tls',
    configName: `gantry-test-${namespace}`,
    tls: [],
    url: '',
  };
  scenarios.push(scenario);
  const tls = await startReplica(scenario, options);
  scenario.server = createAdmissionServer({
    address: '127.0.0.1',
    port: 0,
    logger,
    review: markingReview,
    tls,
  });
  scenario.url = (await scenario.server.start()).url;
  await admissionApi.createMutatingWebhookConfiguration({
    body: webhookConfiguration(scenario.configName, `${scenario.url}${ADMISSION_PATH}`, namespace),
  });
  return scenario;
}

async function startReplica(scenario: Scenario, options: Partial<SelfManagedTlsOptions> = {}) {
  const tls = await startSelfManagedTls({
    core: apis.core,
    admission: apis.admission,
    namespace: scenario.namespace,
    secretName: scenario.secretName,
    webhookConfigurationName: scenario.configName,
    hosts: selfManagedHosts('gantry', scenario.namespace, ['127.0.0.1']),
    validityDays: 365,
    logger,
    retryAfterFailureMs: 250,
    ...options,
  });
  scenario.tls.push(tls);
  return tls;
}

const scenarios: Scenario[] = [];
afterAll(async () => {
  for (const scenario of scenarios) {
    // The webhook first: with failurePolicy Fail it must not outlive its server.
    await admissionApi.deleteMutatingWebhookConfiguration({ name: scenario.configName }).catch(() => {});
    await scenario.server?.stop();
    await Promise.all(scenario.tls.map((tls) => tls.stop()));
    await deleteNamespace(kc, scenario.namespace);
  }
});

describe.skipIf(inject('clusterKind') === 'existing')(
  'self-managed webhook TLS against the apiserver',
  () => {
    let scenario: Scenario;
    beforeAll(async () => {
      scenario = await setUp('webhook-tls');
    });

    it('creates the Secret and puts its CA into the webhook configuration', async () => {
      const secret = await core.readNamespacedSecret({
        name: scenario.secretName,
        namespace: scenario.namespace,
      });
      expect(secret.type).toBe('kubernetes.io/tls');
      expect(Object.keys(secret.data ?? {}).sort()).toEqual(Object.values(SECRET_KEYS).sort());
      const bundle = await secretValue(scenario.namespace, scenario.secretName, SECRET_KEYS.caBundle);
      // The configuration was made after the first check, so a later check (soon after) injects it.
      await until(
        'caBundle injected',
        async () => (await caBundleOf(scenario.configName)) === bundle,
        10_000,
      );
      const served = new X509Certificate(scenario.tls[0]?.current()?.cert ?? '');
      expect(served.verify(new X509Certificate(bundle).publicKey)).toBe(true);
      expect(await servedFingerprint(scenario.url)).toBe(served.fingerprint256);
    });

    it('is called by the apiserver, which trusts it and applies its patch', async () => {
      // The apiserver sees a new or changed webhook configuration a moment after it is written.
      await until(
        'a mutated PipelineRun',
        async () => (await createPipelineRun(scenario.namespace))[MARK],
        15_000,
        250,
      );
    });

    it('lets a second replica take the same certificate without touching the caBundle', async () => {
      const before = await admissionApi.readMutatingWebhookConfiguration({ name: scenario.configName });
      const secretBefore = await core.readNamespacedSecret({
        name: scenario.secretName,
        namespace: scenario.namespace,
      });
      const second = await startReplica(scenario);
      expect(second.current()).toEqual(scenario.tls[0]?.current());
      expect(await second.check()).toBe(true);
      const after = await admissionApi.readMutatingWebhookConfiguration({ name: scenario.configName });
      expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
      expect(after.webhooks?.[0]?.clientConfig.caBundle).toBe(before.webhooks?.[0]?.clientConfig.caBundle);
      const secretAfter = await core.readNamespacedSecret({
        name: scenario.secretName,
        namespace: scenario.namespace,
      });
      expect(secretAfter.metadata?.resourceVersion).toBe(secretBefore.metadata?.resourceVersion);
    });
  },
);

describe.skipIf(inject('clusterKind') === 'existing')(
  'forced rotation of the self-managed certificate',
  () => {
    it('keeps the apiserver served through serving-certificate and CA rotations', {
      timeout: 90_000,
    }, async () => {
      // 9 s certificates (each with a CA of its own) are due after 6 s. Checked twice a second.
      const scenario = await setUp('webhook-rotation', { validityDays: 9 / 86_400, checkIntervalMs: 500 });
      const tls = scenario.tls[0];
      if (!tls) throw new Error('no replica started');
      const servedCerts = new Set<string>([tls.current()?.cert ?? '']);
      tls.subscribe((pair) => servedCerts.add(pair.cert));
      await until(
        'a mutated PipelineRun',
        async () => (await createPipelineRun(scenario.namespace))[MARK],
        15_000,
        250,
      );
      // Set now: the apiserver trusted the certificate, so the caBundle holds its CA.
      const firstCa = splitPemCertificates(await caBundleOf(scenario.configName))[0];
      expect(firstCa).toBeDefined();

      // From now on every PipelineRun must be admitted: with failurePolicy Fail, a certificate the
      // apiserver does not trust would refuse it.
      let created = 0;
      let caRotated = false;
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline && !(caRotated && servedCerts.size >= 4)) {
        const annotations = await createPipelineRun(scenario.namespace);
        expect(annotations[MARK]).toBe('mutated');
        created++;
        const bundle = splitPemCertificates(await caBundleOf(scenario.configName));
        if (bundle[0] !== firstCa && !caRotated) {
          caRotated = true;
          expect(bundle).toContain(firstCa); // the overlap, while the first CA is still valid
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      expect(caRotated).toBe(true);
      expect(servedCerts.size).toBeGreaterThanOrEqual(4);
      expect(created).toBeGreaterThan(10);
      expect(await servedFingerprint(scenario.url)).toBe(
        new X509Certificate(tls.current()?.cert ?? '').fingerprint256,
      );
    });
  },
);
