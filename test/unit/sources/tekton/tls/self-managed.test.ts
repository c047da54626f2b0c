import { X509Certificate } from 'node:crypto';
import type {
  AdmissionregistrationV1Api,
  CoreV1Api,
  V1MutatingWebhookConfiguration,
  V1Secret,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { splitPemCertificates } from '../../../../../src/sources/tekton/tls/certificates.ts';
import {
  LEGACY_CA_KEY,
  SECRET_KEYS,
  type SelfManagedTls,
  type SelfManagedTlsOptions,
  selfManagedHosts,
  startSelfManagedTls,
} from '../../../../../src/sources/tekton/tls/self-managed.ts';

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2026-03-01T12:00:00Z');
const NAMESPACE = 'gantry-system';
const SECRET = 'gantry-webhook-tls';
const CONFIG = 'gantry';
const VALIDITY_DAYS = 30;

function apiError(code: number): Error {
  return Object.assign(new Error(`HTTP ${code}`), {
    code,
    body: JSON.stringify({ message: `status ${code}` }),
  });
}

/** An apiserver of one Secret and one MutatingWebhookConfiguration, with optimistic concurrency. */
class FakeCluster {
  secret: V1Secret | undefined;
  config: V1MutatingWebhookConfiguration | undefined;
  version = 0;
  writes = { secret: 0, config: 0 };
  /** Errors to throw, in order, from the next calls of a method. */
  failures = new Map<string, number[]>();

  private fail(method: string): void {
    const code = this.failures.get(method)?.shift();
    if (code !== undefined) throw apiError(code);
  }
  private stamp<T extends { metadata?: { resourceVersion?: string } }>(object: T): T {
    const copy = structuredClone(object);
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.version) };
    return copy;
  }

  core(): CoreV1Api {
    const api = {
      readNamespacedSecret: async ({ name }: { name: string }) => {
        this.fail('readNamespacedSecret');
        if (!this.secret || name !== SECRET) throw apiError(404);
        return structuredClone(this.secret);
      },
      createNamespacedSecret: async ({ body }: { body: V1Secret }) => {
        this.fail('createNamespacedSecret');
        if (this.secret) throw apiError(409);
        this.writes.secret++;
        this.secret = this.stamp(body);
        return structuredClone(this.secret);
      },
      replaceNamespacedSecret: async ({ body }: { body: V1Secret }) => {
        this.fail('replaceNamespacedSecret');
        if (!this.secret) throw apiError(404);
        if (body.metadata?.resourceVersion !== this.secret.metadata?.resourceVersion) throw apiError(409);
        this.writes.secret++;
        this.secret = this.stamp(body);
        return structuredClone(this.secret);
      },
    };
    return api as unknown as CoreV1Api;
  }

  admission(): AdmissionregistrationV1Api {
    const api = {
      readMutatingWebhookConfiguration: async () => {
        this.fail('readMutatingWebhookConfiguration');
        if (!this.config) throw apiError(404);
        return structuredClone(this.config);
      },
      replaceMutatingWebhookConfiguration: async ({ body }: { body: V1MutatingWebhookConfiguration }) => {
        this.fail('replaceMutatingWebhookConfiguration');
        if (!this.config) throw apiError(404);
        if (body.metadata?.resourceVersion !== this.config.metadata?.resourceVersion) throw apiError(409);
        this.writes.config++;
        this.config = this.stamp(body);
        return structuredClone(this.config);
      },
    };
    return api as unknown as AdmissionregistrationV1Api;
  }

  createConfig(webhookNames = ['pipelineruns.gantry.dev']): void {
    this.config = this.stamp<V1MutatingWebhookConfiguration>({
      metadata: { name: CONFIG },
      webhooks: webhookNames.map((name) => ({
        name,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        clientConfig: { url: 'https://127.0.0.1:8443/admit/pipelineruns' },
      })),
    });
  }

  secretValue(key: string): string {
    return Buffer.from(this.secret?.data?.[key] ?? '', 'base64').toString('utf8');
  }

  caBundles(): string[] {
    return (this.config?.webhooks ?? []).map((w) =>
      Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
    );
  }
}

const started: SelfManagedTls[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((tls) => tls.stop()));
});

const hosts = selfManagedHosts('gantry', NAMESPACE, ['127.0.0.1']);

async function start(
  cluster: FakeCluster,
  clock: { now: number },
  extra: Partial<SelfManagedTlsOptions> = {},
): Promise<SelfManagedTls> {
  const tls = await startSelfManagedTls({
    core: cluster.core(),
    admission: cluster.admission(),
    namespace: NAMESPACE,
    secretName: SECRET,
    webhookConfigurationName: CONFIG,
    hosts,
    validityDays: VALIDITY_DAYS,
    logger: pino({ level: 'silent' }),
    checkIntervalMs: 3_600_000,
    now: () => new Date(clock.now),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} },
    ...extra,
  });
  started.push(tls);
  return tls;
}

