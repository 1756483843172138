import { hkdfSync, createDecipheriv } from 'node:crypto';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';

/**
 * TEST-ONLY: an Oblivious HTTP client written from RFC 9458 and RFC 9292 directly, on @hpke/core,
 * sharing no code with packages/crypto: it proves the gateway speaks the standard, not just
 * whatever Tresor's own library does.
 */

function varint(n: number): Buffer {
  // RFC 9000 §16.
  if (n < 0x40) return Buffer.from([n]);
  if (n < 0x4000) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0);
  return b;
}

function readVarint(b: Buffer, offset: number): [number, number] {
  const first = b[offset]!;
  const prefix = first >> 6;
  const length = 1 << prefix;
  let value = first & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + b[offset + i]!;
  return [value, offset + length];
}

function lengthPrefixed(s: string | Uint8Array): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s);
  return Buffer.concat([varint(bytes.length), bytes]);
}

/** RFC 9292 §3.1 known-length request (framing indicator 0). */
export function encodeKnownLengthRequest(r: {
  method: string;
  authority: string;
  path: string;
  headers: [string, string][];
  body: Uint8Array;
}): Uint8Array {
  const fields = Buffer.concat(r.headers.flatMap(([n, v]) => [lengthPrefixed(n), lengthPrefixed(v)]));
  return Buffer.concat([
    varint(0),
    lengthPrefixed(r.method),
    lengthPrefixed('https'),
    lengthPrefixed(r.authority),
    lengthPrefixed(r.path),
    varint(fields.length),
    fields,
    lengthPrefixed(r.body),
    varint(0),
  ]);
}

/** RFC 9292 §3 known-length response (framing indicator 1), informational responses not expected. */
export function decodeKnownLengthResponse(bytes: Uint8Array): {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
} {
  const b = Buffer.from(bytes);
  const [framing, afterFraming] = readVarint(b, 0);
  if (framing !== 1) throw new Error(`framing ${framing}`);
  const [status, afterStatus] = readVarint(b, afterFraming);
  const [fieldsLength, afterLength] = readVarint(b, afterStatus);
  let o = afterLength;
  const headers: Record<string, string> = {};
  const end = o + fieldsLength;
  while (o < end) {
    let n, v;
    [n, o] = readVarint(b, o);
    const name = b.subarray(o, o + n).toString('latin1');
    o += n;
    [v, o] = readVarint(b, o);
    headers[name] = b.subarray(o, o + v).toString('latin1');
    o += v;
  }
  let contentLength = 0;
  if (o < b.length) [contentLength, o] = readVarint(b, o);
  return { status, headers, body: b.subarray(o, o + contentLength) };
}

export interface Rfc9458Exchange {
  readonly request: Uint8Array;
  openResponse(encapsulated: Uint8Array): Promise<Uint8Array>;
}

/** Encapsulates `bhttp` for the first key configuration of an `application/ohttp-keys` list (RFC 9458 §4.3). */
export async function encapsulate(keyList: Uint8Array, bhttp: Uint8Array): Promise<Rfc9458Exchange> {
  const list = Buffer.from(keyList);
  const length = list.readUInt16BE(0);
  const config = list.subarray(2, 2 + length);
  const keyId = config[0]!;
  const kemId = config.readUInt16BE(1);
  if (kemId !== 0x0020) throw new Error('this test client speaks X25519 only');
  const publicKey = config.subarray(3, 35);
  const kdfId = config.readUInt16BE(37);
  const aeadId = config.readUInt16BE(39);
  const suite = new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  const hdr = Buffer.alloc(7);
  hdr[0] = keyId;
  hdr.writeUInt16BE(kemId, 1);
  hdr.writeUInt16BE(kdfId, 3);
  hdr.writeUInt16BE(aeadId, 5);
  const info = Buffer.concat([Buffer.from('message/bhttp request'), Buffer.from([0]), hdr]);
  const sender = await suite.createSenderContext({
    recipientPublicKey: await suite.kem.deserializePublicKey(new Uint8Array(publicKey).buffer),
    info: new Uint8Array(info).buffer,
  });
  const ct = Buffer.from(await sender.seal(new Uint8Array(bhttp).buffer));
  const enc = Buffer.from(sender.enc);
  return {
    request: Buffer.concat([hdr, enc, ct]),
    async openResponse(encapsulated) {
      // §4.4: secret = Export("message/bhttp response", max(Nn, Nk)); salt = enc ‖ response_nonce.
      const secret = Buffer.from(
        await sender.export(new TextEncoder().encode('message/bhttp response').buffer, 32),
      );
      const r = Buffer.from(encapsulated);
      const responseNonce = r.subarray(0, 32);
      const salt = Buffer.concat([enc, responseNonce]);
      const key = Buffer.from(hkdfSync('sha256', secret, salt, 'key', 32));
      const nonce = Buffer.from(hkdfSync('sha256', secret, salt, 'nonce', 12));
      const sealed = r.subarray(32);
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return new Uint8Array(
        Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]),
      );
    },
  };
}
