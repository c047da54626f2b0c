import { request } from 'node:https';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMISSION_BODY_LIMIT_BYTES,
  ADMISSION_PATH,
  type AdmissionServer,
  createAdmissionServer,
} from '../../../../src/sources/tekton/admission-server.ts';
import {
  type CertificateAndKey,
  createCertificateAuthority,
  issueServingCertificate,
} from '../../../../src/sources/tekton/tls/certificates.ts';
import { createCertificateHolder } from '../../../../src/sources/tekton/tls/source.ts';

const logger = pino({ level: 'silent' });

function makeChain(): { ca: string; pair: CertificateAndKey } {
  const now = new Date();
  const ca = createCertificateAuthority({ commonName: 'admission-test-ca', validityDays: 2, now });
  return { ca: ca.cert, pair: issueServingCertificate({ ca, hosts: ['127.0.0.1'], validityDays: 1, now }) };
}

interface Answer {
  status: number;
  body: string;
}

/** One request on a new connection (no agent), so each sees the server's current certificate. */
function send(
  url: string,
  ca: string,
  options: { path?: string; method?: string; body?: string | Buffer; contentType?: string } = {},
): Promise<Answer> {
  const target = new URL(options.path ?? ADMISSION_PATH, url);
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: options.method ?? 'POST',
        ca,
        agent: false,
        headers:
          options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A stand-in decision: allows, echoing the uid of a JSON body. */
const review = (text: string) => {
  const uid = (JSON.parse(text) as { request?: { uid?: string } }).request?.uid;
  return {
    httpStatus: 200,
    body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } },
  };
};
const reviewBody = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u1' },
});

let server: AdmissionServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function startWith(
  pair: CertificateAndKey,
  answer: (body: string) => { httpStatus: number; body: unknown } = review,
) {
  const tls = createCertificateHolder();
  tls.set(pair);
  server = createAdmissionServer({ address: '127.0.0.1', port: 0, logger, review: answer, tls });
  const { url } = await server.start();
  return { url, tls };
}

describe('admission server', () => {
  it('answers a review over HTTPS with the certificate of the source', async () => {
    const { ca, pair } = makeChain();
    const { url } = await startWith(pair);
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await send(url, ca, { body: reviewBody });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u1', allowed: true },
    });
    // A client that does not trust the CA refuses the server.
    await expect(send(url, makeChain().ca, { body: reviewBody })).rejects.toThrow(/certificate/);
  });

  it('passes on the status the review chose', async () => {
    const { ca, pair } = makeChain();
    const { url } = await startWith(pair, () => ({
      httpStatus: 400,
      body: { error: 'not an AdmissionReview' },
    }));
    const res = await send(url, ca, { body: '{}' });
    expect(res).toEqual({ status: 400, body: '{"error":"not an AdmissionReview"}' });
  });

  it('hands the review the body as text, whatever its content type, and 404s other routes', async () => {
    const { ca, pair } = makeChain();
    const seen: string[] = [];
    const { url } = await startWith(pair, (text) => {
      seen.push(text);
      return { httpStatus: 200, body: { seen: text.length } };
    });
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    expect((await send(url, ca, { body: deep })).status).toBe(200);
    expect((await send(url, ca, { body: '{"request": {', contentType: 'text/plain' })).status).toBe(200);
    expect(
      (await send(url, ca, { body: 'x', contentType: 'application/x-www-form-urlencoded' })).status,
    ).toBe(200);
    expect((await send(url, ca, {})).status).toBe(200);
    expect(seen).toEqual([deep, '{"request": {', 'x', '']);
    expect((await send(url, ca, { body: reviewBody, path: '/admit/taskruns' })).status).toBe(404);
    expect((await send(url, ca, { method: 'GET' })).status).toBe(404);
  });

  it('denies a body over the limit at 200, with the uid read from its start', async () => {
    const { ca, pair } = makeChain();
    const { url } = await startWith(pair);
    const padding = 'x'.repeat(ADMISSION_BODY_LIMIT_BYTES);
    const res = await send(url, ca, {
      body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', request: { uid: 'big-1', padding } }),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: 'big-1',
        allowed: false,
        status: {
          code: 400,
          message: expect.stringMatching(
            new RegExp(
              `^the AdmissionReview is \\d+ bytes, more than the ${ADMISSION_BODY_LIMIT_BYTES} Gantry reads$`,
            ),
          ),
        },
      },
    });
    // Just under the limit is read.
    const fits = JSON.stringify({
      request: { uid: 'u2' },
      padding: 'x'.repeat(ADMISSION_BODY_LIMIT_BYTES - 100),
    });
    expect(JSON.parse((await send(url, ca, { body: fits })).body).response).toEqual({
      uid: 'u2',
      allowed: true,
    });
  });

  it('answers 500 when the review throws, and keeps serving', async () => {
    const { ca, pair } = makeChain();
    let calls = 0;
    const { url } = await startWith(pair, (body) => {
      if (++calls === 1) throw new Error('boom');
      return review(body);
    });
    const failed = await send(url, ca, { body: reviewBody });
    expect(failed).toEqual({ status: 500, body: '{"error":"internal error"}' });
    expect((await send(url, ca, { body: reviewBody })).status).toBe(200);
  });

  it('serves a new certificate without a restart', async () => {
    const first = makeChain();
    const { url, tls } = await startWith(first.pair);
    expect((await send(url, first.ca, { body: reviewBody })).status).toBe(200);
    const second = makeChain();
    tls.set(second.pair);
    expect((await send(url, second.ca, { body: reviewBody })).status).toBe(200);
    await expect(send(url, first.ca, { body: reviewBody })).rejects.toThrow(/certificate/);
  });

  it('does not listen before there is a certificate', async () => {
    const { ca, pair } = makeChain();
    const tls = createCertificateHolder();
    server = createAdmissionServer({ address: '127.0.0.1', port: 0, logger, review, tls });
    let listening = false;
    const started = server.start().then((result) => {
      listening = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(listening).toBe(false);
    tls.set(pair);
    const { url } = await started;
    expect((await send(url, ca, { body: reviewBody })).status).toBe(200);
  });
});
