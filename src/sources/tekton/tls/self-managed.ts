import type {
  AdmissionregistrationV1Api,
  CoreV1Api,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1Secret,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isTransientKubeError, kubeMessage, kubeRetryAfterMs, kubeStatus } from '../../../kube/errors.ts';
import { type RetryPolicy, withRetry } from '../../../util/retry.ts';
import { BACKGROUND_RETRIES, CALL_RETRIES } from '../../../util/schedules.ts';
import { isIssuedBy, parseCertificate, splitPemCertificates } from './certificates.ts';
import {
  CA_COMMON_NAME_PREFIX,
  renewWebhookTls,
  type StoredWebhookTls,
  type WebhookTlsMaterial,
} from './renewal.ts';
import { createCertificateHolder, type RunningCertificateSource } from './source.ts';

export interface SelfManagedTlsOptions {
  core: CoreV1Api;
  admission: AdmissionregistrationV1Api;
  /** Gantry's own namespace, where the Secret lives. */
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  /** DNS names and IP addresses the serving certificate is for (see selfManagedHosts). */
  hosts: readonly string[];
  /** Validity of a serving certificate; fractions are allowed (tests). */
  validityDays: number;
  logger: Logger;
  /** Time between two checks of the Secret and the caBundle; default one hour. */
  checkIntervalMs?: number;
  /** First wait after a check that did not complete (doubling up to checkIntervalMs); default 15 s. */
  retryAfterFailureMs?: number;
  /**
   * Wait after writing a new CA into the caBundle before its certificate is served (the apiservers
   * take the changed configuration in first); default 30 s.
   */
  caPropagationMs?: number;
  now?: () => Date;
  retry?: Pick<RetryPolicy, 'attempts' | 'baseDelayMs' | 'maxDelayMs' | 'sleep'>;
}

export interface SelfManagedTls extends RunningCertificateSource {
  /** Runs one check now (after any in flight); true if the Secret and every caBundle are current. */
  check(): Promise<boolean>;
}

/** Keys of the Secret: the kubernetes.io/tls pair plus the CA bundle. */
export const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', caBundle: 'ca.crt' } as const;
/** Where Gantry before 0.2 kept a long-lived CA key; removed from the Secret at the next check. */
export const LEGACY_CA_KEY = 'ca.key';

const DEFAULT_CHECK_INTERVAL_MS = 60 * 60 * 1000;
const DEFAULT_CA_PROPAGATION_MS = 30_000;
/** Writes lost to other writers (409) before a check gives up until the next one. */
const MAX_WRITE_ROUNDS = 5;

/** The names the apiserver uses for a Service reference (`<service>.<namespace>.svc`), then any extra ones. */
export function selfManagedHosts(
  serviceName: string,
  namespace: string,
  extraHosts: readonly string[],
): string[] {
  return [...new Set([`${serviceName}.${namespace}.svc`, ...extraHosts])];
}

/**
 * Gantry's own webhook certificate, kept in a Secret so that every replica serves the same one and
 * a restart keeps it. Each check (at start, then every checkIntervalMs) reads the Secret, replaces
 * CA and certificate together when due (writes carry the resourceVersion read, so of two replicas one
 * wins and the other reads the winner's), then makes every webhook of the MutatingWebhookConfiguration
 * trust its CA bundle, and reports a new serving pair to the subscribers: at once, or when this
 * check wrote a new CA into the caBundle, at the next check, caPropagationMs later. Resolves after the
 * first check, which throws if the Secret cannot be read or written; later failures keep the current
 * pair and are retried sooner.
 */
