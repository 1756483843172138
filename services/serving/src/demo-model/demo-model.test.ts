import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../../../../test/conformance/engine-conformance.js';
import { createLlamaEngine } from '../engines/llama-engine.js';
import {
  buildDemoVocabulary,
  DEMO_MODEL_ID,
  DEMO_MODEL_SHAPE,
  demoModelBytes,
  writeDemoModel,
} from './demo-model.js';
import { GgmlType, GgufType, parseGguf, readGgufTensor } from './gguf.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-demo-model-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('demo model', () => {
  const bytes = demoModelBytes();
  const parsed = parseGguf(bytes);
  const meta = (key: string) => {
    const v = parsed.metadata.get(key);
    if (v === undefined) throw new Error(`missing ${key}`);
    return v.type === GgufType.ARRAY ? v.items : v.value;
  };

  it('is a small GGUF v3 llama model with the shape it declares', () => {
    expect(bytes.length).toBeLessThan(1024 * 1024);
    expect(parsed.version).toBe(3);
    expect(meta('general.architecture')).toBe('llama');
    expect(meta('general.name')).toBe(DEMO_MODEL_ID);
    expect(meta('llama.block_count')).toBe(DEMO_MODEL_SHAPE.blockCount);
    expect(meta('llama.embedding_length')).toBe(DEMO_MODEL_SHAPE.embeddingLength);
    expect(meta('llama.context_length')).toBe(DEMO_MODEL_SHAPE.contextLength);
    expect(meta('llama.attention.head_count')).toBe(DEMO_MODEL_SHAPE.headCount);
    const names = parsed.tensors.map((t) => t.name);
    for (const n of ['token_embd.weight', 'output_norm.weight', 'output.weight']) expect(names).toContain(n);
    for (let b = 0; b < DEMO_MODEL_SHAPE.blockCount; b++) {
      for (const part of [
        'attn_norm',
        'attn_q',
        'attn_k',
        'attn_v',
        'attn_output',
        'ffn_norm',
        'ffn_gate',
        'ffn_up',
        'ffn_down',
      ]) {
        expect(names).toContain(`blk.${b}.${part}.weight`);
      }
    }
    const vocab = (meta('tokenizer.ggml.tokens') as string[]).length;
    const embd = parsed.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(embd.dims).toEqual([DEMO_MODEL_SHAPE.embeddingLength, vocab]);
    const down = parsed.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!;
    expect(down.dims).toEqual([DEMO_MODEL_SHAPE.feedForwardLength, DEMO_MODEL_SHAPE.embeddingLength]);
    expect(parsed.tensors.every((t) => t.type === GgmlType.F32)).toBe(true);
  });

  it('has a SentencePiece vocabulary with byte fallback, specials and a chat template', () => {
    const tokens = meta('tokenizer.ggml.tokens') as string[];
    const types = meta('tokenizer.ggml.token_type') as number[];
    const scores = meta('tokenizer.ggml.scores') as number[];
    expect(meta('tokenizer.ggml.model')).toBe('llama');
    expect(tokens.length).toBeGreaterThan(400);
    expect(types).toHaveLength(tokens.length);
    expect(scores).toHaveLength(tokens.length);
    expect(new Set(tokens).size).toBe(tokens.length);
    for (let b = 0; b < 256; b++) {
      const i = tokens.indexOf(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      expect(i).toBeGreaterThan(0);
      expect(types[i]).toBe(6);
    }
    expect(tokens[meta('tokenizer.ggml.bos_token_id') as number]).toBe('<s>');
    expect(tokens[meta('tokenizer.ggml.eos_token_id') as number]).toBe('</s>');
    expect(tokens).toContain('<|im_end|>');
    expect(meta('tokenizer.chat_template')).toContain('<|im_start|>');
    expect(buildDemoVocabulary().tokens).toEqual(tokens);
  });

  it('gives control and byte tokens zero output rows so greedy text stays readable', () => {
    const out = readGgufTensor(bytes, parsed, 'output.weight');
    const { firstNormal } = buildDemoVocabulary();
    const e = DEMO_MODEL_SHAPE.embeddingLength;
    expect(out.subarray(0, firstNormal * e).every((x) => x === 0)).toBe(true);
    expect(out.subarray(firstNormal * e).some((x) => x !== 0)).toBe(true);
  });

  it('is byte-identical for a seed and different across seeds', () => {
    expect(sha256(demoModelBytes({ seed: 42 }))).toBe(sha256(bytes));
    expect(sha256(demoModelBytes({ seed: 43 }))).not.toBe(sha256(bytes));
    // A golden digest: changing the generator changes every sealed demo model's reference value.
    expect(sha256(bytes)).toMatchInlineSnapshot(
      `"e04ef1f26e4bdd92a065b540f7e8ff16634ca5fd8c4e8ba8d1d57d21550a5702"`,
    );
  });

  it('writes F16 weights when asked (norms stay F32)', () => {
    const half = parseGguf(demoModelBytes({ tensorType: 'f16' }));
    expect(half.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type).toBe(GgmlType.F16);
    expect(half.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.type).toBe(GgmlType.F32);
    expect(half.metadata.get('general.file_type')).toEqual({ type: GgufType.UINT32, value: 1 });
  });

  it('refuses seeds outside 32 bits', () => {
    for (const seed of [-1, 2 ** 32, 1.5, Number.NaN])
      expect(() => demoModelBytes({ seed })).toThrow(RangeError);
  });

  it('writes atomically with mode 0600 and refuses to leave a temp file on failure', async () => {
    const path = join(dir, 'demo.gguf');
    await writeDemoModel(path);
    expect(sha256(await readFile(path))).toBe(sha256(bytes));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(writeDemoModel(join(dir, 'missing-dir', 'x.gguf'))).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['demo.gguf']);
  });

  it('loads in llama.cpp and generates the same nonsense twice, F32 and F16', async () => {
    const f16 = join(dir, 'demo-f16.gguf');
    await writeDemoModel(f16, { tensorType: 'f16' });
    const engine = await createLlamaEngine({
      models: [
        { id: 'f32', path: join(dir, 'demo.gguf') },
        { id: 'f16', path: f16 },
      ],
      threads: 1,
      parallelSequences: 1,
    });
    try {
      for (const model of ['f32', 'f16']) {
        const run = () =>
          collect(
            engine.chat({
              model,
              messages: [{ role: 'user', content: 'Hello!' }],
              maxTokens: 10,
              temperature: 0,
            }),
          );
        const a = await run();
        const b = await run();
        expect(a.text.length).toBeGreaterThan(0);
        expect(b.text).toBe(a.text);
        // Zero output rows for control and byte tokens: the text is well-formed UTF-8 words.
        expect(a.text).not.toContain('\uFFFD');
        expect(a.events.at(-1)).toMatchObject({ finishReason: 'length', usage: { completionTokens: 10 } });
      }
    } finally {
      await engine.close();
    }
  });
});
