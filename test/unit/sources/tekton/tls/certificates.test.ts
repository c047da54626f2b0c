import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  coversHosts,
  createCertificateAuthority,
  issueServingCertificate,
  parseCertificate,
  servingPairProblem,
  shouldRotate,
  splitPemCertificates,
} from '../../../../../src/sources/tekton/tls/certificates.ts';
import { ipAddressBytes } from '../../../../../src/sources/tekton/tls/der.ts';
import { renewWebhookTls } from '../../../../../src/sources/tekton/tls/renewal.ts';

const DAY = 24 * 60 * 60 * 1000;
const now = new Date('2026-03-01T12:00:00Z');
const at = (days: number) => new Date(now.getTime() + days * DAY);
const hosts = ['gantry.gantry-system.svc', '127.0.0.1', '::1'];

function makeCa(validityDays = 30, when = now) {
  return createCertificateAuthority({ commonName: 'test-ca', validityDays, now: when });
}

describe('certificate authority and serving certificate', () => {
  const ca = makeCa();
  const serving = issueServingCertificate({ ca, hosts, validityDays: 10, now });
  const caCert = new X509Certificate(ca.cert);
  const cert = new X509Certificate(serving.cert);

  it('makes a self-signed ECDSA P-256 CA that may sign only end-entity certificates', () => {
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toBe('CN=test-ca');
    expect(caCert.issuer).toBe('CN=test-ca');
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(caCert.checkPrivateKey(createPrivateKey(ca.key))).toBe(true);
  });

  it('signs a serving certificate whose chain verifies and whose SANs are the hosts', () => {
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(false);
    expect(cert.checkPrivateKey(createPrivateKey(serving.key))).toBe(true);
    expect(cert.subject).toBe('CN=gantry.gantry-system.svc');
    expect(cert.subjectAltName).toBe(
      'DNS:gantry.gantry-system.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
  });

  it('is valid for exactly its hosts, by name and by address', () => {
    expect(cert.checkHost('gantry.gantry-system.svc', { subject: 'never' })).toBe('gantry.gantry-system.svc');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('0:0:0:0:0:0:0:1')).toBeDefined();
    expect(cert.checkHost('gantry.other.svc')).toBeUndefined();
    expect(cert.checkIP('127.0.0.2')).toBeUndefined();
    expect(coversHosts(cert, hosts)).toBe(true);
    expect(coversHosts(cert, [...hosts, '10.0.0.1'])).toBe(false);
  });

  it('is valid for the days asked, from a little before now, and never outlives its CA', () => {
    expect(cert.validToDate.getTime()).toBe(at(10).getTime());
    expect(cert.validFromDate.getTime()).toBeLessThan(now.getTime());
    expect(cert.validFromDate.getTime()).toBeGreaterThanOrEqual(now.getTime() - 60 * 60 * 1000);
    const long = new X509Certificate(issueServingCertificate({ ca, hosts, validityDays: 100, now }).cert);
    expect(long.validToDate).toEqual(caCert.validToDate);
  });

  it('backdates a very short validity by a tenth of it only', () => {
    const short = new X509Certificate(makeCa(60 / 86_400).cert); // one minute
    expect(now.getTime() - short.validFromDate.getTime()).toBe(6_000);
    expect(short.validToDate.getTime() - now.getTime()).toBe(60_000);
  });

  it('uses GeneralizedTime past 2049', () => {
    const late = new X509Certificate(makeCa(1, new Date('2051-06-01T00:00:00Z')).cert);
    expect(late.validToDate.toISOString()).toBe('2051-06-02T00:00:00.000Z');
  });

  it('refuses to issue without a host', () => {
    expect(() => issueServingCertificate({ ca, hosts: [], validityDays: 1, now })).toThrow(
      /at least one host/,
    );
  });
});

