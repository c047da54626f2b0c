import type { X509Certificate } from 'node:crypto';
import {
  coversHosts,
  createCertificateAuthority,
  isIssuedBy,
  issueServingCertificate,
  keyMatches,
  parseCertificate,
  shouldRotate,
  splitPemCertificates,
} from './certificates.ts';

/** Everything a self-managed webhook certificate consists of, all PEM. No CA key: see renewWebhookTls. */
export interface WebhookTlsMaterial {
  /** The serving certificate and its key. */
  cert: string;
  key: string;
  /**
   * What the apiserver is told to trust: the CA of `cert` first, then earlier CAs until they expire,
   * since replicas that have not re-read the Secret yet still serve certificates they signed.
   */
  caBundle: string;
}

/** What a Secret holds: the material, and (written by Gantry before 0.2) a CA key to be dropped. */
export type StoredWebhookTls = Partial<WebhookTlsMaterial> & { caKey?: string };

export interface RenewalWanted {
  /** Hosts the serving certificate must cover. */
  hosts: readonly string[];
  /** Validity of a serving certificate, and of the CA made with it. */
  validityDays: number;
}

export const CA_COMMON_NAME_PREFIX = 'gantry-webhook-ca@';

export interface Renewal {
  material: WebhookTlsMaterial;
  /** Why the material changed; empty when `material` is what was stored and should be kept. */
  changes: string[];
}

/**
 * Decides what the stored material should be at `now`: kept as it is, or replaced by a new CA and a
 * serving certificate it signs, made together. The CA signs that one certificate and its private key
 * is dropped at once, so no long-lived CA key is ever stored beside the serving key (where any reader
 * of the Secret would get it); the caBundle keeps earlier CAs until they expire, which is when the
 * certificates they signed expire too. Pure but for key generation, so every replica that reads the
 * same Secret at about the same time decides the same way.
 */
export function renewWebhookTls(
  stored: StoredWebhookTls | undefined,
  wanted: RenewalWanted,
  now: Date,
): Renewal {
  const storedBundle = splitPemCertificates(stored?.caBundle ?? '');
  const stillValid = (pem: string) => {
    const cert = parseCertificate(pem);
    return cert !== undefined && now < cert.validToDate;
  };
  const servingProblem = servingUnusable(stored, storedBundle, wanted.hosts, now);

  if (servingProblem === undefined && stored?.cert !== undefined && stored.key !== undefined) {
    const caBundle = storedBundle.filter(stillValid).join('');
    const changes: string[] = [];
    if (caBundle !== storedBundle.join('')) changes.push('expired CA dropped from the bundle');
    if (stored.caKey !== undefined) changes.push('CA key removed from the Secret');
    return { material: { cert: stored.cert, key: stored.key, caBundle }, changes };
  }

  const ca = createCertificateAuthority({
    commonName: `${CA_COMMON_NAME_PREFIX}${Math.floor(now.getTime() / 1000)}`,
    validityDays: wanted.validityDays,
    now,
  });
  const issued = issueServingCertificate({ ca, hosts: wanted.hosts, validityDays: wanted.validityDays, now });
  const caBundle = [ca.cert, ...storedBundle.filter(stillValid)].join('');
  return {
    material: { cert: issued.cert, key: issued.key, caBundle },
    changes: [`new CA and serving certificate: ${servingProblem ?? 'none stored'}`],
  };
}

function servingUnusable(
  stored: StoredWebhookTls | undefined,
  bundle: readonly string[],
  hosts: readonly string[],
  now: Date,
): string | undefined {
  const cert = parseCertificate(stored?.cert ?? '');
  if (!cert) return 'none stored';
  if (!keyMatches(cert, stored?.key ?? '')) return 'the stored key does not match';
  const [newest] = bundle;
  const ca: X509Certificate | undefined = newest === undefined ? undefined : parseCertificate(newest);
  if (!ca || !isIssuedBy(cert, ca)) return 'not signed by the first CA of the bundle';
  const uncovered = hosts.filter((host) => !coversHosts(cert, [host]));
  if (uncovered.length > 0) return `not valid for ${uncovered.join(', ')}`;
  if (shouldRotate(cert.toString(), now))
    return `due for rotation (valid to ${cert.validToDate.toISOString()})`;
  return undefined;
}