export async function startSelfManagedTls(options: SelfManagedTlsOptions): Promise<SelfManagedTls> {
  const { core, admission, namespace, secretName, webhookConfigurationName: configName } = options;
  const now = options.now ?? (() => new Date());
  const checkIntervalMs = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  const retryAfterFailureMs =
    options.retryAfterFailureMs ?? BACKGROUND_RETRIES.webhookCertificate.baseDelayMs;
  const caPropagationMs = Math.min(checkIntervalMs, options.caPropagationMs ?? DEFAULT_CA_PROPAGATION_MS);
  /** A certificate of a new CA waits to be served: the next check comes after caPropagationMs. */
  let held = false;
  const wanted = { hosts: options.hosts, validityDays: options.validityDays };
  const log = options.logger.child({
    component: 'webhook-tls',
    secret: `${namespace}/${secretName}`,
    webhookConfiguration: configName,
  });
  const policy: RetryPolicy = {
    ...CALL_RETRIES.kube,
    ...options.retry,
    isRetryable: isTransientKubeError,
    requestedDelayMs: kubeRetryAfterMs,
  };
  const holder = createCertificateHolder();

  async function readSecret(): Promise<V1Secret | undefined> {
    try {
      return await withRetry(() => core.readNamespacedSecret({ name: secretName, namespace }), policy);
    } catch (err) {
      if (kubeStatus(err) === 404) return undefined;
      throw err;
    }
  }

  /** The material in the Secret, created or renewed first if due. */
  async function syncSecret(): Promise<WebhookTlsMaterial> {
    for (let round = 1; ; round++) {
      const existing = await readSecret();
      const renewal = renewWebhookTls(existing && materialOf(existing), wanted, now());
      if (renewal.changes.length === 0) return renewal.material;
      if (round > MAX_WRITE_ROUNDS)
        throw new Error(`the Secret changed under every one of ${round - 1} writes`);
      try {
        if (existing) {
          const body = secretBody(renewal.material, existing);
          await withRetry(() => core.replaceNamespacedSecret({ name: secretName, namespace, body }), policy);
          log.info({ changes: renewal.changes }, 'webhook certificate renewed');
        } else {
          const body = secretBody(renewal.material, { metadata: { name: secretName, namespace } });
          await withRetry(() => core.createNamespacedSecret({ namespace, body }), policy);
          log.info({ changes: renewal.changes }, 'webhook certificate created');
        }
        return renewal.material;
      } catch (err) {
        // Another replica created or renewed it first: take theirs rather than replace it again.
        if (kubeStatus(err) !== 409) throw err;
        log.debug('another writer changed the Secret first; reading it again');
      }
    }
  }

  /**
   * Puts `bundle` into every webhook's caBundle that differs. 'stale' when a webhook trusts a
   * Gantry CA newer than any in `bundle`: another replica renewed the Secret after it was read here,
   * and writing would take trust away from the certificate it serves.
   */
  async function injectCaBundle(
    bundle: string,
    allowOlder: boolean,
  ): Promise<'current' | 'updated' | 'missing' | 'stale'> {
    const encoded = Buffer.from(bundle).toString('base64');
    for (let round = 1; round <= MAX_WRITE_ROUNDS; round++) {
      let config: V1MutatingWebhookConfiguration;
      try {
        config = await withRetry(
          () => admission.readMutatingWebhookConfiguration({ name: configName }),
          policy,
        );
      } catch (err) {
        if (kubeStatus(err) === 404) return 'missing';
        throw err;
      }
      const webhooks = config.webhooks ?? [];
      if (!allowOlder && webhooks.some((w) => trustsNewerGantryCa(w.clientConfig?.caBundle, bundle)))
        return 'stale';
      const outdated = webhooks.filter((w) => w.clientConfig?.caBundle !== encoded).map((w) => w.name);
      if (outdated.length === 0) return 'current';
      const body: V1MutatingWebhookConfiguration = {
        ...config,
        webhooks: webhooks.map(
          (w): V1MutatingWebhook =>
            w.clientConfig?.caBundle === encoded
              ? w
              : { ...w, clientConfig: { ...w.clientConfig, caBundle: encoded } },
        ),
      };
      try {
        await withRetry(
          () => admission.replaceMutatingWebhookConfiguration({ name: configName, body }),
          policy,
        );
        log.info({ webhooks: outdated }, 'caBundle updated');
        return 'updated';
      } catch (err) {
        if (kubeStatus(err) !== 409) throw err;
      }
    }
    throw new Error(`the MutatingWebhookConfiguration changed under every one of ${MAX_WRITE_ROUNDS} writes`);
  }

  async function runCheck(): Promise<boolean> {
    let material = await syncSecret();
    let injected = await injectCaBundle(material.caBundle, false);
    if (injected === 'stale') {
      log.debug('a webhook trusts a newer CA than the Secret read; reading the Secret again');
      material = await syncSecret();
      injected = await injectCaBundle(material.caBundle, true);
    }
    if (injected === 'missing')
      log.warn('the MutatingWebhookConfiguration does not exist (yet); its caBundle is set at a later check');
    const next = { cert: material.cert, key: material.key };
    const served = holder.current();
    held =
      injected === 'updated' &&
      served !== undefined &&
      stillTrusted(served.cert, material.caBundle, now(), caPropagationMs);
    if (held) {
      // The apiserver sees a new caBundle a moment after it is written; until then a certificate of
      // a new CA would be refused. The current one stays trusted, so it is served until the next check.
      log.info('the webhooks trust a new CA bundle; its certificate is served from the next check on');
    } else if (holder.set(next)) {
      log.info('serving a new webhook certificate');
    }
    return injected === 'current' || injected === 'updated';
  }

  let queue: Promise<unknown> = Promise.resolve();
  /** Checks run one at a time, whether from the timer or from check(). */
  function enqueue(): Promise<boolean> {
    const run = queue.then(runCheck);
    queue = run.catch(() => {});
    return run;
  }

  // Consecutive checks that did not complete; each doubles the wait, from retryAfterFailureMs.
  let failures = (await enqueue()) ? 0 : 1;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  function schedule(): void {
    if (stopped) return;
    const afterSuccess = held ? caPropagationMs : checkIntervalMs;
    const delay =
      failures === 0 ? afterSuccess : Math.min(checkIntervalMs, retryAfterFailureMs * 2 ** (failures - 1));
    timer = setTimeout(async () => {
      try {
        failures = (await enqueue()) ? 0 : failures + 1;
      } catch (err) {
        failures++;
        log.warn(
          { err: kubeMessage(err) },
          'checking the webhook certificate failed; keeping the current one',
        );
      }
      schedule();
    }, delay);
    timer.unref();
  }
  schedule();

  return {
    current: holder.current,
    subscribe: holder.subscribe,
    check: enqueue,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await queue;
    },
  };
}

