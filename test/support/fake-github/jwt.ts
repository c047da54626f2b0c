import { type KeyObject, verify } from 'node:crypto';

export type JwtCheck = { ok: true; issuer: string } | { ok: false; message: string };

/**
 * Checks a GitHub App JWT the way GitHub documents it: RS256 signed by the App's key, `iss` the App id
 * (or client id), not expired, and `exp` at most 10 minutes after `iat`.
 */
export function verifyAppJwt(
  token: string,
  publicKey: KeyObject,
  issuers: readonly string[],
  nowMs: number,
): JwtCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, message: 'A JSON web token could not be decoded' };
  const [head = '', body = '', signature = ''] = parts;
  let header: { alg?: string };
  let claims: { iat?: unknown; exp?: unknown; iss?: unknown };
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, message: 'A JSON web token could not be decoded' };
  }
  if (header.alg !== 'RS256') return { ok: false, message: "'alg' must be RS256" };
  const valid = verify(
    'RSA-SHA256',
    Buffer.from(`${head}.${body}`),
    publicKey,
    Buffer.from(signature, 'base64url'),
  );
  if (!valid) return { ok: false, message: 'A JSON web token could not be decoded' };
  const now = Math.floor(nowMs / 1000);
  if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat)) {
    return {
      ok: false,
      message:
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
    };
  }
  if (typeof claims.exp !== 'number' || claims.exp <= now) {
    return {
      ok: false,
      message:
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
    };
  }
  if (claims.exp - claims.iat > 600 || claims.exp > now + 600) {
    return { ok: false, message: "'Expiration time' claim ('exp') is too far in the future" };
  }
  if (claims.iat > now + 60) return { ok: false, message: "'Issued at' claim ('iat') is in the future" };
  if (typeof claims.iss !== 'string' && typeof claims.iss !== 'number') {
    return { ok: false, message: "'Issuer' claim ('iss') must be an Integer" };
  }
  const issuer = String(claims.iss);
  if (!issuers.includes(issuer)) return { ok: false, message: 'Integration not found' };
  return { ok: true, issuer };
}