describe('self-managed webhook certificate', () => {
  it('names the Service as the apiserver calls it, then the extra hosts', () => {
    expect(selfManagedHosts('gantry', 'ns', ['127.0.0.1', 'gantry.ns.svc'])).toEqual([
      'gantry.ns.svc',
      '127.0.0.1',
    ]);
  });

  it('creates the Secret, puts the CA into every webhook and serves the certificate', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig(['a.gantry.dev', 'b.gantry.dev']);
    const tls = await start(cluster, { now: T0 });

    expect(cluster.secret?.type).toBe('kubernetes.io/tls');
    expect(Object.keys(cluster.secret?.data ?? {}).sort()).toEqual(Object.values(SECRET_KEYS).sort());
    const bundle = cluster.secretValue(SECRET_KEYS.caBundle);
    expect(cluster.caBundles()).toEqual([bundle, bundle]);
    expect(tls.current()).toEqual({
      cert: cluster.secretValue(SECRET_KEYS.cert),
      key: cluster.secretValue(SECRET_KEYS.key),
    });
    const cert = new X509Certificate(tls.current()?.cert ?? '');
    expect(cert.verify(new X509Certificate(bundle).publicKey)).toBe(true);
    expect(cert.checkHost(`gantry.${NAMESPACE}.svc`)).toBeDefined();
    expect(cert.checkIP('127.0.0.1')).toBeDefined();
  });

  it('lets a second replica take the Secret as it is, without writing anything', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const first = await start(cluster, { now: T0 });
    const writes = { ...cluster.writes };
    const second = await start(cluster, { now: T0 + 60_000 });
    expect(second.current()).toEqual(first.current());
    expect(cluster.writes).toEqual(writes);
  });

  it('converges two replicas that create the Secret at once on one certificate', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: T0 };
    const [a, b] = await Promise.all([start(cluster, clock), start(cluster, clock)]);
    expect(a.current()).toEqual(b.current());
    expect(a.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
    expect(cluster.writes.secret).toBe(1);
    expect(cluster.caBundles()).toEqual([cluster.secretValue(SECRET_KEYS.caBundle)]);
  });

  it('converges two replicas that renew at once on one CA and certificate, trusting the old CA too', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: T0 };
    const a = await start(cluster, clock);
    const b = await start(cluster, clock);
    const before = a.current();
    const [oldCa] = splitPemCertificates(cluster.caBundles()[0] ?? '');
    const configWrites = cluster.writes.config;

    clock.now = T0 + 21 * DAY; // past two thirds of 30 days
    await Promise.all([a.check(), b.check()]);
    const bundle = splitPemCertificates(cluster.caBundles()[0] ?? '');
    expect(bundle).toHaveLength(2);
    expect(bundle[1]).toBe(oldCa);
    expect(cluster.caBundles()[0]).toBe(cluster.secretValue(SECRET_KEYS.caBundle));
    expect(cluster.writes.config).toBe(configWrites + 1);
    // By the next check each serves the new certificate, which the new CA signed.
    await Promise.all([a.check(), b.check()]);
    expect(a.current()).toEqual(b.current());
    expect(a.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
    expect(a.current()).not.toEqual(before);
    const newCa = new X509Certificate(bundle[0] ?? '');
    expect(new X509Certificate(a.current()?.cert ?? '').verify(newCa.publicKey)).toBe(true);
  });

  it('serves the certificate of a new CA only from the check after the caBundle took it in', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: T0 };
    const replica = await start(cluster, clock);
    const before = replica.current();
    clock.now = T0 + 21 * DAY;
    expect(await replica.check()).toBe(true);
    expect(splitPemCertificates(cluster.caBundles()[0] ?? '')).toHaveLength(2);
    expect(replica.current()).toBe(before);
    expect(await replica.check()).toBe(true);
    expect(replica.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
    expect(replica.current()).not.toBe(before);
  });

  it('checks again caPropagationMs after writing a new CA, not a whole interval later', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: Date.now() };
    const tls = await start(cluster, clock, { checkIntervalMs: 1_000, caPropagationMs: 20 });
    const before = tls.current();
    clock.now += 21 * DAY;
    const deadline = Date.now() + 5_000;
    let writtenAt: number | undefined;
    while (tls.current() === before && Date.now() < deadline) {
      if (writtenAt === undefined && cluster.writes.config > 1) writtenAt = Date.now();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(tls.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
    // The next regular check would have come a second after the write.
    expect(Date.now() - (writtenAt ?? 0)).toBeLessThan(700);
  });

  it('drops the CA key an earlier version kept in the Secret, and keeps serving the same certificate', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: T0 };
    const first = await start(cluster, clock);
    const served = first.current();
    if (!cluster.secret?.data) throw new Error('no Secret');
    cluster.secret.data[LEGACY_CA_KEY] = Buffer.from('-----BEGIN PRIVATE KEY-----\n').toString('base64');
    clock.now = T0 + DAY;
    expect(await first.check()).toBe(true);
    expect(Object.keys(cluster.secret?.data ?? {}).sort()).toEqual(Object.values(SECRET_KEYS).sort());
    expect(first.current()).toBe(served);
  });

  it('does not take trust away from a CA another replica wrote after this one read the Secret', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    // Two thirds of the certificate's (and its CA's) life, counted from its notBefore (an hour before it was made).
    const hour = 60 * 60 * 1000;
    const caRotationDue = T0 - hour + (VALIDITY_DAYS * DAY + hour) * (2 / 3);
    const clockA = { now: T0 };
    const clockB = { now: T0 };
    await start(cluster, clockA);
    const b = await start(cluster, clockB);
    // A reads the Secret; before its answer arrives, B (its clock a minute ahead) rotates the CA.
    clockA.now = caRotationDue - 30_000;
    clockB.now = caRotationDue + 30_000;
    const core = cluster.core();
    const readForA = core.readNamespacedSecret.bind(core);
    let interleaved = false;
    const slowCore = {
      ...core,
      readNamespacedSecret: async (args: { name: string; namespace: string }) => {
        const answer = await readForA(args);
        if (!interleaved) {
          interleaved = true;
          await b.check();
        }
        return answer;
      },
    } as unknown as CoreV1Api;
    const lateA = await start(cluster, clockA, { core: slowCore });
    expect(interleaved).toBe(true);

    const bundle = splitPemCertificates(cluster.caBundles()[0] ?? '');
    expect(bundle).toHaveLength(2);
    expect(cluster.caBundles()[0]).toBe(cluster.secretValue(SECRET_KEYS.caBundle));
    // A serves B's new certificate at once: it did not write the caBundle, so it need not wait.
    expect(lateA.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
  });

  it('serves without a webhook configuration and sets its caBundle once it exists', async () => {
    const cluster = new FakeCluster();
    const tls = await start(cluster, { now: T0 });
    expect(tls.current()).toBeDefined();
    expect(await tls.check()).toBe(false);
    cluster.createConfig();
    expect(await tls.check()).toBe(true);
    expect(cluster.caBundles()).toEqual([cluster.secretValue(SECRET_KEYS.caBundle)]);
  });

  it('checks again soon after a check that could not set the caBundle', async () => {
    const cluster = new FakeCluster();
    await start(cluster, { now: Date.now() }, { retryAfterFailureMs: 20 });
    cluster.createConfig();
    const deadline = Date.now() + 5_000;
    while (cluster.caBundles()[0] === '' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(cluster.caBundles()).toEqual([cluster.secretValue(SECRET_KEYS.caBundle)]);
  });

  it('retries transient errors and re-reads after a conflicting write', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    cluster.failures.set('readNamespacedSecret', [500, 429]);
    cluster.failures.set('createNamespacedSecret', [503]);
    cluster.failures.set('replaceMutatingWebhookConfiguration', [409, 502]);
    const tls = await start(cluster, { now: T0 });
    expect(tls.current()?.cert).toBe(cluster.secretValue(SECRET_KEYS.cert));
    expect(cluster.caBundles()).toEqual([cluster.secretValue(SECRET_KEYS.caBundle)]);
  });

  it('fails the first check when the Secret cannot be had, and gives up on errors not worth a retry', async () => {
    const cluster = new FakeCluster();
    cluster.failures.set('readNamespacedSecret', [500, 500, 500]);
    await expect(start(cluster, { now: T0 })).rejects.toThrow(/HTTP 500/);
    cluster.failures.set('createNamespacedSecret', [403]);
    await expect(start(cluster, { now: T0 })).rejects.toThrow(/HTTP 403/);
    expect(cluster.secret).toBeUndefined();
  });

  it('keeps serving the current certificate when a later check fails', async () => {
    const cluster = new FakeCluster();
    cluster.createConfig();
    const clock = { now: T0 };
    const tls = await start(cluster, clock);
    const before = tls.current();
    clock.now = T0 + 21 * DAY;
    cluster.failures.set('replaceNamespacedSecret', [403]);
    await expect(tls.check()).rejects.toThrow(/HTTP 403/);
    expect(tls.current()).toBe(before);
    expect(await tls.check()).toBe(true);
    // The new CA went into the caBundle: its certificate is served from the next check.
    expect(tls.current()).toBe(before);
    expect(await tls.check()).toBe(true);
    expect(tls.current()).not.toBe(before);
  });
});