describe('shouldRotate', () => {
  const ca = makeCa(90);
  const serving = issueServingCertificate({ ca, hosts, validityDays: 30, now }).cert;

  it('keeps a certificate until two thirds of its validity have passed', () => {
    expect(shouldRotate(serving, now, hosts)).toBe(false);
    expect(shouldRotate(serving, at(19.5), hosts)).toBe(false);
    expect(shouldRotate(serving, at(20.5), hosts)).toBe(true);
    expect(shouldRotate(serving, at(31), hosts)).toBe(true);
  });

  it('rotates one not valid yet (a clock far behind the issuer) or that no longer covers the hosts', () => {
    expect(shouldRotate(serving, at(-1), hosts)).toBe(true);
    expect(shouldRotate(serving, now, ['gantry.other.svc'])).toBe(true);
    expect(shouldRotate(serving, now, ['10.1.2.3'])).toBe(true);
  });

  it('rotates what does not parse', () => {
    expect(shouldRotate('', now)).toBe(true);
    expect(shouldRotate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', now)).toBe(true);
  });
});

describe('parse helpers', () => {
  const a = makeCa().cert;
  const b = makeCa().cert;

  it('splits a bundle into its certificates and parses the first', () => {
    expect(splitPemCertificates(`junk\n${a}\n${b}trailer`)).toEqual([a, b]);
    expect(parseCertificate(`${a}${b}`)?.fingerprint256).toBe(new X509Certificate(a).fingerprint256);
    expect(parseCertificate('no certificate')).toBeUndefined();
  });

  it('tells what is wrong with a pair before it is served', () => {
    const ca = makeCa();
    const pair = issueServingCertificate({ ca, hosts, validityDays: 1, now });
    const other = issueServingCertificate({ ca, hosts, validityDays: 1, now });
    expect(servingPairProblem(pair, now)).toBeUndefined();
    expect(servingPairProblem({ cert: pair.cert, key: other.key }, now)).toMatch(/does not belong/);
    expect(servingPairProblem({ cert: 'x', key: pair.key }, now)).toMatch(/not a PEM certificate/);
    expect(servingPairProblem({ cert: pair.cert, key: 'x' }, now)).toMatch(/does not parse/);
    expect(servingPairProblem(pair, at(2))).toMatch(/expired/);
  });

  it('encodes IPv4 and IPv6 addresses as their bytes', () => {
    expect([...ipAddressBytes('10.0.0.1')]).toEqual([10, 0, 0, 1]);
    expect(ipAddressBytes('2001:db8::1').toString('hex')).toBe('20010db8000000000000000000000001');
    expect(ipAddressBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(ipAddressBytes('::ffff:1.2.3.4').toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(ipAddressBytes('fe80::1:2%eth0').toString('hex')).toBe('fe800000000000000000000000010002');
    expect(() => ipAddressBytes('example.com')).toThrow();
  });
});

describe('renewWebhookTls', () => {
  const wanted = { hosts, validityDays: 30 };

  it('makes a CA and a serving certificate together, and keeps no CA key', () => {
    const { material, changes } = renewWebhookTls(undefined, wanted, now);
    expect(changes).toEqual(['new CA and serving certificate: none stored']);
    expect(Object.keys(material).sort()).toEqual(['caBundle', 'cert', 'key']);
    const [caPem, ...rest] = splitPemCertificates(material.caBundle);
    expect(rest).toEqual([]);
    const ca = new X509Certificate(caPem ?? '');
    expect(ca.subject).toBe(`CN=gantry-webhook-ca@${now.getTime() / 1000}`);
    expect(ca.validToDate).toEqual(at(30));
    expect(new X509Certificate(material.cert).verify(ca.publicKey)).toBe(true);
    expect(servingPairProblem(material, now)).toBeUndefined();
  });

  it('keeps stored material that is current', () => {
    const first = renewWebhookTls(undefined, wanted, now).material;
    const again = renewWebhookTls(first, wanted, at(15));
    expect(again.changes).toEqual([]);
    expect(again.material).toEqual(first);
  });

  it('replaces CA and certificate after two thirds, trusting the old CA until it expires', () => {
    const first = renewWebhookTls(undefined, wanted, now).material;
    const [oldCa] = splitPemCertificates(first.caBundle);
    const rotated = renewWebhookTls(first, wanted, at(21));
    expect(rotated.changes).toEqual([
      expect.stringMatching(/^new CA and serving certificate: due for rotation/),
    ]);
    const bundle = splitPemCertificates(rotated.material.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]).toBe(oldCa);
    const newCa = new X509Certificate(bundle[0] ?? '');
    expect(new X509Certificate(rotated.material.cert).verify(newCa.publicKey)).toBe(true);
    expect(new X509Certificate(oldCa ?? '').validToDate).toEqual(at(30));

    // Until the old CA expires (with the certificate it signed) the bundle keeps it...
    expect(renewWebhookTls(rotated.material, wanted, at(29)).changes).toEqual([]);
    // ...then it is dropped, and nothing else changes.
    const later = renewWebhookTls(rotated.material, wanted, at(31));
    expect(later.changes).toEqual(['expired CA dropped from the bundle']);
    expect(later.material).toEqual({ ...rotated.material, caBundle: bundle[0] });
  });

  it('replaces CA and certificate when the hosts change or the stored pair does not hold together', () => {
    const first = renewWebhookTls(undefined, wanted, now).material;
    const renewed = renewWebhookTls(first, { ...wanted, hosts: [...hosts, 'gantry.example.com'] }, at(1));
    expect(renewed.changes).toEqual(['new CA and serving certificate: not valid for gantry.example.com']);
    expect(splitPemCertificates(renewed.material.caBundle)).toHaveLength(2);
    expect(new X509Certificate(renewed.material.cert).checkHost('gantry.example.com')).toBeDefined();

    const other = renewWebhookTls(undefined, wanted, now).material;
    expect(renewWebhookTls({ ...first, key: other.key }, wanted, now).changes).toEqual([
      'new CA and serving certificate: the stored key does not match',
    ]);
    expect(renewWebhookTls({ ...first, caBundle: other.caBundle }, wanted, now).changes).toEqual([
      'new CA and serving certificate: not signed by the first CA of the bundle',
    ]);
  });

  it('drops the CA key an earlier version stored beside the serving key, and keeps the rest', () => {
    const first = renewWebhookTls(undefined, wanted, now).material;
    const legacy = renewWebhookTls({ ...first, caKey: makeCa().key }, wanted, at(1));
    expect(legacy.changes).toEqual(['CA key removed from the Secret']);
    expect(legacy.material).toEqual(first);
  });
});
