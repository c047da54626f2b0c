import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import type { Clock } from './clock.ts';

/** Supplies the Authorization header for installation-scoped (or PAT) requests. */
export interface GithubAuth {
  readonly kind: 'app' | 'token';
  /** The header value, e.g. `token ghs_…`; refreshes the installation token when due. */
  authorization(): Promise<string>;
  /** Forgets the current token (after a 401) so the next call fetches a new one. */
  invalidate(): void;
  /** When the current token expires (epoch ms), null for a PAT or before the first token. */
  expiresAtMs(): number | null;
}

/** A personal access token never rotates here; GitHub Enterprise Server accepts the same header. */
export function createTokenAuth(token: string): GithubAuth {
  const header = `token ${token.trim()}`;
  return {
    kind: 'token',
    authorization: async () => header,
    invalidate: () => {},
    expiresAtMs: () => null,
  };
}

/** Parses a PEM private key (PKCS#1 or PKCS#8; literal `\n` escapes from env vars are accepted). */
export function parseAppPrivateKey(pem: string): KeyObject {
  const text = pem.includes('\\n') && !pem.includes('\n') ? pem.replaceAll('\\n', '\n') : pem;
  try {
    const key = createPrivateKey(text);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`expected an RSA key, got ${key.asymmetricKeyType}`);
    return key;
  } catch (err) {
    throw new Error(`GitHub App private key is not a usable RSA PEM key: ${(err as Error).message}`);
  }
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/**
 * Signs the App's JWT (RS256). iat is back-dated 60 s against clock drift and exp stays 9 minutes
 * after it, inside GitHub's 10-minute cap.
 */
export function signAppJwt(appId: string | number, key: KeyObject, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000) - 60;
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat, exp: iat + 540, iss: String(appId) }));
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), key);
  return `${header}.${payload}.${base64url(signature)}`;
}

export interface InstallationToken {
  token: string;
  /** ISO 8601, as GitHub sends it. */
  expiresAt: string;
}

export interface AppAuthOptions {
  appId: string | number;
  /** The App's key as of now: asked for each JWT, so a rotated key is used from its next token on. */
  privateKey: () => KeyObject;
  installationId: number;
  /** Performs POST /app/installations/{id}/access_tokens with the given JWT. */
  exchange: (jwt: string, installationId: number) => Promise<InstallationToken>;
  clock: Clock;
  /** Refresh this long before expires_at, so no request is made with a token about to lapse. */
  refreshMarginMs: number;
}

/**
 * Installation tokens cached by their own expires_at (not a fixed lifetime), refreshed ahead of it;
 * concurrent callers share one refresh.
 */
export function createAppAuth(options: AppAuthOptions): GithubAuth {
  let current: { header: string; expiresAtMs: number } | null = null;
  let pending: Promise<string> | null = null;

  const refresh = async (): Promise<string> => {
    const jwt = signAppJwt(options.appId, options.privateKey(), options.clock.now());
    const { token, expiresAt } = await options.exchange(jwt, options.installationId);
    const expiresAtMs = Date.parse(expiresAt);
    if (!token || Number.isNaN(expiresAtMs)) {
      throw new Error('GitHub answered the installation token request without a token or a valid expires_at');
    }
    current = { header: `token ${token}`, expiresAtMs };
    return current.header;
  };

  return {
    kind: 'app',
    async authorization() {
      if (current && options.clock.now() < current.expiresAtMs - options.refreshMarginMs)
        return current.header;
      pending ??= refresh().finally(() => {
        pending = null;
      });
      return pending;
    },
    invalidate() {
      current = null;
    },
    expiresAtMs: () => current?.expiresAtMs ?? null,
  };
}
