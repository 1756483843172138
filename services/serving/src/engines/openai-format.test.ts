import { TresorError } from '@tresor/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GenerationEvent } from '../engine/engine.js';
import { createEchoEngine } from './echo-engine.js';
import {
  aggregateGeneration,
  chatCompletionResponse,
  chatCompletionSse,
  completionSse,
  embeddingResponse,
  float32Base64,
  modelListResponse,
  newResponseId,
  openAiErrorBody,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  parseSse,
  parseUpstreamChunk,
  primeGeneration,
  SSE_DONE,
  upstreamFailure,
} from './openai-format.js';

async function* events(...list: GenerationEvent[]): AsyncGenerator<GenerationEvent> {
  for (const e of list) {
    await Promise.resolve();
    yield e;
  }
}
const done = (finishReason: 'stop' | 'length' | 'cancelled' = 'stop'): GenerationEvent => ({
  type: 'done',
  finishReason,
  usage: { promptTokens: 3, completionTokens: 2 },
});
const identity = { id: 'chatcmpl-abc', created: 1_700_000_000, model: 'm' };

async function drain(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const s of it) out.push(s);
  return out;
}

function code(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    return e instanceof TresorError ? e.code : 'other';
  }
  return 'ok';
}

describe('OpenAI request parsing', () => {
  it('maps a chat request with every supported field', () => {
    const r = parseChatCompletionRequest({
      model: 'm',
      messages: [
        { role: 'developer', content: 'be terse' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
      ],
      max_completion_tokens: 9,
      max_tokens: 3,
      temperature: 0.5,
      top_p: 0.9,
      seed: 1,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      user: 'ignored',
      frequency_penalty: 0,
    });
    expect(r).toEqual({
      request: {
        model: 'm',
        messages: [
          { role: 'system', content: 'be terse' },
          { role: 'user', content: 'ab' },
        ],
        maxTokens: 9,
        temperature: 0.5,
        topP: 0.9,
        seed: 1,
        stop: ['END'],
      },
      stream: true,
      includeUsage: true,
    });
  });

  it('refuses malformed or unsupported chat requests with API_REQUEST_INVALID', () => {
    const ok = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
    for (const bad of [
      null,
      'text',
      {},
      { ...ok, model: '' },
      { ...ok, messages: [] },
      { ...ok, messages: [{ role: 'tool', content: 'x' }] },
      { ...ok, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      { ...ok, max_tokens: 0 },
      { ...ok, max_tokens: 1.5 },
      { ...ok, temperature: 3 },
      { ...ok, top_p: 0 },
      { ...ok, seed: -1 },
      { ...ok, stop: ['a', 'b', 'c', 'd', 'e'] },
      { ...ok, stop: '' },
      { ...ok, n: 2 },
      { ...ok, tools: [] },
      { ...ok, logprobs: true },
      { ...ok, response_format: { type: 'json_object' } },
      { ...ok, stream_options: { include_usage: true } },
    ]) {
      expect(
        code(() => parseChatCompletionRequest(bad)),
        JSON.stringify(bad),
      ).toBe('API_REQUEST_INVALID');
    }
    expect(code(() => parseChatCompletionRequest({ ...ok, stream: false, n: 1, stop: null }))).toBe('ok');
  });

  it('names the offending field in the message', () => {
    try {
      parseChatCompletionRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 9 });
    } catch (e) {
      expect((e as Error).message).toContain('temperature');
    }
  });

  it('maps completions with OpenAI’s default of 16 tokens and refuses what it cannot do', () => {
    expect(parseCompletionRequest({ model: 'm', prompt: ['p'] })).toEqual({
      request: { model: 'm', prompt: 'p', maxTokens: 16 },
      stream: false,
      includeUsage: false,
    });
    for (const bad of [
      { model: 'm' },
      { model: 'm', prompt: ['a', 'b'] },
      { model: 'm', prompt: [1, 2] },
      { model: 'm', prompt: 'p', echo: true },
      { model: 'm', prompt: 'p', logprobs: 2 },
      { model: 'm', prompt: 'p', suffix: 'x' },
      { model: 'm', prompt: 'p', best_of: 3 },
    ]) {
      expect(
        code(() => parseCompletionRequest(bad)),
        JSON.stringify(bad),
      ).toBe('API_REQUEST_INVALID');
    }
  });

  it('maps embeddings (string or list) and refuses token arrays, empties and dimensions', () => {
    expect(parseEmbeddingRequest({ model: 'm', input: 'x' })).toEqual({
      request: { model: 'm', input: ['x'] },
      encodingFormat: 'float',
    });
    expect(
      parseEmbeddingRequest({ model: 'm', input: ['a', 'b'], encoding_format: 'base64' }).encodingFormat,
    ).toBe('base64');
    for (const bad of [
      { model: 'm', input: [1, 2] },
      { model: 'm', input: '' },
      { model: 'm', input: [] },
      { model: 'm', input: 'x', dimensions: 8 },
      { model: 'm', input: 'x', encoding_format: 'int8' },
    ]) {
      expect(
        code(() => parseEmbeddingRequest(bad)),
        JSON.stringify(bad),
      ).toBe('API_REQUEST_INVALID');
    }
  });
});

