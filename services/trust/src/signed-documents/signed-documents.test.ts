import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CompactSign, UnsecuredJWT, compactVerify, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import { bytesToBase64Url, utf8Encode } from '@tresor/crypto';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { DOCUMENT_TYPE } from './document-kind.js';
import { FileDocumentRepository, MemoryDocumentRepository } from './document-repository.js';
import { keyStoreDocumentSigner, signDocument, type DocumentSigner } from './document-signer.js';
import { ephemeralDocumentSigner } from './ephemeral-signer.js';
import { SignedDocumentPublisher, type DocumentBodyCodec } from './signed-document-publisher.js';
import { verifySignedDocument } from './verify-signed-document.js';

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error(`expected ${code}, but the call succeeded`);
  if (!isTresorError(err))
    throw new Error(`expected ${code}, got ${err instanceof Error ? err.message : typeof err}`);
  expect(err.code).toBe(code);
}

const keys = (...signers: DocumentSigner[]) => ({ keys: signers.map((s) => ({ ...s.publicJwk })) });
const claims = (version: number, extra: Record<string, unknown> = {}) => ({
  iss: 'trust.tresor.test',
  iat: 1_764_000_000,
  version,
  ...extra,
});

let dir: string;
let signer: DocumentSigner;
let other: DocumentSigner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-docs-'));
  signer = await ephemeralDocumentSigner('doc-key-1');
  other = await ephemeralDocumentSigner('doc-key-1');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('signing with a keystore key', () => {
  it('signs a compact JWS that jose verifies, with the header in the documented order', async () => {
    const store = await FileKeyStore.open({
      path: join(dir, 'keys.json'),
      passphrase: SecretKeyBytes.copyOf(utf8Encode('correct horse battery')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
    try {
      const key = await store.createSigningKey('ES256', { label: 'trust documents' });
      const keyStoreSigner = await keyStoreDocumentSigner(store, key.id);
      const jws = await signDocument(keyStoreSigner, 'reference-values', claims(7, { referenceValues: [] }));
      const [header] = jws.split('.');
      expect(header).toBe(
        bytesToBase64Url(utf8Encode(`{"alg":"ES256","kid":"${key.id}","typ":"tresor-reference-values+jwt"}`)),
      );
      const independent = await compactVerify(jws, await importJWK(await store.publicKey(key.id), 'ES256'));
      expect(JSON.parse(new TextDecoder().decode(independent.payload))).toEqual(
        claims(7, { referenceValues: [] }),
      );
      const verified = await verifySignedDocument(jws, {
        kind: 'reference-values',
        keys: keys(keyStoreSigner),
      });
      expect(verified.claims.version).toBe(7);
      expect(verified.keyId).toBe(key.id);

      const p384 = await store.createSigningKey('ES384');
      await expectCode(keyStoreDocumentSigner(store, p384.id), 'KEY_USAGE_INVALID');
    } finally {
      await store.close();
    }
  });
});

describe('verifySignedDocument', () => {
  it('returns the claims, issue time and a pin for every document it signed (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.jsonValue(), { maxKeys: 4 }),
        async (version, iat, body) => {
          const sent = { ...body, iss: 'trust.tresor.test', iat, version };
          const jws = await signDocument(signer, 'residency-inventory', sent);
          const got = await verifySignedDocument(jws, {
            kind: 'residency-inventory',
            keys: keys(signer),
            issuer: 'trust.tresor.test',
          });
          expect(got.claims).toEqual(JSON.parse(JSON.stringify(sent)));
          expect(got.issuedAt.getTime()).toBe(iat * 1000);
          expect(got.pin.version).toBe(version);
          expect(got.pin.digest).toMatch(/^[0-9a-f]{64}$/);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses a document with any character of its header, payload or signature changed (tampered)', async () => {
    const jws = await signDocument(signer, 'reference-values', claims(3, { referenceValues: [] }));
    const [h, p] = jws.split('.') as [string, string, string];
    // The last character of each segment carries unused bits, which decoders may ignore.
    const positions = [
      ...Array.from({ length: h.length - 1 }, (_, i) => i),
      ...Array.from({ length: p.length - 1 }, (_, i) => h.length + 1 + i),
      ...Array.from({ length: 85 }, (_, i) => h.length + p.length + 2 + i),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...positions),
        fc.constantFrom('A', 'B', '-', '_', '0'),
        async (i, c) => {
          fc.pre(jws[i] !== c);
          await expectCode(
            verifySignedDocument(jws.slice(0, i) + c + jws.slice(i + 1), {
              kind: 'reference-values',
              keys: keys(signer),
            }),
            'SIGNED_DOCUMENT_INVALID',
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses unsigned documents: alg none, an empty signature, HMAC keyed with the public key', async () => {
    const options = { kind: 'reference-values' as const, keys: keys(signer) };
    const none = new UnsecuredJWT(claims(4)).encode();
    await expectCode(verifySignedDocument(none, options), 'SIGNED_DOCUMENT_INVALID');
    const jws = await signDocument(signer, 'reference-values', claims(4));
    await expectCode(
      verifySignedDocument(jws.slice(0, jws.lastIndexOf('.') + 1), options),
      'SIGNED_DOCUMENT_INVALID',
    );
    await expectCode(
      verifySignedDocument(jws.slice(0, jws.lastIndexOf('.')), options),
      'SIGNED_DOCUMENT_INVALID',
    );
    const hmac = await new CompactSign(utf8Encode(JSON.stringify(claims(4))))
      .setProtectedHeader({ alg: 'HS256', kid: signer.keyId, typ: DOCUMENT_TYPE['reference-values'] })
      .sign(utf8Encode(JSON.stringify(signer.publicJwk)));
    await expectCode(verifySignedDocument(hmac, options), 'SIGNED_DOCUMENT_INVALID');
  });

  it('refuses a document signed by another key, even one that claims the pinned kid', async () => {
    const forged = await signDocument(other, 'reference-values', claims(5));
    await expectCode(
      verifySignedDocument(forged, { kind: 'reference-values', keys: keys(signer) }),
      'SIGNED_DOCUMENT_INVALID',
    );
    const rotated = await ephemeralDocumentSigner('doc-key-2');
    const unknownKid = await signDocument(rotated, 'reference-values', claims(5));
    await expectCode(
      verifySignedDocument(unknownKid, { kind: 'reference-values', keys: keys(signer) }),
      'SIGNED_DOCUMENT_INVALID',
    );
    // Both keys pinned (rotation): each document verifies with its own.
    const both = { kind: 'reference-values' as const, keys: keys(signer, rotated) };
    await expect(verifySignedDocument(unknownKid, both)).resolves.toMatchObject({ keyId: 'doc-key-2' });
    const current = await signDocument(signer, 'reference-values', claims(5));
    await expect(verifySignedDocument(current, both)).resolves.toMatchObject({ keyId: 'doc-key-1' });
  });

  it('refuses rollbacks: an older version, or another document under the pinned version', async () => {
    const v5 = await verifySignedDocument(
      await signDocument(signer, 'reference-values', claims(5, { a: 1 })),
      {
        kind: 'reference-values',
        keys: keys(signer),
      },
    );
    const at = (version: number, extra: Record<string, unknown>) =>
      signDocument(signer, 'reference-values', claims(version, extra));
    const options = { kind: 'reference-values' as const, keys: keys(signer), pinned: v5.pin };
    await expectCode(verifySignedDocument(await at(4, { a: 1 }), options), 'SIGNED_DOCUMENT_ROLLBACK');
    await expectCode(verifySignedDocument(await at(1, {}), options), 'SIGNED_DOCUMENT_ROLLBACK');
    await expectCode(verifySignedDocument(await at(5, { a: 2 }), options), 'SIGNED_DOCUMENT_ROLLBACK');
    await expect(verifySignedDocument(await at(5, { a: 1 }), options)).resolves.toMatchObject({
      pin: v5.pin,
    });
    await expect(verifySignedDocument(await at(6, {}), options)).resolves.toMatchObject({
      pin: { version: 6 },
    });
  });

  it('refuses a document of another kind, another issuer, or without the common claims', async () => {
    const inventory = await signDocument(signer, 'residency-inventory', claims(2));
    await expectCode(
      verifySignedDocument(inventory, { kind: 'reference-values', keys: keys(signer) }),
      'SIGNED_DOCUMENT_INVALID',
    );
    await expectCode(
      verifySignedDocument(inventory, {
        kind: 'residency-inventory',
        keys: keys(signer),
        issuer: 'elsewhere',
      }),
      'SIGNED_DOCUMENT_INVALID',
    );
    for (const bad of [
      { iat: 1, version: 1 },
      { iss: '', iat: 1, version: 1 },
      { iss: 'x', version: 1 },
      { iss: 'x', iat: 1.5, version: 1 },
      { iss: 'x', iat: 1, version: 0 },
      { iss: 'x', iat: 1, version: '2' },
    ]) {
      const header = bytesToBase64Url(
        utf8Encode(
          JSON.stringify({ alg: 'ES256', kid: signer.keyId, typ: DOCUMENT_TYPE['residency-inventory'] }),
        ),
      );
      const payload = bytesToBase64Url(utf8Encode(JSON.stringify(bad)));
      const signature = bytesToBase64Url(await signer.sign(utf8Encode(`${header}.${payload}`)));
      await expectCode(
        verifySignedDocument(`${header}.${payload}.${signature}`, {
          kind: 'residency-inventory',
          keys: keys(signer),
        }),
        'SIGNED_DOCUMENT_INVALID',
      );
    }
  });

  it('answers any malformed input with SIGNED_DOCUMENT_INVALID, never another error (property)', async () => {
    const jws = await signDocument(signer, 'reference-values', claims(1));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(fc.string({ maxLength: 60 }), { maxLength: 5 }).map((parts) => parts.join('.')),
          fc.nat({ max: jws.length }).map((n) => jws.slice(0, n)),
        ),
        async (input) => {
          fc.pre(input !== jws);
          await expectCode(
            verifySignedDocument(input, { kind: 'reference-values', keys: keys(signer) }),
            'SIGNED_DOCUMENT_INVALID',
          );
        },
      ),
      { numRuns: 1000 },
    );
    await expectCode(
      verifySignedDocument('a'.repeat(1024 * 1024 + 1), { kind: 'reference-values', keys: keys(signer) }),
      'SIGNED_DOCUMENT_INVALID',
    );
  });
});

interface Counter {
  readonly count: number;
}
const counterCodec: DocumentBodyCodec<Counter> = {
  kind: 'reference-values',
  empty: { count: 0 },
  toClaims: (body) => ({ count: body.count }),
  fromClaims: (c) => ({ count: typeof c.count === 'number' ? c.count : Number.NaN }),
};

describe('SignedDocumentPublisher', () => {
  const clock = { now: () => new Date('2026-01-02T03:04:05.678Z') };

  it('publishes version 1 when nothing is stored, then one version per change, in order, also when concurrent', async () => {
    const repository = new MemoryDocumentRepository();
    const publisher = await SignedDocumentPublisher.open({
      codec: counterCodec,
      signer,
      issuer: 'trust',
      repository,
      clock,
    });
    expect(publisher.current).toMatchObject({ version: 1, body: { count: 0 } });
    expect(publisher.current.issuedAt.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    const results = await Promise.all(
      Array.from({ length: 50 }, () => publisher.update(({ count }) => ({ count: count + 1 }))),
    );
    expect(results.map((r) => r.version)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
    expect(publisher.current).toMatchObject({ version: 51, body: { count: 50 } });
    expect(await repository.load()).toBe(publisher.current.jws);
  });

  it('keeps the version when a change is refused, and goes on with the next change', async () => {
    const publisher = await SignedDocumentPublisher.open({
      codec: counterCodec,
      signer,
      issuer: 'trust',
      repository: new MemoryDocumentRepository(),
      clock,
    });
    const refused = publisher.update(() => {
      throw new Error('refused');
    });
    const next = publisher.update(({ count }) => ({ count: count + 5 }));
    await expect(refused).rejects.toThrow('refused');
    await expect(next).resolves.toMatchObject({ version: 2, body: { count: 5 } });
  });

  it('reloads the stored document from a file, and refuses one edited at rest or signed by another key', async () => {
    const path = join(dir, 'counter.jws');
    const repository = new FileDocumentRepository(path);
    const first = await SignedDocumentPublisher.open({
      codec: counterCodec,
      signer,
      issuer: 'trust',
      repository,
      clock,
    });
    await first.update(() => ({ count: 42 }));
    const again = await SignedDocumentPublisher.open({
      codec: counterCodec,
      signer,
      issuer: 'trust',
      repository,
      clock,
    });
    expect(again.current).toMatchObject({ version: 2, body: { count: 42 } });
    expect(again.current.jws).toBe(first.current.jws);

    const stored = (await readFile(path, 'utf8')).trim();
    const [h, , s] = stored.split('.') as [string, string, string];
    const edited = bytesToBase64Url(
      utf8Encode(JSON.stringify({ count: 1000, iss: 'trust', iat: 1, version: 9 })),
    );
    await writeFile(path, `${h}.${edited}.${s}\n`);
    await expectCode(
      SignedDocumentPublisher.open({ codec: counterCodec, signer, issuer: 'trust', repository, clock }),
      'SIGNED_DOCUMENT_INVALID',
    );
    await writeFile(path, stored);
    await expectCode(
      SignedDocumentPublisher.open({
        codec: counterCodec,
        signer: other,
        issuer: 'trust',
        repository,
        clock,
      }),
      'SIGNED_DOCUMENT_INVALID',
    );
  });

  it('reports an unwritable state directory as OUTPUT_UNWRITABLE and publishes nothing', async () => {
    const publisher = await SignedDocumentPublisher.open({
      codec: counterCodec,
      signer,
      issuer: 'trust',
      repository: new FileDocumentRepository(join(dir, 'missing-dir', 'doc.jws')),
      clock,
    }).catch((e: unknown) => e);
    expect(isTresorError(publisher) && publisher.code).toBe('OUTPUT_UNWRITABLE');
  });
});
