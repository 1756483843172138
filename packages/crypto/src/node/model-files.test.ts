import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { ModelKey } from '../sealed-model-key.js';
import { nobleSha256 } from '../sealed-model-sha256.js';
import { MAX_DEFERRED_TAGS } from './seal-model-file.js';
import {
  FileByteSource,
  inspectSealedModelFile,
  nodeSha256,
  readModelKeyFile,
  sealModelFile,
  unsealModelFile,
  type ModelFileProgress,
} from './index.js';

const key = await ModelKey.import(new Uint8Array(32).fill(9));
const otherKey = await ModelKey.import(new Uint8Array(32).fill(10));
let dir: string;
const path = (name: string): string => join(dir, name);
const model = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 13) & 0xff);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-model-files-'));
  writeFileSync(path('model.bin'), model);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (err) {
    if (err instanceof TresorError) return err.code;
    throw err;
  }
}

describe('sealModelFile / unsealModelFile', () => {
  it('round trips a file, reporting progress from zero up to the total in each phase', async () => {
    const progress: ModelFileProgress[] = [];
    const header = await sealModelFile({
      input: path('model.bin'),
      output: path('model.tresor'),
      key,
      chunkSize: 4096,
      metadata: { name: 'test' },
      onProgress: (p) => progress.push(p),
    });
    expect(header).toMatchObject({
      plaintextLength: model.length,
      chunkSize: 4096,
      metadata: { name: 'test' },
    });
    await unsealModelFile({
      input: path('model.tresor'),
      output: path('model.out'),
      key,
      durable: false,
      onProgress: (p) => progress.push(p),
    });
    expect(Buffer.compare(readFileSync(path('model.out')), model)).toBe(0);
    for (const phase of ['sealing', 'unsealing'] as const) {
      const events = progress.filter((p) => p.phase === phase);
      expect(events[0], phase).toEqual({ phase, bytes: 0, total: model.length });
      expect(events.at(-1), phase).toEqual({ phase, bytes: model.length, total: model.length });
    }
    expect(progress.map((p) => p.phase)).toEqual([
      ...progress.filter((p) => p.phase === 'sealing').map(() => 'sealing'),
      ...progress.filter((p) => p.phase === 'unsealing').map(() => 'unsealing'),
    ]);
    expect(readdirSync(dir).sort()).toEqual(['model.bin', 'model.out', 'model.tresor']);
  });

  it('refuses to overwrite an existing output unless forced', async () => {
    writeFileSync(path('model.tresor'), 'keep me');
    expect(await codeOf(sealModelFile({ input: path('model.bin'), output: path('model.tresor'), key }))).toBe(
      'USAGE_INVALID',
    );
    expect(readFileSync(path('model.tresor'), 'utf8')).toBe('keep me');
    await sealModelFile({ input: path('model.bin'), output: path('model.tresor'), key, force: true });
    expect((await inspectSealedModelFile(path('model.tresor'))).header.plaintextLength).toBe(model.length);
    expect(readdirSync(dir).sort()).toEqual(['model.bin', 'model.tresor']);
  });

  it('leaves no output and no temporary file when unsealing fails', async () => {
    await sealModelFile({ input: path('model.bin'), output: path('model.tresor'), key, chunkSize: 4096 });
    const sealed = readFileSync(path('model.tresor'));
    sealed[sealed.length - 100]! ^= 1;
    writeFileSync(path('tampered.tresor'), sealed);
    writeFileSync(path('cut.tresor'), sealed.subarray(0, sealed.length - 1));
    const before = readdirSync(dir).sort();
    const unsealTo = (input: string, withKey = key) =>
      codeOf(unsealModelFile({ input: path(input), output: path('out.bin'), key: withKey }));
    expect(await unsealTo('tampered.tresor')).toBe('SEALED_MODEL_TAMPERED');
    expect(await unsealTo('cut.tresor')).toBe('SEALED_MODEL_TRUNCATED');
    expect(await unsealTo('model.tresor', otherKey)).toBe('SEALED_MODEL_WRONG_KEY');
    expect(await unsealTo('model.bin')).toBe('SEALED_MODEL_MALFORMED');
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  describe('refuses with SEALED_MODEL_INPUT_CHANGED and writes nothing when the input changes while it is sealed', () => {
    const changes: Record<string, () => void> = {
      'rewritten in place': () => {
        const fd = openSync(path('model.bin'), 'r+');
        writeSync(fd, Uint8Array.of(model[0]! ^ 1), 0, 1, 0);
        closeSync(fd);
      },
      'appended to': () => {
        appendFileSync(path('model.bin'), Uint8Array.of(1));
      },
      cut: () => {
        truncateSync(path('model.bin'), model.length - 1);
      },
    };
    for (const [change, apply] of Object.entries(changes)) {
      it(change, async () => {
        // Old times first, so that the write is seen even where file times tick in jiffies.
        utimesSync(path('model.bin'), new Date(Date.UTC(2020, 0, 1)), new Date(Date.UTC(2020, 0, 1)));
        const result = codeOf(
          sealModelFile({
            input: path('model.bin'),
            output: path('model.tresor'),
            key,
            chunkSize: 4096,
            onProgress: (p) => {
              // The first event comes after the input was opened and before it is read.
              if (p.bytes === 0) apply();
            },
          }),
        );
        expect(await result).toBe('SEALED_MODEL_INPUT_CHANGED');
        expect(readdirSync(dir)).toEqual(['model.bin']);
      });
    }
  });

  it('refuses more chunks than it can hold tags for, before writing anything', async () => {
    writeFileSync(path('many.bin'), new Uint8Array(MAX_DEFERRED_TAGS + 1));
    const error = await sealModelFile({
      input: path('many.bin'),
      output: path('many.tresor'),
      key,
      chunkSize: 1,
    }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'USAGE_INVALID' });
    expect((error as Error).message).toContain('use a chunk size of at least 2 bytes');
    expect(readdirSync(dir).sort()).toEqual(['many.bin', 'model.bin']);
  });

  it('stops on abort between blocks, rejecting with the signal reason and removing the temporary file', async () => {
    // 64-byte chunks: 4096 chunks (256 KiB) per block, so this model is four blocks.
    writeFileSync(path('model.bin'), new Uint8Array(1024 * 1024));
    for (const operation of ['seal', 'unseal'] as const) {
      const controller = new AbortController();
      const blocksDone: number[] = [];
      const options = {
        key,
        signal: controller.signal,
        onProgress: (p: ModelFileProgress) => {
          blocksDone.push(p.bytes);
          if (p.bytes > 0) controller.abort();
        },
      };
      const run =
        operation === 'seal'
          ? sealModelFile({
              input: path('model.bin'),
              output: path('model.tresor'),
              chunkSize: 64,
              ...options,
            })
          : unsealModelFile({ input: path('sealed.tresor'), output: path('model.out'), ...options });
      await expect(run, operation).rejects.toMatchObject({ name: 'AbortError' });
      expect(blocksDone.at(-1), operation).toBeLessThan(1024 * 1024);
      if (operation === 'seal') {
        expect(readdirSync(dir)).toEqual(['model.bin']);
        await sealModelFile({ input: path('model.bin'), output: path('sealed.tresor'), key, chunkSize: 64 });
      }
    }
    expect(readdirSync(dir).sort()).toEqual(['model.bin', 'sealed.tresor']);
  });

  it('reports unreadable inputs and unwritable outputs with their codes', async () => {
    const seal = (input: string, output: string) => codeOf(sealModelFile({ input, output, key }));
    expect(await seal(path('missing.bin'), path('x.tresor'))).toBe('INPUT_UNREADABLE');
    expect(await seal(dir, path('x.tresor'))).toBe('INPUT_UNREADABLE');
    expect(await seal(path('model.bin'), path('no-such-dir/x.tresor'))).toBe('OUTPUT_UNWRITABLE');
    expect(await codeOf(inspectSealedModelFile(path('missing.tresor')))).toBe('INPUT_UNREADABLE');
    expect(readdirSync(dir)).toEqual(['model.bin']);
  });
});

describe('inspectSealedModelFile', () => {
  it('reads the header without a key and reports the size the header implies', async () => {
    await sealModelFile({
      input: path('model.bin'),
      output: path('model.tresor'),
      key,
      keyId: 'kbs:///a/b/c',
    });
    const info = await inspectSealedModelFile(path('model.tresor'));
    expect(info.header.keyId).toBe('kbs:///a/b/c');
    expect(info.fileSize).toBe(info.sealedSize);
    writeFileSync(path('cut.tresor'), readFileSync(path('model.tresor')).subarray(0, info.fileSize - 5));
    const cut = await inspectSealedModelFile(path('cut.tresor'));
    expect(cut.sealedSize - cut.fileSize).toBe(5);
  });
});

describe('readModelKeyFile', () => {
  it('reads raw and hex key files to the same key', async () => {
    writeFileSync(path('raw.key'), new Uint8Array(32).fill(9));
    writeFileSync(path('hex.key'), `${'09'.repeat(32)}\n`);
    expect((await readModelKeyFile(path('raw.key'))).fingerprint).toBe(key.fingerprint);
    expect((await readModelKeyFile(path('hex.key'))).fingerprint).toBe(key.fingerprint);
  });

  it('refuses wrong shapes and sizes with SEALED_MODEL_KEY_INVALID and missing files with INPUT_UNREADABLE', async () => {
    writeFileSync(path('short.key'), new Uint8Array(31));
    writeFileSync(path('big.key'), new Uint8Array(10_000_000));
    writeFileSync(path('crlf.key'), `${'09'.repeat(32)}\r\n`);
    for (const name of ['short.key', 'big.key', 'crlf.key']) {
      expect(await codeOf(readModelKeyFile(path(name))), name).toBe('SEALED_MODEL_KEY_INVALID');
    }
    expect(await codeOf(readModelKeyFile(path('missing.key')))).toBe('INPUT_UNREADABLE');
    expect(await codeOf(readModelKeyFile(dir))).toBe('INPUT_UNREADABLE');
  });
});

describe('FileByteSource', () => {
  it('never allocates more than the file holds, however much is asked', async () => {
    const source = await FileByteSource.open(path('model.bin'));
    try {
      expect((await source.read(2 ** 31)).length).toBe(model.length);
      expect((await source.read(2 ** 31)).length).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('serves exact reads across its read-ahead, including a changed length', async () => {
    const source = await FileByteSource.open(path('model.bin'));
    try {
      const parts = [
        await source.read(1000),
        await source.read(1000),
        await source.read(7),
        await source.read(1e6),
      ];
      expect(Buffer.compare(Buffer.concat(parts), model)).toBe(0);
      expect(parts.map((p) => p.length)).toEqual([1000, 1000, 7, model.length - 2007]);
    } finally {
      await source.close();
    }
  });
});

describe('nodeSha256', () => {
  it('matches the FIPS 180-2 "abc" vector and the browser hasher', () => {
    const abc = new TextEncoder().encode('abc');
    for (const factory of [nodeSha256, nobleSha256]) {
      const hash = factory();
      hash.update(abc.subarray(0, 1));
      hash.update(abc.subarray(1));
      expect(Buffer.from(hash.digest()).toString('hex')).toBe(
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
    }
  });
});
