import { isIPv4, isIPv6 } from 'node:net';

/**
 * The few DER encoders an X.509 certificate needs (ITU-T X.690). node:crypto signs and parses
 * certificates but cannot build one; this covers exactly the fields certificates.ts writes, so no
 * ASN.1 library (and its global polyfills) is needed.
 */

/** One tag-length-value; the length in short form below 128 bytes, else in long form. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(0x30, ...items);
}

export function set(...items: Uint8Array[]): Buffer {
  return tlv(0x31, ...items);
}

export function boolean(value: boolean): Buffer {
  return tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** A non-negative INTEGER from its big-endian magnitude: no redundant leading zeros, a zero byte added if the top bit is set. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = Buffer.from(magnitude.subarray(start));
  const first = trimmed[0] ?? 0;
  return tlv(0x02, first & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function smallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff)
    throw new RangeError(`unsupported integer ${value}`);
  return unsignedInteger(Buffer.from([value >> 8, value & 0xff]));
}

export function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [40 * first + second, ...rest]) {
    const groups = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128))
      groups.unshift((value & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(0x04, bytes);
}

/** A BIT STRING; `unusedBits` are the trailing zero bits of the last byte (named-bit lists drop them). */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.from([unusedBits]), bytes);
}

export function utf8String(text: string): Buffer {
  return tlv(0x0c, Buffer.from(text, 'utf8'));
}

/** An [n] EXPLICIT wrapper (constructed, context-specific). */
export function explicit(tagNumber: number, content: Uint8Array): Buffer {
  return tlv(0xa0 | tagNumber, content);
}

/** An [n] IMPLICIT primitive value (context-specific), such as a GeneralName. */
export function implicitPrimitive(tagNumber: number, bytes: Uint8Array): Buffer {
  return tlv(0x80 | tagNumber, bytes);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, in UTC. */
export function time(at: Date): Buffer {
  const iso = at.toISOString(); // 2026-01-15T12:00:00.000Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = at.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(digits.slice(2), 'ascii'));
  return tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** The 4 or 16 bytes of an IP address, as a subjectAltName iPAddress carries them. */
export function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const withoutZone = ip.split('%')[0] ?? ip;
  const [head = '', tail] = withoutZone.split('::');
  const groups = (part: string | undefined): number[] => {
    if (!part) return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [Number.parseInt(group, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const front = groups(head);
  const back = groups(tail);
  const all =
    tail === undefined ? front : [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(group, 2 * i);
  return bytes;
}

/** The complete encodings (header included) of the elements inside one constructed DER value. */
export function children(encoded: Uint8Array): Buffer[] {
  const outer = header(encoded, 0);
  const items: Buffer[] = [];
  for (let at = outer.contentStart; at < outer.end; ) {
    const item = header(encoded, at);
    items.push(Buffer.from(encoded.subarray(at, item.end)));
    at = item.end;
  }
  return items;
}

function header(encoded: Uint8Array, at: number): { contentStart: number; end: number } {
  const first = encoded[at + 1];
  if (first === undefined) throw new Error('truncated DER');
  let length = first;
  let contentStart = at + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (encoded[contentStart + i] ?? 0);
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > encoded.length) throw new Error('truncated DER');
  return { contentStart, end };
}