describe('OpenAI responses', () => {
  it('builds a chat.completion with usage totals', async () => {
    const result = await aggregateGeneration(
      events({ type: 'delta', text: 'he' }, { type: 'delta', text: 'y' }, done()),
    );
    expect(chatCompletionResponse(identity, result)).toEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'm',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'hey', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
  });

  it('refuses generation streams without exactly one final done', async () => {
    await expect(aggregateGeneration(events({ type: 'delta', text: 'x' }))).rejects.toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
    });
    await expect(aggregateGeneration(events(done(), { type: 'delta', text: 'x' }))).rejects.toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
    });
    await expect(
      drain(chatCompletionSse(identity, events({ type: 'delta', text: 'x' }), { includeUsage: false })),
    ).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
  });

  it('streams chat chunks: role first, deltas, finish, usage chunk, [DONE]', async () => {
    const out = await drain(
      chatCompletionSse(identity, events({ type: 'delta', text: 'a' }, done('length')), {
        includeUsage: true,
      }),
    );
    expect(out.at(-1)).toBe(SSE_DONE);
    expect(out.every((s) => s.startsWith('data: ') && s.endsWith('\n\n'))).toBe(true);
    const chunks = out.slice(0, -1).map((s) => JSON.parse(s.slice(6)) as Record<string, unknown>);
    expect(chunks.map((c) => c.choices)).toEqual([
      [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
      [{ index: 0, delta: { content: 'a' }, logprobs: null, finish_reason: null }],
      [{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }],
      [],
    ]);
    expect(chunks.every((c) => c.id === 'chatcmpl-abc' && c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
  });

  it('streams completion chunks without usage unless asked, and cancelled as abort', async () => {
    const out = await drain(
      completionSse(identity, events({ type: 'delta', text: 'a' }, done('cancelled')), {
        includeUsage: false,
      }),
    );
    const chunks = out.slice(0, -1).map((s) => JSON.parse(s.slice(6)) as Record<string, unknown>);
    expect(chunks).toHaveLength(2);
    expect(chunks.every((c) => c.object === 'text_completion' && !('usage' in c))).toBe(true);
    expect(chunks[1]!.choices).toEqual([{ index: 0, text: '', logprobs: null, finish_reason: 'abort' }]);
  });

  it('encodes embeddings as floats or base64 little-endian float32', () => {
    const r = embeddingResponse('m', { embeddings: [[1, -0.5]], promptTokens: 2 }, 'base64');
    expect(r.data[0]!.embedding).toBe(float32Base64([1, -0.5]));
    const raw = Buffer.from(float32Base64([1, -0.5]), 'base64');
    expect([raw.readFloatLE(0), raw.readFloatLE(4)]).toEqual([1, -0.5]);
    expect(embeddingResponse('m', { embeddings: [[1]], promptTokens: 2 }, 'float')).toEqual({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [1] }],
      model: 'm',
      usage: { prompt_tokens: 2, total_tokens: 2 },
    });
  });

  it('lists models and renders errors with the catalogue code', () => {
    expect(modelListResponse([{ id: 'a', contextLength: 8 }], 5)).toEqual({
      object: 'list',
      data: [{ id: 'a', object: 'model', created: 5, owned_by: 'tresor', max_model_len: 8 }],
    });
    expect(openAiErrorBody(new TresorError('MODEL_NOT_FOUND', 'no'))).toEqual({
      error: { message: 'no', type: 'invalid_request_error', param: null, code: 'MODEL_NOT_FOUND' },
    });
    expect(openAiErrorBody(new TresorError('ENGINE_UNAVAILABLE')).error.type).toBe('server_error');
  });

  it('forms OpenAI-style ids', () => {
    expect(newResponseId('chat')).toMatch(/^chatcmpl-[A-Za-z0-9]{24}$/u);
    expect(newResponseId('completion', (n) => new Uint8Array(n))).toBe(`cmpl-${'A'.repeat(24)}`);
  });

  it('primes a generation so errors surface before any output, and replays the first event', async () => {
    const engine = createEchoEngine();
    await expect(primeGeneration(engine.complete({ model: 'nope', prompt: 'x' }))).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
    });
    const primed = await primeGeneration(engine.complete({ model: 'echo', prompt: 'a b' }));
    expect((await aggregateGeneration(primed)).text).toBe('a b');
  });
});

