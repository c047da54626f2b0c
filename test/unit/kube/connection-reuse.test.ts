import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApis } from '../../../src/kube/client.ts';
import {
  createCertificateAuthority,
  issueServingCertificate,
} from '../../../src/sources/tekton/tls/certificates.ts';

// An HTTPS stand-in for the apiserver on loopback that counts the TLS connections made to it.
describe('kube API transport', () => {
  let server: Server;
  let connections = 0;
  let kc: KubeConfig;

  beforeAll(async () => {
    const now = new Date();
    const ca = createCertificateAuthority({ commonName: 'test-ca', validityDays: 1, now });
    const serving = issueServingCertificate({ ca, hosts: ['127.0.0.1'], validityDays: 1, now });
    server = createServer({ cert: serving.cert, key: serving.key }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: {}, items: [] }));
      req.resume();
    });
    server.on('secureConnection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: `https://127.0.0.1:${port}`, caData: Buffer.from(ca.cert).toString('base64') },
      ],
      users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps one connection for many requests, sequential or concurrent', async () => {
    const codes: number[] = [];
    const { core } = createKubeApis(kc, { timeoutMs: 5_000, onResponse: (r) => codes.push(r.code) });
    for (let i = 0; i < 20; i++) await core.listNamespacedPod({ namespace: 'ci' });
    // The pool may open a second one while the first is being handed back; never one per request.
    expect(connections).toBeLessThanOrEqual(2);
    await Promise.all(Array.from({ length: 10 }, () => core.listNamespacedPod({ namespace: 'ci' })));
    expect(codes).toHaveLength(30);
    expect(codes.every((code) => code === 200)).toBe(true);
    expect(connections).toBeLessThanOrEqual(2 + 10);
    const afterBurst = connections;
    for (let i = 0; i < 20; i++) await core.listNamespacedPod({ namespace: 'ci' });
    expect(connections).toBe(afterBurst);
  });
});