function materialOf(secret: V1Secret): StoredWebhookTls {
  const data = secret.data ?? {};
  const decode = (key: string): string | undefined => {
    const value = data[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  return {
    cert: decode(SECRET_KEYS.cert),
    key: decode(SECRET_KEYS.key),
    caBundle: decode(SECRET_KEYS.caBundle),
    caKey: decode(LEGACY_CA_KEY),
  };
}

/** The Secret holding `material`, on top of `base` (the Secret read, so its resourceVersion guards the write). */
function secretBody(material: WebhookTlsMaterial, base: V1Secret): V1Secret {
  const encode = (text: string) => Buffer.from(text).toString('base64');
  const { [LEGACY_CA_KEY]: _dropped, ...kept } = base.data ?? {};
  return {
    ...base,
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...base.metadata,
      labels: { ...base.metadata?.labels, 'app.kubernetes.io/managed-by': 'gantry' },
    },
    type: 'kubernetes.io/tls',
    data: {
      ...kept,
      [SECRET_KEYS.cert]: encode(material.cert),
      [SECRET_KEYS.key]: encode(material.key),
      [SECRET_KEYS.caBundle]: encode(material.caBundle),
    },
  };
}

/** Whether `certPem` is signed by a CA of `bundle` and stays valid for `forMs` more. */
function stillTrusted(certPem: string, bundle: string, now: Date, forMs: number): boolean {
  const cert = parseCertificate(certPem);
  if (!cert || cert.validToDate.getTime() <= now.getTime() + forMs) return false;
  return splitPemCertificates(bundle).some((pem) => {
    const ca = parseCertificate(pem);
    return ca !== undefined && isIssuedBy(cert, ca);
  });
}

/** Whether a webhook's caBundle (base64 PEM) holds a Gantry CA issued after every CA of `bundle`. */
function trustsNewerGantryCa(encoded: string | undefined, bundle: string): boolean {
  if (!encoded) return false;
  const issuedAt = (pem: string) =>
    parseCertificate(pem)?.validFromDate.getTime() ?? Number.NEGATIVE_INFINITY;
  const newestOurs = Math.max(...splitPemCertificates(bundle).map(issuedAt));
  return splitPemCertificates(Buffer.from(encoded, 'base64').toString('utf8')).some((pem) => {
    const cert = parseCertificate(pem);
    return (
      cert?.ca === true &&
      cert.subject.includes(`CN=${CA_COMMON_NAME_PREFIX}`) &&
      cert.validFromDate.getTime() > newestOurs
    );
  });
}