describe('reading upstream answers', () => {
  it('maps upstream failures to catalogue codes', () => {
    expect(upstreamFailure(404, { message: 'The model `x` does not exist.' }).code).toBe('MODEL_NOT_FOUND');
    expect(upstreamFailure(400, { error: { code: 'model_not_found' } }).code).toBe('MODEL_NOT_FOUND');
    expect(upstreamFailure(400, { error: { message: 'bad' } }).code).toBe('API_REQUEST_INVALID');
    expect(upstreamFailure(503, 'x').code).toBe('ENGINE_UNAVAILABLE');
    expect(upstreamFailure(200, null).code).toBe('ENGINE_UNAVAILABLE');
  });

  it('reads chat and completion chunks', () => {
    expect(parseUpstreamChunk({ choices: [{ delta: { content: 'x' }, finish_reason: null }] })).toEqual({
      text: 'x',
      finishReason: undefined,
      usage: undefined,
    });
    expect(
      parseUpstreamChunk({ choices: [{ text: 'y', finish_reason: 'abort' }], usage: null }),
    ).toMatchObject({
      text: 'y',
      finishReason: 'cancelled',
    });
    expect(() => parseUpstreamChunk({ choices: [{ text: 3 }] })).toThrow(TresorError);
    expect(() => parseUpstreamChunk([])).toThrow(TresorError);
  });

  it('splits SSE into data payloads however the bytes are chunked', async () => {
    const payloads = ['{"a":1}', 'line1\nline2', '[DONE]', ''];
    const text =
      ': comment\r\n' +
      'data: {"a":1}\r\n\r\n' +
      'event: x\ndata: line1\ndata:line2\n\n' +
      'id: 3\rdata: [DONE]\r\r' +
      'data\n\n' +
      'data: never terminated';
    const bytes = new TextEncoder().encode(text);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.nat(bytes.length), { maxLength: 12 }), async (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        async function* chunks() {
          for (let i = 0; i + 1 < points.length; i++) {
            await Promise.resolve();
            yield bytes.subarray(points[i], points[i + 1]);
          }
        }
        expect(await drain(parseSse(chunks()))).toEqual(payloads);
      }),
    );
  });
});
