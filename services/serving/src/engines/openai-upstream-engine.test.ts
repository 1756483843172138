import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, describeEngineConformance } from '../../../../test/conformance/engine-conformance.js';
import { startOpenAiCompatibleServer } from '../../../../test/support/openai-compatible-server.js';
import { DEMO_MODEL_ID, writeDemoModel } from '../demo-model/demo-model.js';
import { createEchoEngine } from './echo-engine.js';
import { createLlamaEngine } from './llama-engine.js';
import { createOpenAiUpstreamEngine, estimateTokens } from './openai-upstream-engine.js';

let dir: string;
let modelPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-upstream-engine-'));
  modelPath = join(dir, 'demo.gguf');
  await writeDemoModel(modelPath);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeEngineConformance('openai-upstream → echo over TCP', async () => {
  const inner = createEchoEngine();
  const server = await startOpenAiCompatibleServer(inner);
  return {
    engine: createOpenAiUpstreamEngine({ baseUrl: server.url }),
    model: 'echo',
    dispose: async () => {
      await server.close();
      await inner.close();
    },
  };
});

describeEngineConformance('openai-upstream → llama (demo model) over a Unix socket', async () => {
  const inner = await createLlamaEngine({ models: [{ id: DEMO_MODEL_ID, path: modelPath }], threads: 1 });
  const socketPath = join(dir, `upstream-${Math.random().toString(36).slice(2)}.sock`);
  const server = await startOpenAiCompatibleServer(inner, { socketPath });
  return {
    engine: createOpenAiUpstreamEngine({ socketPath }),
    model: DEMO_MODEL_ID,
    dispose: async () => {
      await server.close();
      await inner.close();
    },
  };
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    return e instanceof TresorError ? e.code : 'not a TresorError';
  }
  return undefined;
}

describe('openai-upstream engine', () => {
  it('refuses addresses that would leave the pod', () => {
    for (const baseUrl of [
      'http://10.0.0.5:8000',
      'http://vllm.default.svc:8000',
      'http://example.com',
      'http://[::2]:8000',
      'http://128.0.0.1:8000',
      'ftp://127.0.0.1',
      'not a url',
      'http://user:pw@127.0.0.1:8000',
      'http://127.0.0.1:8000/?x=1',
    ]) {
      expect(
        codeOf(() => createOpenAiUpstreamEngine({ baseUrl })),
        baseUrl,
      ).toBe('CONFIG_INVALID');
    }
    expect(codeOf(() => createOpenAiUpstreamEngine({}))).toBe('CONFIG_INVALID');
    expect(codeOf(() => createOpenAiUpstreamEngine({ baseUrl: 'http://127.0.0.1', socketPath: '/x' }))).toBe(
      'CONFIG_INVALID',
    );
  });

  it('accepts loopback addresses', () => {
    for (const baseUrl of [
      'http://127.0.0.1:8000',
      'http://localhost:1',
      'http://[::1]:8000',
      'http://127.1.2.3/v',
    ]) {
      expect(
        codeOf(() => createOpenAiUpstreamEngine({ baseUrl })),
        baseUrl,
      ).toBeUndefined();
    }
  });

  it('reports an unreachable upstream as ENGINE_UNAVAILABLE', async () => {
    const engine = createOpenAiUpstreamEngine({ socketPath: join(dir, 'nobody-listens.sock') });
    await expect(engine.listModels()).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
    });
    await engine.close();
  });

  it('uses /tokenize when the server has it and the documented estimate when it does not', async () => {
    const inner = createEchoEngine();
    const withRoute = await startOpenAiCompatibleServer(inner);
    const without = await startOpenAiCompatibleServer(inner, { tokenize: false });
    try {
      const text = 'one two three four five six seven';
      expect(await createOpenAiUpstreamEngine({ baseUrl: withRoute.url }).countTokens('echo', text)).toBe(7);
      const estimating = createOpenAiUpstreamEngine({ baseUrl: without.url });
      expect(await estimating.countTokens('echo', text)).toBe(estimateTokens(text));
      await expect(estimating.countTokens('nope', text)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
      const strict = createOpenAiUpstreamEngine({ baseUrl: without.url, tokenCounting: 'upstream' });
      await expect(strict.countTokens('echo', text)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    } finally {
      await withRoute.close();
      await without.close();
    }
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
    expect(estimateTokens('é')).toBe(1);
  });

  describe('against a misbehaving upstream', () => {
    let server: Server;
    let url: string;
    let answer: (path: string) => { status: number; type: string; body: string };

    beforeAll(async () => {
      server = createServer((req, res) => {
        const a = answer(req.url ?? '');
        res.writeHead(a.status, { 'content-type': a.type });
        res.end(a.body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no address');
      url = `http://127.0.0.1:${address.port}`;
    });
    afterAll(async () => {
      await new Promise((r) => server.close(r));
    });

    const sse = (...events: string[]) => ({
      status: 200,
      type: 'text/event-stream',
      body: events.map((e) => `data: ${e}\n\n`).join(''),
    });

    it('refuses a stream cut off before [DONE]', async () => {
      answer = () => sse('{"choices":[{"index":0,"text":"partial","finish_reason":null}]}');
      const engine = createOpenAiUpstreamEngine({ baseUrl: url });
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
    });

    it('refuses stream events that are not JSON or not OpenAI-shaped', async () => {
      const engine = createOpenAiUpstreamEngine({ baseUrl: url });
      answer = () => sse('{not json', '[DONE]');
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
      answer = () => sse('{"choices":"nope"}', '[DONE]');
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
    });

    it('maps upstream statuses to catalogue codes', async () => {
      const engine = createOpenAiUpstreamEngine({ baseUrl: url });
      answer = () => ({
        status: 404,
        type: 'application/json',
        body: '{"message":"The model `m` does not exist."}',
      });
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'MODEL_NOT_FOUND',
      });
      answer = () => ({ status: 400, type: 'application/json', body: '{"error":{"message":"too long"}}' });
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'API_REQUEST_INVALID',
      });
      answer = () => ({ status: 500, type: 'text/plain', body: 'boom' });
      await expect(collect(engine.complete({ model: 'm', prompt: 'x' }))).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
      answer = () => ({ status: 200, type: 'application/json', body: '{"data":"x"}' });
      await expect(engine.listModels()).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
      answer = () => ({
        status: 200,
        type: 'application/json',
        body: '{"data":[{"index":0,"embedding":[1]}]}',
      });
      await expect(engine.embed({ model: 'm', input: ['a', 'b'] })).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
    });

    it('reads usage, finish reasons and a server without include_usage', async () => {
      const engine = createOpenAiUpstreamEngine({ baseUrl: url });
      answer = () =>
        sse(
          '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
          '{"choices":[{"index":0,"delta":{"content":"a"}}]}',
          '{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"length"}]}',
          '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}',
          '[DONE]',
        );
      const r = await collect(engine.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
      expect(r.text).toBe('ab');
      expect(r.events.at(-1)).toEqual({
        type: 'done',
        finishReason: 'length',
        usage: { promptTokens: 5, completionTokens: 2 },
      });
      answer = () => sse('{"choices":[{"index":0,"text":"xyz","finish_reason":"stop"}]}', '[DONE]');
      const noUsage = await collect(engine.complete({ model: 'm', prompt: 'abcdefgh' }));
      expect(noUsage.events.at(-1)).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 2, completionTokens: 1 },
      });
    });
  });
});
