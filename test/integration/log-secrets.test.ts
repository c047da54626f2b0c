import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SchedulingV1Api } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log/logger.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { runnerClass } from '../support/gantry-env.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// Every credential Gantry holds or is handed, and every failure path that logs (GitHub's 401s, 5xx
// and timeouts, the apiserver's refusals, forged deliveries), logged at trace level: the whole log
// must not contain one credential.

const kc = testKubeConfig();
const scheduling = kc.makeApiClient(SchedulingV1Api);
const APP_ID = 781;
const WEBHOOK_SECRET = `log-test-${'s3cr3t'.repeat(8)}`;
const cleanup: string[] = [];
afterAll(async () => {
  await Promise.all(cleanup.map((ns) => deleteNamespace(kc, ns)));
});

describe('logs', () => {
  it('hold no credential, whatever fails', async () => {
    const namespace = await createTestNamespace(kc, 'log-secrets', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    cleanup.push(namespace);
    const priority = `${namespace}-gone`;
    await scheduling.createPriorityClass({ body: { metadata: { name: priority }, value: 0 } });
    const dir = mkdtempSync(join(tmpdir(), 'gantry-log-secrets-'));
    const keyPath = join(dir, 'app.pem');
    writeFileSync(keyPath, appKeys().privateKeyPem);
    const fake = new FakeGithub({
      repos: ['acme/app'],
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
    });
    await fake.start();
    fake.runInRealTime(100);
    const lines: string[] = [];
    const logger = createLogger(
      'trace',
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const github = fakeGithubConfig(fake, APP_ID, WEBHOOK_SECRET);
    const config = parseConfig({
      http: { address: '127.0.0.1', port: 0 },
      github: {
        ...github,
        auth: { kind: 'app', appId: APP_ID, installationId: fake.installationId, privateKeyPath: keyPath },
        requestTimeoutSeconds: 1,
        maxRetries: 1,
      },
      controller: { reconcilePeriodSeconds: 0.5 },
      classes: {
        lint: runnerClass(namespace, ['self-hosted', 'lint'], { maxRunners: 3 }),
        // The apiserver refuses its pods once their PriorityClass is gone (an error path of the launcher).
        broken: runnerClass(namespace, ['self-hosted', 'broken'], { priorityClassName: priority }),
      },
    });
    const app = createApp(config, { kubeConfig: kc, logger });
    try {
      const { webhookUrl } = await app.start();
      // Gantry's dry run at start accepted the class; its pods are refused from now on.
      await scheduling.deletePriorityClass({ name: priority });
      fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, WEBHOOK_SECRET);
      fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'lint'], count: 3, durationMs: 60_000 });
      fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted', 'broken'], count: 1, durationMs: 60_000 });
      await until('JIT configs issued and a pod refused', async () => {
        const log = lines.join('');
        return fake.credentialsIssued.length >= 3 && log.includes(`no PriorityClass with name ${priority}`);
      });
      // GitHub: a revoked token (401), server errors, answers slower than the timeout.
      fake.revokeInstallationTokens();
      fake.faults.serverErrors = 4;
      await app.github?.pollOnce();
      fake.faults.latencyMs = 1_500;
      await app.github?.pollOnce();
      fake.faults.latencyMs = 0;
      await app.github?.pollOnce();
      // Forged and malformed deliveries.
      for (const signature of [`sha256=${'0'.repeat(64)}`, undefined]) {
        await fetch(`${webhookUrl}/webhooks/github`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-github-event': 'workflow_job',
            'x-github-delivery': `forged-${signature ?? 'none'}`,
            ...(signature ? { 'x-hub-signature-256': signature } : {}),
          },
          body: '{"action":"queued"}',
        });
      }
      await sleep(500);
    } finally {
      await app.stop();
      await fake.stop();
    }
    const log = lines.join('');
    // The failure paths were taken (a 401 is retried at once with a new token: GitHub saw it), and logged.
    expect(fake.requests.filter((r) => r.status === 401).length).toBeGreaterThan(0);
    expect(log).toContain(`no PriorityClass with name ${priority} was found`);
    expect(log).toMatch(/"status":502/);
    expect(log).toContain('timed out after 1000 ms');
    expect(log).toContain('missing or wrong X-Hub-Signature-256');
    // And no credential is in them: the key, the webhook secret, any token or JIT config issued.
    const keyBody = appKeys()
      .privateKeyPem.split('\n')
      .filter((line) => line && !line.startsWith('-----'));
    const credentials = [WEBHOOK_SECRET, ...keyBody, ...fake.credentialsIssued];
    expect(fake.credentialsIssued.length).toBeGreaterThanOrEqual(3);
    for (const credential of credentials) {
      expect(log.includes(credential), `a credential (${credential.slice(0, 8)}…) is in the log`).toBe(false);
    }
  }, 60_000);
});
