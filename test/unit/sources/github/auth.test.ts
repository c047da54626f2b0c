import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAppPrivateKey, signAppJwt } from '../../../../src/sources/github/auth.ts';
import { githubConfigSchema } from '../../../../src/sources/github/config.ts';
import { createGithubSource, GithubConfigError } from '../../../../src/sources/github/source.ts';
import { appKeys } from '../../../support/fake-github/index.ts';
import { verifyAppJwt } from '../../../support/fake-github/jwt.ts';
import { APP_ID, type Harness, startHarness } from '../../../support/github-harness.ts';

const TOKEN_ROUTE = '/app/installations/{installation_id}/access_tokens';

describe('GitHub App auth', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('signs a JWT GitHub accepts: RS256, back-dated iat, exp within ten minutes', () => {
    const keys = appKeys();
    const now = Date.parse('2026-01-05T09:00:00Z');
    const token = signAppJwt(APP_ID, createPrivateKey(keys.privateKeyPem), now);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
    expect(claims).toEqual({ iat: now / 1000 - 60, exp: now / 1000 - 60 + 540, iss: String(APP_ID) });
    expect(verifyAppJwt(token, keys.publicKey, [String(APP_ID)], now)).toEqual({
      ok: true,
      issuer: String(APP_ID),
    });
    expect(verifyAppJwt(token, keys.publicKey, [String(APP_ID)], now + 600_000).ok).toBe(false);
  });

  it('refreshes the installation token before its expires_at, never using an expired one', async () => {
    h = await startHarness({ webhooks: false, fake: { tokenTtlMs: 20 * 60_000 } });
    const tokenRequests = () =>
      h.fake.requests.filter((r) => r.route === TOKEN_ROUTE && r.status === 201).length;
    await h.source.pollOnce();
    expect(tokenRequests()).toBe(1);
    await h.advance(10 * 60_000);
    await h.source.pollOnce();
    expect(tokenRequests()).toBe(1);
    // 20-minute tokens, refreshed 5 minutes ahead: due after 15 minutes.
    await h.advance(5 * 60_000 + 1_000);
    await h.source.pollOnce();
    expect(tokenRequests()).toBe(2);
    await h.advance(16 * 60_000);
    await h.source.pollOnce();
    expect(tokenRequests()).toBe(3);
    expect(h.fake.requests.filter((r) => r.status === 401)).toEqual([]);
  });

  it('fetches a new token once after a 401 (revoked token)', async () => {
    h = await startHarness({ webhooks: false });
    await h.source.pollOnce();
    h.fake.revokeInstallationTokens();
    const report = await h.source.pollOnce();
    expect(report.result).toBe('ok');
    expect(h.fake.requests.filter((r) => r.status === 401)).toHaveLength(1);
    expect(h.fake.requests.filter((r) => r.route === TOKEN_ROUTE && r.status === 201)).toHaveLength(2);
  });

  it('asks for a token of only the permissions and repositories Gantry uses', async () => {
    h = await startHarness({ webhooks: false, runnerScopes: ['org'], configuredRepos: ['acme/app'] });
    await h.source.pollOnce();
    expect(h.fake.issuedTokens).toEqual([
      {
        permissions: { actions: 'read', metadata: 'read', organization_self_hosted_runners: 'write' },
        repositories: ['app'],
      },
    ]);
    // Enough to register an organisation runner; not enough for a repository's runners.
    const org = await h.source.runners.create({
      name: 'gantry-lint-0000000001',
      labels: ['self-hosted'],
      placement: { scope: 'org', group: 'default' },
    });
    expect(org.name).toBe('gantry-lint-0000000001');
    await expect(
      h.source.runners.create({
        name: 'gantry-lint-0000000002',
        labels: ['self-hosted'],
        placement: { scope: 'repo', repo: 'acme/app' },
      }),
    ).rejects.toThrow(/403: Resource not accessible by integration/);
  });

  it('signs with the new App key once its file changes, without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gantry-key-'));
    const keyPath = join(dir, 'app.pem');
    writeFileSync(keyPath, appKeys().privateKeyPem);
    h = await startHarness({
      webhooks: false,
      github: {
        auth: { kind: 'app', appId: APP_ID, installationId: 4242, privateKeyPath: keyPath },
      },
    });
    await h.source.pollOnce();
    const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
    h.fake.rotateAppKey(rotated.publicKey);
    // As a mounted Secret changes: a new file swapped in.
    writeFileSync(`${keyPath}.new`, rotated.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    renameSync(`${keyPath}.new`, keyPath);
    h.fake.revokeInstallationTokens();
    const report = await h.source.pollOnce();
    expect(report.result).toBe('ok');
    const exchanges = h.fake.requests.filter((r) => r.route === TOKEN_ROUTE).map((r) => r.status);
    expect(exchanges).toEqual([201, 201]);
  });

  it('works with a personal access token against a GitHub Enterprise Server base URL', async () => {
    h = await startHarness({ webhooks: false, auth: 'token', fake: { apiPrefix: '/api/v3' } });
    expect(h.fake.apiUrl).toMatch(/\/api\/v3$/);
    const { jobIds } = h.fake.queueJobs({ repo: 'acme/app', labels: ['self-hosted'], count: 2 });
    const report = await h.source.pollOnce();
    expect(report.result).toBe('ok');
    expect(h.events.map((e) => e.job.key).sort()).toEqual(jobIds.map((id) => `github:${id}`).sort());
    expect(h.fake.requests.every((r) => new URL(r.url).pathname.startsWith('/api/v3/'))).toBe(true);
    expect(h.fake.requests.every((r) => r.principal?.startsWith('pat:'))).toBe(true);
  });

  it('accepts PKCS#1 and PKCS#8 keys, and keys with escaped newlines; refuses others by name', () => {
    const pem = appKeys().privateKeyPem;
    expect(parseAppPrivateKey(pem).asymmetricKeyType).toBe('rsa');
    expect(parseAppPrivateKey(pem.replaceAll('\n', '\\n')).asymmetricKeyType).toBe('rsa');
    const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(parseAppPrivateKey(pkcs8).asymmetricKeyType).toBe('rsa');
    expect(() => parseAppPrivateKey('not a key')).toThrow(/not a usable RSA PEM key/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect(() => parseAppPrivateKey(ec.toString())).toThrow(/expected an RSA key/);
  });

  it('names the key when a secret file cannot be read', () => {
    const config = githubConfigSchema.parse({
      enabled: true,
      auth: { kind: 'app', appId: 1, installationId: 2, privateKeyPath: '/nonexistent/key.pem' },
      runners: { org: 'acme' },
    });
    const build = () =>
      createGithubSource({
        config,
        logger: pino({ level: 'silent' }),
        metrics: new Registry(),
        webhooks: Fastify(),
        onEvent: () => {},
      });
    expect(build).toThrow(GithubConfigError);
    expect(build).toThrow(/github\.auth\.privateKeyPath: cannot read \/nonexistent\/key\.pem \(ENOENT\)/);
  });
});

