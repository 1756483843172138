/**
 * The tiny demo model: a valid llama-architecture GGUF written from code, so tests and `npm start`
 * have a model without downloading anything. Its weights are random (from a seeded PRNG, so a
 * given seed always gives the same bytes) and it produces nonsense, but it runs through exactly the
 * code path a real model does: llama.cpp's loader, its SentencePiece tokenizer with byte fallback,
 * the chat template, sampling and embeddings.
 *
 * Tensor names and shapes follow llama.cpp's LLM_ARCH_LLAMA (src/llama-model.cpp, `create_tensor`
 * calls for token_embd, output_norm, output and blk.N.{attn_norm, attn_q, attn_k, attn_v,
 * attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}); shapes are in ggml order (ne[0] = input).
 */

import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { encodeGguf, GgmlType, gguf, GgufType, type GgufTensor, type GgufValue } from './gguf.js';

export const DEMO_MODEL_ID = 'tresor-demo';
export const DEMO_MODEL_DEFAULT_SEED = 42;

/** Shape of the demo network. Small enough to load in milliseconds and stay well under 1 MB. */
export const DEMO_MODEL_SHAPE = {
  contextLength: 256,
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 128,
  headCount: 4,
  headCountKv: 4,
} as const;

/** SentencePiece's word-boundary marker (U+2581): spaces become this before tokenizing. */
const SPACE = '\u2581';

/** llama.cpp `llama_token_type` values stored in `tokenizer.ggml.token_type`. */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'] as const;

/** ChatML, the template Qwen and many instruct models ship; node-llama-cpp recognises it. */
export const DEMO_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Text the vocabulary's merges are learnt from (own words, no licence strings attached). */
const CORPUS = `
The keeper of the lighthouse climbed the stairs every evening and lit the lamp before the ships came
home. The sea was grey and the wind was cold, but the light was warm and bright. Sailors on the water
saw the beam turning over the waves and knew where the rocks were hidden. In the morning the keeper
wrote the weather in a small book: the speed of the wind, the height of the waves, the names of the
ships that passed. A model that answers questions should be like that light: it shows the way, it does
not ask who you are, and it keeps no record of what you said. Secrets stay inside the tower. The
keys are kept by the people who own them, and the door opens only for those who can prove they are
who they say. We measure everything, we check everything, and we trust only what we can verify.
Numbers like 0 1 2 3 4 5 6 7 8 9 and 10 or 100 appear too, with questions? answers! lists, and more.
`;

const BASE_CHARS =
  `${SPACE}abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'"()-_/*+=<>[]{}#@&%$` as const;

const MERGE_COUNT = 220;

export interface DemoVocabulary {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly types: readonly number[];
  /** Index of the first ordinary (non-control, non-byte) token. */
  readonly firstNormal: number;
}

/**
 * Learns byte-pair merges from the corpus (most frequent adjacent pair first, ties broken by the
 * pair's text so the result never depends on iteration order) and lays out the vocabulary as
 * llama.cpp's SPM tokenizer expects: specials, the 256 byte-fallback tokens `<0xXX>`, single
 * characters, then merges whose score ranks them (higher merges first).
 */
export function buildDemoVocabulary(): DemoVocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (text: string, score: number, type: number): void => {
    tokens.push(text);
    scores.push(score);
    types.push(type);
  };
  for (const s of SPECIAL_TOKENS) add(s, 0, s === '<unk>' ? TokenType.UNKNOWN : TokenType.CONTROL);
  for (let b = 0; b < 256; b++)
    add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0, TokenType.BYTE);
  const firstNormal = tokens.length;
  const known = new Set<string>();
  for (const ch of BASE_CHARS) {
    known.add(ch);
    add(ch, -1e4, TokenType.NORMAL);
  }

  const wordCounts = new Map<string, number>();
  for (const w of CORPUS.split(/\s+/u).filter((x) => x.length > 0)) {
    const key = SPACE + w;
    wordCounts.set(key, (wordCounts.get(key) ?? 0) + 1);
  }
  let words = [...wordCounts.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([w, n]) => ({ symbols: Array.from(w).filter((c) => known.has(c)), n }));
  for (let rank = 0; rank < MERGE_COUNT; rank++) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]!}\u0000${symbols[i + 1]!}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, n] of [...pairs.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (n > bestCount) {
        best = key;
        bestCount = n;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split('\u0000') as [string, string];
    const merged = left + right;
    if (!known.has(merged)) {
      known.add(merged);
      add(merged, -rank, TokenType.NORMAL);
    }
    words = words.map(({ symbols, n }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          out.push(merged);
          i++;
        } else {
          out.push(symbols[i]!);
        }
      }
      return { symbols: out, n };
    });
  }
  return { tokens, scores, types, firstNormal };
}

