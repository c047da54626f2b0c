import { createHmac, timingSafeEqual } from 'node:crypto';

const SIGNATURE_PATTERN = /^sha256=([0-9a-f]{64})$/;

/** The X-Hub-Signature-256 value GitHub sends for `body`: HMAC-SHA256 of the exact bytes, hex. */
export function signWebhookBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Checks X-Hub-Signature-256 over the raw body. The comparison is constant-time over equal-length
 * digests; a missing or malformed header is simply "not verified".
 */
export function verifyWebhookSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  const match = SIGNATURE_PATTERN.exec(header.trim().toLowerCase());
  if (!match?.[1]) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(match[1], 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
