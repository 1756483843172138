import { describe, expect, it } from 'vitest';
import { collect, describeEngineConformance } from '../../../../test/conformance/engine-conformance.js';
import { createEchoEngine, echoChatPrompt, echoTokenize } from './echo-engine.js';

describeEngineConformance('echo', () => Promise.resolve({ engine: createEchoEngine(), model: 'echo' }));

describe('echo engine', () => {
  it('answers with the words of the last user message, one token each', async () => {
    const engine = createEchoEngine();
    const { text, events } = await collect(
      engine.chat({
        model: 'echo',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'first question' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: '  hello   wide\nworld ' },
        ],
      }),
    );
    expect(text).toBe('hello wide world');
    expect(events.filter((e) => e.type === 'delta').map((e) => e.text)).toEqual(['hello', ' wide', ' world']);
    expect(events.at(-1)).toEqual({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: 12, completionTokens: 3 },
    });
  });

  it('renders chats and counts whitespace tokens as documented', () => {
    expect(echoChatPrompt([{ role: 'user', content: 'a b' }])).toBe('user: a b');
    expect(echoTokenize('')).toEqual([]);
    expect(echoTokenize(' \n\t ')).toEqual([]);
    expect(echoTokenize('a  b\nc')).toEqual(['a', 'b', 'c']);
  });

  it('answers (empty) to an empty prompt rather than nothing', async () => {
    const { text } = await collect(createEchoEngine().complete({ model: 'echo', prompt: '   ' }));
    expect(text).toBe('(empty)');
  });

  it('produces exactly responseTokens tokens by cycling the prompt', async () => {
    const engine = createEchoEngine({ responseTokens: 5 });
    const { text, events } = await collect(engine.complete({ model: 'echo', prompt: 'x y' }));
    expect(text).toBe('x y x y x');
    expect(events.at(-1)).toMatchObject({ finishReason: 'stop', usage: { completionTokens: 5 } });
    const capped = await collect(engine.complete({ model: 'echo', prompt: 'x y', maxTokens: 2 }));
    expect(capped.events.at(-1)).toMatchObject({ finishReason: 'length', usage: { completionTokens: 2 } });
  });

  it('catches a stop string split across tokens', async () => {
    const engine = createEchoEngine();
    const { text, events } = await collect(
      engine.complete({ model: 'echo', prompt: 'aa bb cc dd', stop: ['b c'] }),
    );
    expect(text).toBe('aa b');
    expect(events.at(-1)).toMatchObject({ finishReason: 'stop' });
  });

  it('waits between tokens through the injected scheduler only', async () => {
    const waits: number[] = [];
    const engine = createEchoEngine({
      interTokenDelayMs: 25,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await collect(engine.complete({ model: 'echo', prompt: 'a b c' }));
    expect(waits).toEqual([25, 25, 25]);
  });

  it('cancels a stream blocked in the scheduler when the signal aborts', async () => {
    const controller = new AbortController();
    let release: (() => void) | undefined;
    const engine = createEchoEngine({
      interTokenDelayMs: 1000,
      sleep: (_ms, signal) =>
        new Promise<void>((resolve) => {
          release = resolve;
          signal?.addEventListener('abort', () => {
            resolve();
          });
        }),
    });
    const run = collect(engine.complete({ model: 'echo', prompt: 'a b c', signal: controller.signal }));
    await new Promise((r) => setImmediate(r));
    expect(release).toBeDefined();
    controller.abort();
    const { events, text } = await run;
    expect(text).toBe('');
    expect(events.at(-1)).toMatchObject({ finishReason: 'cancelled', usage: { completionTokens: 0 } });
  });

  it('ends in-flight streams with cancelled when closed', async () => {
    const engine = createEchoEngine({
      interTokenDelayMs: 1000,
      sleep: (_ms, signal) =>
        new Promise<void>((resolve) => {
          signal?.addEventListener('abort', () => {
            resolve();
          });
        }),
    });
    const run = collect(engine.complete({ model: 'echo', prompt: 'a b c' }));
    await new Promise((r) => setImmediate(r));
    await engine.close();
    expect((await run).events.at(-1)).toMatchObject({ finishReason: 'cancelled' });
  });

  it('serves several configured models and embeds with the configured dimension', async () => {
    const engine = createEchoEngine({
      models: [{ id: 'a' }, { id: 'b', contextLength: 8 }],
      embeddingDimensions: 5,
    });
    expect(await engine.listModels()).toEqual([
      { id: 'a', contextLength: 4096 },
      { id: 'b', contextLength: 8 },
    ]);
    const r = await engine.embed({ model: 'b', input: ['x'] });
    expect(r.embeddings[0]).toHaveLength(5);
    expect(Math.hypot(...r.embeddings[0]!)).toBeCloseTo(1, 10);
  });

  it('refuses bad options at construction', () => {
    expect(() => createEchoEngine({ responseTokens: 0 })).toThrow(RangeError);
    expect(() => createEchoEngine({ responseTokens: 1.5 })).toThrow(RangeError);
    expect(() => createEchoEngine({ embeddingDimensions: 0 })).toThrow(RangeError);
  });
});
