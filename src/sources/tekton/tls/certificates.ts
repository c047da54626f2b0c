import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  children,
  explicit,
  implicitPrimitive,
  ipAddressBytes,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  unsignedInteger,
  utf8String,
  time as x509Time,
} from './der.ts';

/** A certificate and its private key, both PEM. The certificate may be followed by its chain. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * A new certificate is valid from a little before now, so an apiserver or replica whose clock runs
 * behind does not see it as not yet valid: an hour, or a tenth of a very short validity (tests).
 */
const MAX_BACKDATE_MS = 60 * 60 * 1000;
/** Rotation is due once this share of a certificate's validity has passed. */
const ROTATE_AFTER = 2 / 3;

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

export interface CertificateAuthorityOptions {
  commonName: string;
  /** Fractions are allowed (tests rotate within seconds). */
  validityDays: number;
  now: Date;
}

/** A self-signed CA (ECDSA P-256) that may sign end-entity certificates only (path length 0). */
export function createCertificateAuthority({
  commonName,
  validityDays,
  now,
}: CertificateAuthorityOptions): CertificateAndKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const keyId = keyIdentifier(spki);
  const extensions = [
    extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))),
    // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011x, one unused bit.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
    extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
  ];
  const cert = signCertificate({
    issuer: name(commonName),
    subject: commonName,
    spki,
    extensions,
    ...validityWindow(now, validityDays),
    signer: privateKey,
  });
  return { cert, key: privateKeyPem(privateKey) };
}

export interface ServingCertificateOptions {
  /** The CA that signs; its certificate must be the first PEM block of `ca.cert`. */
  ca: CertificateAndKey;
  /** DNS names and IP addresses the certificate is for; the first also becomes its common name. */
  hosts: readonly string[];
  validityDays: number;
  now: Date;
}

/** A TLS server certificate (ECDSA P-256) for `hosts`, signed by `ca`, never outliving it. */
export function issueServingCertificate({
  ca,
  hosts,
  validityDays,
  now,
}: ServingCertificateOptions): CertificateAndKey {
  const [commonName] = hosts;
  if (commonName === undefined) throw new Error('a serving certificate needs at least one host');
  const caCert = parseCertificate(ca.cert);
  if (!caCert) throw new Error('the CA certificate is not a PEM certificate');
  const caSpki = caCert.publicKey.export({ type: 'spki', format: 'der' });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const extensions = [
    extension(OID.basicConstraints, true, sequence()),
    // digitalSignature (bit 0): 0b1xxxxxxx, seven unused bits.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
    extension(OID.extKeyUsage, false, sequence(objectIdentifier(OID.serverAuth))),
    extension(OID.subjectAltName, false, sequence(...hosts.map(generalName))),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))),
    extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(caSpki)))),
  ];
  const window = validityWindow(now, validityDays);
  const cert = signCertificate({
    issuer: subjectName(caCert),
    subject: commonName,
    spki,
    extensions,
    notBefore: window.notBefore,
    notAfter: new Date(Math.min(window.notAfter.getTime(), caCert.validToDate.getTime())),
    signer: createPrivateKey(ca.key),
  });
  return { cert, key: privateKeyPem(privateKey) };
}

/**
 * Whether a certificate should be replaced now: unreadable, not yet or no longer valid, two thirds
 * of its validity passed (the rest leaves time for every replica to pick up the next one), or no
 * longer valid for every wanted host.
 */
export function shouldRotate(certPem: string, now: Date, wantedHosts: readonly string[] = []): boolean {
  const cert = parseCertificate(certPem);
  if (!cert) return true;
  const from = cert.validFromDate.getTime();
  const to = cert.validToDate.getTime();
  const at = now.getTime();
  if (at < from || at >= from + (to - from) * ROTATE_AFTER) return true;
  return !coversHosts(cert, wantedHosts);
}

/** Whether the certificate's subjectAltNames match every host (DNS names by RFC 6125 rules, IPs exactly). */
export function coversHosts(cert: X509Certificate, hosts: readonly string[]): boolean {
  return hosts.every((host) =>
    isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host, { subject: 'never' }) !== undefined,
  );
}

