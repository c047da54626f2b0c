import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CertificateAndKey,
  createCertificateAuthority,
  issueServingCertificate,
} from '../../../../../src/sources/tekton/tls/certificates.ts';
import { type FileTls, startFileTls } from '../../../../../src/sources/tekton/tls/file-source.ts';

const logger = pino({ level: 'silent' });
const ca = createCertificateAuthority({ commonName: 'file-test-ca', validityDays: 10, now: new Date() });
const newPair = (): CertificateAndKey =>
  issueServingCertificate({ ca, hosts: ['gantry.test.svc'], validityDays: 5, now: new Date() });

let dir: string;
let source: FileTls | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-tls-'));
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function writePair(pair: CertificateAndKey, into = dir): Promise<void> {
  await writeFile(join(into, 'tls.crt'), pair.cert);
  await writeFile(join(into, 'tls.key'), pair.key);
}

function start(certFile = join(dir, 'tls.crt'), keyFile = join(dir, 'tls.key')): Promise<FileTls> {
  // A long interval: the tests poll by hand.
  return startFileTls({ certFile, keyFile, logger, pollIntervalMs: 3_600_000 });
}

describe('file certificate source', () => {
  it('serves the pair in the files, and a rewritten pair after the next poll', async () => {
    const first = newPair();
    await writePair(first);
    source = await start();
    expect(source.current()).toEqual(first);
    const seen: CertificateAndKey[] = [];
    source.subscribe((pair) => seen.push(pair));

    expect(await source.poll()).toBe(false);
    const second = newPair();
    await writePair(second);
    expect(await source.poll()).toBe(true);
    expect(seen).toEqual([second]);
    expect(source.current()).toEqual(second);
  });

  it('keeps the current pair when the files hold garbage, a mismatched or a half-written pair', async () => {
    const first = newPair();
    await writePair(first);
    source = await start();
    const seen: CertificateAndKey[] = [];
    source.subscribe((pair) => seen.push(pair));

    await writeFile(join(dir, 'tls.crt'), 'not a certificate');
    expect(await source.poll()).toBe(false);
    // The certificate renewed, its key not written yet.
    const second = newPair();
    await writeFile(join(dir, 'tls.crt'), second.cert);
    expect(await source.poll()).toBe(false);
    await rm(join(dir, 'tls.key'));
    expect(await source.poll()).toBe(false);
    expect(source.current()).toEqual(first);
    expect(seen).toEqual([]);

    // The key arrives: the pair is complete and taken.
    await writeFile(join(dir, 'tls.key'), second.key);
    expect(await source.poll()).toBe(true);
    expect(seen).toEqual([second]);
  });

  it('sees the symlink swap of a mounted Secret', async () => {
    // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/, swapped by rename.
    const mount = join(dir, 'mount');
    await mkdir(join(mount, '..v1'), { recursive: true });
    const first = newPair();
    await writePair(first, join(mount, '..v1'));
    await symlink('..v1', join(mount, '..data'));
    await symlink('..data/tls.crt', join(mount, 'tls.crt'));
    await symlink('..data/tls.key', join(mount, 'tls.key'));
    source = await start(join(mount, 'tls.crt'), join(mount, 'tls.key'));
    expect(source.current()).toEqual(first);

    const second = newPair();
    await mkdir(join(mount, '..v2'));
    await writePair(second, join(mount, '..v2'));
    await symlink('..v2', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await rm(join(mount, '..v1'), { recursive: true });
    expect(await source.poll()).toBe(true);
    expect(source.current()).toEqual(second);
  });

  it('polls by itself', async () => {
    await writePair(newPair());
    source = await startFileTls({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      logger,
      pollIntervalMs: 20,
    });
    const next = newPair();
    const reported = new Promise<CertificateAndKey>((resolve) => source?.subscribe(resolve));
    await writePair(next);
    expect(await reported).toEqual(next);
  });

  it('refuses to start without a pair it can serve', async () => {
    await expect(start()).rejects.toThrow(/ENOENT/);
    const pair = newPair();
    await writePair({ cert: pair.cert, key: newPair().key });
    await expect(start()).rejects.toThrow(/does not belong to the certificate/);
  });
});