/** mulberry32: a tiny, well-mixed 32-bit PRNG; plenty for reproducible random weights. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoModelOptions {
  /** Seed for the weights; equal seeds give byte-identical files. Default 42. */
  readonly seed?: number;
  /** Tensor storage; default F32. */
  readonly tensorType?: 'f32' | 'f16';
}

/** The complete GGUF file of the demo model. */
export function demoModelBytes(options: DemoModelOptions = {}): Uint8Array {
  const seed = options.seed ?? DEMO_MODEL_DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new RangeError('seed must be an integer between 0 and 2^32-1');
  }
  const type = options.tensorType === 'f16' ? GgmlType.F16 : GgmlType.F32;
  const vocab = buildDemoVocabulary();
  const {
    contextLength,
    embeddingLength: e,
    blockCount,
    feedForwardLength: ff,
    headCount,
    headCountKv,
  } = DEMO_MODEL_SHAPE;
  const headDim = e / headCount;
  const kv = headDim * headCountKv;
  const nVocab = vocab.tokens.length;
  const random = mulberry32(seed);
  const uniform = (dims: readonly number[], bound: number): Float32Array => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * bound;
    return data;
  };
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
  // Uniform(-b, b) has variance b²/3: b = sqrt(3/fan_in) keeps activations near unit scale.
  const linear = (fanIn: number, fanOut: number): Float32Array =>
    uniform([fanIn, fanOut], Math.sqrt(3 / fanIn));

  const tensors: GgufTensor[] = [];
  const push = (name: string, dims: readonly number[], data: Float32Array): void => {
    tensors.push({ name, dims, type: name.endsWith('norm.weight') ? GgmlType.F32 : type, data });
  };
  push('token_embd.weight', [e, nVocab], uniform([e, nVocab], 1));
  const output = uniform([e, nVocab], 0.4);
  // Control and byte tokens get all-zero output rows, so their logit is exactly 0 while the
  // maximum over the ordinary tokens is positive: greedy decoding emits readable (if meaningless)
  // words rather than end-of-sequence or stray bytes that are not UTF-8.
  output.fill(0, 0, vocab.firstNormal * e);
  push('output_norm.weight', [e], ones(e));
  push('output.weight', [e, nVocab], output);
  for (let b = 0; b < blockCount; b++) {
    push(`blk.${b}.attn_norm.weight`, [e], ones(e));
    push(`blk.${b}.attn_q.weight`, [e, e], linear(e, e));
    push(`blk.${b}.attn_k.weight`, [e, kv], linear(e, kv));
    push(`blk.${b}.attn_v.weight`, [e, kv], linear(e, kv));
    push(`blk.${b}.attn_output.weight`, [e, e], linear(e, e));
    push(`blk.${b}.ffn_norm.weight`, [e], ones(e));
    push(`blk.${b}.ffn_gate.weight`, [e, ff], linear(e, ff));
    push(`blk.${b}.ffn_up.weight`, [e, ff], linear(e, ff));
    push(`blk.${b}.ffn_down.weight`, [ff, e], linear(ff, e));
  }

  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string(DEMO_MODEL_ID)],
    [
      'general.description',
      gguf.string(`Tresor demo model: random weights (seed ${seed}), produces nonsense.`),
    ],
    ['general.alignment', gguf.u32(32)],
    // llama_ftype: 0 = all F32, 1 = mostly F16.
    ['general.file_type', gguf.u32(type === GgmlType.F32 ? 0 : 1)],
    ['llama.vocab_size', gguf.u32(nVocab)],
    ['llama.context_length', gguf.u32(contextLength)],
    ['llama.embedding_length', gguf.u32(e)],
    ['llama.block_count', gguf.u32(blockCount)],
    ['llama.feed_forward_length', gguf.u32(ff)],
    ['llama.attention.head_count', gguf.u32(headCount)],
    ['llama.attention.head_count_kv', gguf.u32(headCountKv)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['llama.rope.dimension_count', gguf.u32(headDim)],
    ['llama.rope.freq_base', gguf.f32(10000)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array(GgufType.STRING, vocab.tokens)],
    ['tokenizer.ggml.scores', gguf.array(GgufType.FLOAT32, vocab.scores)],
    ['tokenizer.ggml.token_type', gguf.array(GgufType.INT32, vocab.types)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
    ['tokenizer.ggml.add_space_prefix', gguf.bool(true)],
    ['tokenizer.chat_template', gguf.string(DEMO_CHAT_TEMPLATE)],
  ]);
  return encodeGguf({ metadata, tensors });
}

/**
 * Writes the demo model to `path` (mode 0600). The bytes go to a temporary sibling first and are
 * renamed into place, so a reader never sees a half-written model.
 */
export async function writeDemoModel(path: string, options: DemoModelOptions = {}): Promise<void> {
  const bytes = demoModelBytes(options);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