/** The PEM certificate blocks of a bundle or chain, in order. */
export function splitPemCertificates(text: string): string[] {
  return (
    text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? []
  );
}

/** The first certificate of a PEM text, or undefined if there is none or it does not parse. */
export function parseCertificate(pem: string): X509Certificate | undefined {
  const [first] = splitPemCertificates(pem);
  if (first === undefined) return undefined;
  try {
    return new X509Certificate(first);
  } catch {
    return undefined;
  }
}

/** Whether `cert` names `ca` as its issuer and carries a valid signature of `ca`'s key. */
export function isIssuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/**
 * What is wrong with a certificate and key to serve (a message), or undefined if they can be served:
 * both parse, the key is the certificate's, and the certificate has not expired. One valid from a
 * little later is served: a clock behind the issuer's is no reason to keep serving the old one.
 */
export function servingPairProblem(pair: CertificateAndKey, now: Date): string | undefined {
  const cert = parseCertificate(pair.cert);
  if (!cert) return 'the certificate is not a PEM certificate';
  let key: KeyObject;
  try {
    key = createPrivateKey(pair.key);
  } catch (err) {
    return `the private key does not parse: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (key.asymmetricKeyType !== cert.publicKey.asymmetricKeyType || !cert.checkPrivateKey(key))
    return 'the private key does not belong to the certificate';
  if (now >= cert.validToDate) return `the certificate expired at ${cert.validToDate.toISOString()}`;
  return undefined;
}

/** Whether a PEM private key is the key of the certificate (false if either does not parse). */
export function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    const key = createPrivateKey(keyPem);
    return key.asymmetricKeyType === cert.publicKey.asymmetricKeyType && cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

interface CertificateFields {
  /** The issuer's Name, encoded: the CA's subject exactly as in its certificate. */
  issuer: Buffer;
  subject: string;
  spki: Buffer;
  extensions: Buffer[];
  notBefore: Date;
  notAfter: Date;
  signer: KeyObject;
}

/** Builds the TBSCertificate (RFC 5280 §4.1), signs it with ECDSA-SHA256 and returns the PEM. */
function signCertificate(fields: CertificateFields): string {
  const algorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serialNumber()),
    algorithm,
    fields.issuer,
    sequence(x509Time(fields.notBefore), x509Time(fields.notAfter)),
    name(fields.subject),
    fields.spki,
    explicit(3, sequence(...fields.extensions)),
  );
  const signature = sign('sha256', tbs, { key: fields.signer, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** 127 random bits, positive and of fixed length (RFC 5280 allows up to 20 octets). */
function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes;
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(objectIdentifier(OID.commonName), utf8String(commonName))));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

function generalName(host: string): Buffer {
  // dNSName [2] IA5String, iPAddress [7] OCTET STRING
  return isIP(host)
    ? implicitPrimitive(7, ipAddressBytes(host))
    : implicitPrimitive(2, Buffer.from(host, 'ascii'));
}

/** A key identifier: SHA-256 of the public key info, cut to 160 bits (RFC 7093 §2 style). */
function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha256').update(spki).digest().subarray(0, 20);
}

function validityWindow(now: Date, validityDays: number): { notBefore: Date; notAfter: Date } {
  if (!(validityDays > 0)) throw new RangeError(`validity must be positive, got ${validityDays} days`);
  const validityMs = validityDays * DAY_MS;
  const backdate = Math.min(MAX_BACKDATE_MS, validityMs / 10);
  return { notBefore: new Date(now.getTime() - backdate), notAfter: new Date(now.getTime() + validityMs) };
}

/** The subject Name of a certificate as encoded: the sixth field of its TBSCertificate (fifth in v1, without [0] version). */
function subjectName(cert: X509Certificate): Buffer {
  const [tbs] = children(cert.raw);
  const fields = tbs === undefined ? [] : children(tbs);
  const subject = fields[fields[0]?.[0] === 0xa0 ? 5 : 4];
  if (subject === undefined) throw new Error('the CA certificate has no subject');
  return subject;
}

function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
