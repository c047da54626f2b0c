import { generateKeyPairSync, type KeyObject } from 'node:crypto';

export { ManualClock } from './clock.ts';
export type { FakeJob, FakeRunner } from './entities.ts';
export { loadOpenApiValidators, type OpenApiValidators } from './openapi.ts';

import type { FakeGithub } from './server.ts';

export { type DeliveryRecord, FakeGithub, type FakeGithubOptions, type RequestRecord } from './server.ts';
export { workflowJobExamples } from './webhooks.ts';

export interface AppKeys {
  privateKeyPem: string;
  publicKey: KeyObject;
}

let keys: AppKeys | undefined;

/** An RSA key pair for a fake GitHub App (generated once per process: key generation is slow). */
export function appKeys(): AppKeys {
  if (!keys) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    keys = {
      privateKeyPem: pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      publicKey: pair.publicKey,
    };
  }
  return keys;
}

/** Gantry's `github.auth` section for the App `appId`, installed on `fake` (which must know the App). */
export function fakeAppAuth(fake: FakeGithub, appId: number) {
  return {
    kind: 'app',
    appId,
    installationId: fake.installationId,
    privateKey: appKeys().privateKeyPem,
  } as const;
}

/**
 * Gantry's `github` config section against this fake: the App `appId` installed on it, signed
 * webhooks with `webhookSecret`, organisation runners, and polls quick enough for tests.
 */
export function fakeGithubConfig(fake: FakeGithub, appId: number, webhookSecret: string) {
  return {
    enabled: true,
    apiUrl: fake.apiUrl,
    auth: fakeAppAuth(fake, appId),
    // Loopback, on a port of its own: the webhook listener apart from status and metrics.
    webhook: { secret: webhookSecret, address: '127.0.0.1', port: 0 },
    // Leftover registrations swept within the tests' patience.
    runners: { org: fake.org, sweepIntervalSeconds: 30 },
    poll: { intervalSeconds: 5, backstopIntervalSeconds: 30 },
  };
}
