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

/** Everything a self-managed webhook certificate consists of, all PEM. */
export interface WebhookTlsMaterial {
  /** The serving certificate and its key. */
  cert: string;
  key: string;
  /** The private key of the CA that signs `cert`, the first certificate of `caBundle`. */
  caKey: string;
  /**
   * What the apiserver is told to trust: the current CA first, then earlier CAs until they expire,
   * since replicas that have not re-read the Secret yet still serve certificates they signed.
   */
  caBundle: string;
}

export interface RenewalWanted {
  /** Hosts the serving certificate must cover. */
  hosts: readonly string[];
  /** Validity of a serving certificate; a CA lives CA_VALIDITY_FACTOR times as long. */
  validityDays: number;
}

/**
 * A CA outlives many serving certificates, so rotating those leaves the caBundle unchanged; when
 * the CA does rotate (after two thirds of its life), its predecessor stays trusted for the rest of
 * it, which is longer than any serving certificate it signed.
 */
export const CA_VALIDITY_FACTOR = 3;
export const CA_COMMON_NAME_PREFIX = 'gantry-webhook-ca@';

export interface Renewal {
  material: WebhookTlsMaterial;
  /** Why the material changed; empty when `material` is what was stored and should be kept. */
  changes: string[];
}

/**
 * Decides what the stored material should be at `now`: kept as it is, or with a new serving
 * certificate, or with a new CA as well. Pure but for key generation, so every replica that reads
 * the same Secret at about the same time decides the same way.
 */
export function renewWebhookTls(
  stored: Partial<WebhookTlsMaterial> | undefined,
  wanted: RenewalWanted,
  now: Date,
): Renewal {
  const changes: string[] = [];
  const storedBundle = splitPemCertificates(stored?.caBundle ?? '');
  const storedCaPem = storedBundle[0];
  const storedCa = storedCaPem === undefined ? undefined : parseCertificate(storedCaPem);

  let caCertPem: string;
  let caKey: string;
  let ca: X509Certificate;
  const caProblem = caUnusable(storedCa, stored?.caKey, now);
  if (storedCa && storedCaPem !== undefined && stored?.caKey !== undefined && caProblem === undefined) {
    caCertPem = storedCaPem;
    caKey = stored.caKey;
    ca = storedCa;
  } else {
    const fresh = createCertificateAuthority({
      commonName: `${CA_COMMON_NAME_PREFIX}${Math.floor(now.getTime() / 1000)}`,
      validityDays: wanted.validityDays * CA_VALIDITY_FACTOR,
      now,
    });
    caCertPem = fresh.cert;
    caKey = fresh.key;
    ca = parseCertificate(fresh.cert) as X509Certificate;
    changes.push(`new CA: ${caProblem ?? 'none stored'}`);
  }

  let cert = stored?.cert ?? '';
  let key = stored?.key ?? '';
  const servingProblem = servingUnusable(cert, key, ca, wanted.hosts, now);
  if (servingProblem !== undefined) {
    const issued = issueServingCertificate({
      ca: { cert: caCertPem, key: caKey },
      hosts: wanted.hosts,
      validityDays: wanted.validityDays,
      now,
    });
    cert = issued.cert;
    key = issued.key;
    changes.push(`new serving certificate: ${servingProblem}`);
  }

  const earlier = storedBundle.filter((pem) => {
    const other = parseCertificate(pem);
    return other !== undefined && other.fingerprint256 !== ca.fingerprint256 && now < other.validToDate;
  });
  const caBundle = [caCertPem, ...earlier].join('');
  if (caBundle !== storedBundle.join('') && changes.length === 0)
    changes.push('expired CA dropped from the bundle');
  return { material: { cert, key, caKey, caBundle }, changes };
}

function caUnusable(
  ca: X509Certificate | undefined,
  caKey: string | undefined,
  now: Date,
): string | undefined {
  if (!ca) return 'no CA stored';
  if (!ca.ca) return 'the stored CA certificate is not a CA';
  if (caKey === undefined || !keyMatches(ca, caKey)) return 'the stored CA key does not match';
  if (shouldRotate(ca.toString(), now))
    return `the CA is due for rotation (valid to ${ca.validToDate.toISOString()})`;
  return undefined;
}

function servingUnusable(
  certPem: string,
  keyPem: string,
  ca: X509Certificate,
  hosts: readonly string[],
  now: Date,
): string | undefined {
  const cert = parseCertificate(certPem);
  if (!cert) return 'none stored';
  if (!keyMatches(cert, keyPem)) return 'the stored key does not match';
  if (!isIssuedBy(cert, ca)) return 'not signed by the current CA';
  const uncovered = hosts.filter((host) => !coversHosts(cert, [host]));
  if (uncovered.length > 0) return `not valid for ${uncovered.join(', ')}`;
  if (shouldRotate(certPem, now)) return `due for rotation (valid to ${cert.validToDate.toISOString()})`;
  return undefined;
}
