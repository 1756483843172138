import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { FileKeyStore, SecretKeyBytes, type KeyId } from '@tresor/keystore';
import { parseResourcePath, resourcePath } from './resource-path.js';
import { FileResourceRepository, MemoryResourceRepository } from './resource-repository.js';
import { MAX_RESOURCE_BYTES, ResourceStore } from './resource-store.js';

let dir: string;
let keyStore: FileKeyStore;
let kekId: KeyId;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-resources-'));
  keyStore = await FileKeyStore.open({
    path: join(dir, 'keys'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('passphrase for tests')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  kekId = (await keyStore.createKek()).id;
});
afterAll(async () => {
  await keyStore.close();
  await rm(dir, { recursive: true, force: true });
});

async function code(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

const reveal = (store: ResourceStore, path: string): Promise<string> =>
  store.release(parseResourcePath(path), (secret) => Promise.resolve(new TextDecoder().decode(secret)));

describe('resource paths', () => {
  it.each(['a/b', 'a/b/c/d', 'a/../c', './b/c', 'a/b c/d', 'a//c', `${'x'.repeat(129)}/b/c`])(
    'refuses %j',
    (text) => {
      expect(() => parseResourcePath(text)).toThrow(
        expect.objectContaining({ code: 'RESOURCE_PATH_INVALID' }) as Error,
      );
    },
  );

  it('never throws anything but RESOURCE_PATH_INVALID (property)', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          return parseResourcePath(text).text === text;
        } catch (err) {
          return isTresorError(err) && err.code === 'RESOURCE_PATH_INVALID';
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ResourceStore, envelope-encrypted through the keystore', () => {
  it('stores only ciphertext in files, readable by the owner only, and releases the plaintext on loan', async () => {
    const root = join(dir, 'store-a');
    const store = await ResourceStore.open({ keyStore, kekId, repository: new FileResourceRepository(root) });
    await store.put(resourcePath('acme', 'key', 'model'), new TextEncoder().encode('top secret model key'));
    const file = join(root, 'resources', 'acme', 'key', 'model');
    expect((await readFile(file)).includes(Buffer.from('top secret'))).toBe(false);
    expect((await stat(file)).mode & 0o077).toBe(0);
    expect((await readFile(join(root, 'data-key'), 'utf8')).startsWith(`v1.A256KW.${kekId}.`)).toBe(true);
    expect(await reveal(store, 'acme/key/model')).toBe('top secret model key');
    // Reopened from disk with the same keystore, the store reads what it wrote.
    const reopened = await ResourceStore.open({
      keyStore,
      kekId,
      repository: new FileResourceRepository(root),
    });
    expect(await reveal(reopened, 'acme/key/model')).toBe('top secret model key');
    expect((await reopened.list()).map((p) => p.text)).toEqual(['acme/key/model']);
  });

  it('zeroes the lent plaintext once the borrower returns', async () => {
    const store = await ResourceStore.open({ keyStore, kekId, repository: new MemoryResourceRepository() });
    await store.put(resourcePath('a', 'b', 'c'), new Uint8Array([1, 2, 3]));
    let kept: Uint8Array | undefined;
    await store.release(resourcePath('a', 'b', 'c'), (secret) => {
      kept = secret;
      return Promise.resolve();
    });
    expect([...kept!]).toEqual([0, 0, 0]);
  });

  it('does not open a sealed resource copied to another path (ENCRYPTED_FIELD_INVALID)', async () => {
    const root = join(dir, 'store-b');
    const store = await ResourceStore.open({ keyStore, kekId, repository: new FileResourceRepository(root) });
    await store.put(resourcePath('acme', 'key', 'a'), new TextEncoder().encode('secret a'));
    await store.put(resourcePath('acme', 'key', 'b'), new TextEncoder().encode('secret b'));
    await writeFile(
      join(root, 'resources', 'acme', 'key', 'b'),
      await readFile(join(root, 'resources', 'acme', 'key', 'a')),
    );
    expect(await code(() => reveal(store, 'acme/key/b'))).toBe('ENCRYPTED_FIELD_INVALID');
  });

  it('refuses missing resources, empty and oversized ones', async () => {
    const store = await ResourceStore.open({ keyStore, kekId, repository: new MemoryResourceRepository() });
    expect(await code(() => reveal(store, 'a/b/c'))).toBe('RESOURCE_NOT_FOUND');
    expect(await code(() => store.remove(resourcePath('a', 'b', 'c')))).toBe('RESOURCE_NOT_FOUND');
    expect(await code(() => store.put(resourcePath('a', 'b', 'c'), new Uint8Array(0)))).toBe(
      'INPUT_MALFORMED',
    );
    expect(
      await code(() => store.put(resourcePath('a', 'b', 'c'), new Uint8Array(MAX_RESOURCE_BYTES + 1))),
    ).toBe('INPUT_MALFORMED');
  });

  it('stops releasing once the KEK is disabled (KEY_DISABLED)', async () => {
    const kek = (await keyStore.createKek()).id;
    const store = await ResourceStore.open({
      keyStore,
      kekId: kek,
      repository: new MemoryResourceRepository(),
    });
    await store.put(resourcePath('a', 'b', 'c'), new Uint8Array([7]));
    await keyStore.disable(kek);
    expect(await code(() => reveal(store, 'a/b/c'))).toBe('KEY_DISABLED');
  });
});
