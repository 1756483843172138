import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { expectCode, keyStoreConformance } from '../conformance/key-store-conformance.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import { FileKeyStore, type FileKeyStoreOptions } from './file-key-store.js';
import { parseKeySet } from './key-set.js';
import { parseEnvelope } from './sealed-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-file-keystore-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const passphrase = (text = 'correct horse battery staple'): SecretKeyBytes =>
  SecretKeyBytes.copyOf(Buffer.from(text, 'utf8'));

let counter = 0;
function options(overrides: Partial<FileKeyStoreOptions> = {}): FileKeyStoreOptions {
  counter += 1;
  return {
    path: join(dir, `keys-${counter}.json`),
    passphrase: passphrase(),
    mode: 'development',
    createIfMissing: true,
    // The cheapest cost the file format accepts, to keep the unit tests fast; the default is 2^17.
    scryptLog2N: 14,
    ...overrides,
  };
}

keyStoreConformance('file', () => FileKeyStore.open(options()));

describe('file keystore on disk', () => {
  it('refuses to start in production mode, before touching the file', async () => {
    const o = options({ mode: 'production' });
    await expectCode(FileKeyStore.open(o), 'KEYSTORE_PRODUCTION_REFUSED');
    await expect(stat(o.path)).rejects.toThrow(/ENOENT/);
  });

  it('creates a 0600 file that holds no key material in the clear and leaves no temp files', async () => {
    const o = options();
    const store = await FileKeyStore.open(o);
    const kek = await store.createKek({ label: 'visible label is sealed too' });
    await store.createSigningKey('ES256');
    await store.close();
    expect((await stat(o.path)).mode & 0o777).toBe(0o600);
    const text = await readFile(o.path, 'utf8');
    const envelope = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(envelope).sort()).toEqual(['format', 'kdf', 'nonce', 'sealed', 'version']);
    expect(envelope.kdf).toMatchObject({ algorithm: 'scrypt', log2N: 14, r: 8, p: 1 });
    expect(text).not.toContain(kek.id);
    expect(text).not.toContain('visible label');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('reopens with the passphrase and keeps keys, states and wrapped data', async () => {
    const o = options();
    const first = await FileKeyStore.open(o);
    const kek = await first.createKek();
    const gone = await first.createKek();
    const dataKey = randomBytes(32);
    const wrapped = await first.wrapKey(kek.id, SecretKeyBytes.copyOf(dataKey));
    await first.destroy(gone.id);
    await first.close();
    const second = await FileKeyStore.open({ ...o, passphrase: passphrase(), createIfMissing: false });
    expect((await second.unwrapKey(wrapped)).expose((b) => Buffer.from(b).equals(dataKey))).toBe(true);
    expect((await second.describe(gone.id)).state).toBe('destroyed');
    await second.close();
  });

  it('refuses a wrong passphrase with KEYSTORE_AUTH_FAILED', async () => {
    const o = options();
    await (await FileKeyStore.open(o)).close();
    await expectCode(
      FileKeyStore.open({ ...o, passphrase: passphrase('not the passphrase') }),
      'KEYSTORE_AUTH_FAILED',
    );
  });

  it('refuses a file that others can read or write with KEYSTORE_FILE_INSECURE', async () => {
    const o = options();
    await (await FileKeyStore.open(o)).close();
    for (const mode of [0o640, 0o604, 0o620, 0o666]) {
      await chmod(o.path, mode);
      await expectCode(FileKeyStore.open({ ...o, passphrase: passphrase() }), 'KEYSTORE_FILE_INSECURE');
    }
  });

  it('detects a modified file (sealed data, nonce or weakened scrypt cost)', async () => {
    const o = options();
    await (await FileKeyStore.open(o)).close();
    const original = JSON.parse(await readFile(o.path, 'utf8')) as Record<string, unknown>;
    const sealed = Buffer.from(original.sealed as string, 'base64');
    sealed[3]! ^= 1;
    const variants: Record<string, unknown>[] = [
      { ...original, sealed: sealed.toString('base64') },
      { ...original, nonce: Buffer.alloc(12).toString('base64') },
      { ...original, kdf: { ...(original.kdf as object), log2N: 15 } },
    ];
    for (const variant of variants) {
      await writeFile(o.path, JSON.stringify(variant), { mode: 0o600 });
      await expectCode(FileKeyStore.open({ ...o, passphrase: passphrase() }), 'KEYSTORE_AUTH_FAILED');
    }
  });

  it('refuses malformed files and out-of-range scrypt costs before deriving a key', async () => {
    const o = options();
    await (await FileKeyStore.open(o)).close();
    const original = JSON.parse(await readFile(o.path, 'utf8')) as Record<string, unknown>;
    const variants: unknown[] = [
      'not json',
      [],
      { ...original, format: 'other' },
      { ...original, version: 2 },
      { ...original, kdf: { ...(original.kdf as object), log2N: 40 } },
      { ...original, kdf: { ...(original.kdf as object), log2N: 4 } },
      { ...original, kdf: { ...(original.kdf as object), r: 1024 } },
      { ...original, nonce: 'AAAA' },
      { ...original, sealed: '***' },
    ];
    for (const variant of variants) {
      await writeFile(o.path, typeof variant === 'string' ? variant : JSON.stringify(variant), {
        mode: 0o600,
      });
      await expectCode(FileKeyStore.open({ ...o, passphrase: passphrase() }), 'KEYSTORE_FILE_MALFORMED');
    }
  });

  it('parses untrusted envelopes and key sets with KEYSTORE_FILE_MALFORMED only (property)', () => {
    const codeOf = (f: () => unknown): string | null => {
      try {
        f();
        return null;
      } catch (err) {
        return isTresorError(err) ? err.code : `non-Tresor: ${String(err)}`;
      }
    };
    const envelopeLike = fc.record(
      {
        format: fc.oneof(fc.constant('tresor-keystore'), fc.string()),
        version: fc.oneof(fc.constant(1), fc.integer()),
        kdf: fc.record({
          algorithm: fc.constant('scrypt'),
          log2N: fc.integer(),
          r: fc.integer(),
          p: fc.integer(),
          salt: fc.base64String(),
        }),
        nonce: fc.base64String(),
        sealed: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          envelopeLike.map((o) => JSON.stringify(o)),
        ),
        (text) => {
          expect([null, 'KEYSTORE_FILE_MALFORMED']).toContain(codeOf(() => parseEnvelope(text)));
          expect([null, 'KEYSTORE_FILE_MALFORMED']).toContain(codeOf(() => parseKeySet(Buffer.from(text))));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('does not create a file unless asked, and refuses short passphrases', async () => {
    const o = options({ createIfMissing: false });
    await expectCode(FileKeyStore.open(o), 'INPUT_UNREADABLE');
    await expectCode(FileKeyStore.open(options({ passphrase: passphrase('short') })), 'CONFIG_INVALID');
    await expectCode(FileKeyStore.open(options({ scryptLog2N: 12 })), 'CONFIG_INVALID');
  });

  it('signs with a key parsed once, and stops the moment the key is disabled, destroyed or closed', async () => {
    const store = await FileKeyStore.open(options());
    const { id } = await store.createSigningKey('ES256');
    const other = await store.createSigningKey('ES256');
    const jwk = await store.publicKey(id);
    const publicKey = createPublicKey({
      key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
      format: 'jwk',
    });
    const signs = async (keyId: typeof id, message: Uint8Array): Promise<boolean> =>
      verify(
        'sha256',
        message,
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        await store.sign(keyId, message),
      );
    for (let n = 0; n < 3; n++) expect(await signs(id, new Uint8Array([n]))).toBe(true);
    // Each key signs with its own material, however often both are used.
    expect(await signs(other.id, new Uint8Array([7]))).toBe(false);
    await store.disable(id);
    await expectCode(store.sign(id, new Uint8Array(1)), 'KEY_DISABLED');
    await store.enable(id);
    expect(await signs(id, new Uint8Array([4]))).toBe(true);
    await store.destroy(id);
    await expectCode(store.sign(id, new Uint8Array(1)), 'KEY_DESTROYED');
    expect(await store.sign(other.id, new Uint8Array(1))).toHaveLength(64);
    await store.close();
    await expectCode(store.sign(other.id, new Uint8Array(1)), 'KEYSTORE_UNAVAILABLE');
  });

  it('refuses use after close', async () => {
    const store = await FileKeyStore.open(options());
    await store.close();
    await expectCode(store.list(), 'KEYSTORE_UNAVAILABLE');
  });
});