describe('github configuration', () => {
  const issues = (raw: unknown) => {
    const result = githubConfigSchema.safeParse(raw);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('is off and valid when empty', () => {
    expect(githubConfigSchema.parse({})).toMatchObject({ enabled: false, apiUrl: 'https://api.github.com' });
  });

  it('names what is missing once enabled', () => {
    expect(issues({ enabled: true })).toEqual(['auth: required when github.enabled is true']);
    expect(issues({ enabled: true, auth: { kind: 'token', token: 't' } })).toEqual([
      'repositories: list owner/name entries: a personal access token has no installation to list repositories from',
    ]);
    expect(
      issues({ enabled: true, auth: { kind: 'app', appId: 1, installationId: 2 }, runners: { org: 'a' } }),
    ).toEqual(['auth.privateKeyPath: set exactly one of privateKey or privateKeyPath']);
  });

  it('refuses unknown keys and malformed values', () => {
    expect(issues({ pol: {} })[0]).toMatch(/Unrecognized key/);
    expect(issues({ repositories: ['no-slash'] })).toEqual(['repositories.0: expected owner/name']);
    expect(issues({ runners: { namePrefix: 'Gantry_' } })[0]).toMatch(
      /^runners\.namePrefix: expected a lowercase DNS label/,
    );
    expect(issues({ apiUrl: 'ftp://github.example' })[0]).toMatch(/^apiUrl:/);
  });

  it('sends tokens over https only, or to a loopback address', () => {
    expect(issues({ apiUrl: 'http://github.example/api/v3' })).toEqual([
      'apiUrl: expected an https URL (plain http only for a loopback address): requests carry the token',
    ]);
    expect(issues({ apiUrl: 'https://github.example/api/v3' })).toEqual([]);
    expect(issues({ apiUrl: 'http://127.0.0.1:3000/api/v3' })).toEqual([]);
    expect(issues({ apiUrl: 'http://localhost:3000' })).toEqual([]);
  });
});
