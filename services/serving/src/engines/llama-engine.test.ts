import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, describeEngineConformance } from '../../../../test/conformance/engine-conformance.js';
import { DEMO_MODEL_ID, writeDemoModel } from '../demo-model/demo-model.js';
import { createLlamaEngine } from './llama-engine.js';

let dir: string;
let modelPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-llama-engine-'));
  modelPath = join(dir, 'demo.gguf');
  await writeDemoModel(modelPath);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeEngineConformance(
  'llama (demo model)',
  async () => ({
    engine: await createLlamaEngine({ models: [{ id: DEMO_MODEL_ID, path: modelPath }], threads: 1 }),
    model: DEMO_MODEL_ID,
  }),
  { exactUnderConcurrency: true },
);

async function loadError(run: () => Promise<unknown>): Promise<TresorError> {
  try {
    await run();
  } catch (e) {
    if (e instanceof TresorError) return e;
    throw e;
  }
  throw new Error('expected a TresorError');
}

describe('llama engine', () => {
  it('refuses a missing file with MODEL_LOAD_FAILED', async () => {
    const e = await loadError(() =>
      createLlamaEngine({ models: [{ id: 'x', path: join(dir, 'absent.gguf') }] }),
    );
    expect(e.code).toBe('MODEL_LOAD_FAILED');
    expect(e.message).toContain('"x"');
  });

  it('refuses a file that is not GGUF with MODEL_LOAD_FAILED', async () => {
    const path = join(dir, 'garbage.gguf');
    await writeFile(path, Buffer.from('definitely not a model'.repeat(100)));
    const e = await loadError(() => createLlamaEngine({ models: [{ id: 'x', path }] }));
    expect(e.code).toBe('MODEL_LOAD_FAILED');
  });

  it('refuses a model whose SHA-256 does not match', async () => {
    const e = await loadError(() =>
      createLlamaEngine({ models: [{ id: 'x', path: modelPath, sha256: '0'.repeat(64) }] }),
    );
    expect(e.code).toBe('MODEL_LOAD_FAILED');
    expect(e.message).toContain('does not match');
  });

  it('refuses a malformed expected SHA-256', async () => {
    const e = await loadError(() =>
      createLlamaEngine({ models: [{ id: 'x', path: modelPath, sha256: 'ABC' }] }),
    );
    expect(e.code).toBe('MODEL_LOAD_FAILED');
  });

  it('refuses duplicate ids, no models and a bad pool size before loading anything', async () => {
    await expect(
      createLlamaEngine({
        models: [
          { id: 'a', path: modelPath },
          { id: 'a', path: modelPath },
        ],
      }),
    ).rejects.toThrow(RangeError);
    await expect(createLlamaEngine({ models: [] })).rejects.toThrow(RangeError);
    await expect(
      createLlamaEngine({ models: [{ id: 'a', path: modelPath }], parallelSequences: 0 }),
    ).rejects.toThrow(RangeError);
  });

  it('loads with a verified SHA-256, reports it and the context, and refuses over-long prompts', async () => {
    const { createHash } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    const sha256 = createHash('sha256')
      .update(await readFile(modelPath))
      .digest('hex');
    const engine = await createLlamaEngine({
      models: [{ id: 'demo', path: modelPath, sha256, contextLength: 64 }],
      parallelSequences: 1,
      threads: 1,
    });
    try {
      const [m] = await engine.listModels();
      expect(m).toMatchObject({ id: 'demo', sha256 });
      expect(m!.contextLength).toBeGreaterThanOrEqual(64);
      const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
      const e = await loadError(() => collect(engine.complete({ model: 'demo', prompt: long })));
      expect(e.code).toBe('API_REQUEST_INVALID');
      // One sequence: a second request waits for the first instead of failing.
      const [a, b] = await Promise.all([
        collect(engine.complete({ model: 'demo', prompt: 'one', maxTokens: 4, temperature: 0 })),
        collect(engine.complete({ model: 'demo', prompt: 'two', maxTokens: 4, temperature: 0 })),
      ]);
      expect(a.events.at(-1)).toMatchObject({ type: 'done', usage: { completionTokens: 4 } });
      expect(b.events.at(-1)).toMatchObject({ type: 'done', usage: { completionTokens: 4 } });
    } finally {
      await engine.close();
    }
  });

  it('frees its sequence when the consumer stops reading early', async () => {
    const engine = await createLlamaEngine({
      models: [{ id: 'demo', path: modelPath }],
      parallelSequences: 1,
      threads: 1,
    });
    try {
      for (let i = 0; i < 3; i++) {
        for await (const e of engine.complete({
          model: 'demo',
          prompt: 'hello',
          maxTokens: 32,
          temperature: 0,
        })) {
          expect(e.type).toBe('delta');
          break;
        }
      }
      const after = await collect(
        engine.complete({ model: 'demo', prompt: 'hello', maxTokens: 2, temperature: 0 }),
      );
      expect(after.events.at(-1)).toMatchObject({ type: 'done', finishReason: 'length' });
    } finally {
      await engine.close();
    }
  });

  it('uses the seed for sampled (temperature > 0) generation', async () => {
    const engine = await createLlamaEngine({ models: [{ id: 'demo', path: modelPath }], threads: 1 });
    try {
      const run = (seed: number) =>
        collect(engine.complete({ model: 'demo', prompt: 'the sea', maxTokens: 12, temperature: 1, seed }));
      const a = await run(7);
      const b = await run(7);
      expect(b.text).toBe(a.text);
    } finally {
      await engine.close();
    }
  });
});
