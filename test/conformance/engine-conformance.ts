/**
 * The one conformance suite every `Engine` runs (echo, llama with the demo model, openai-upstream
 * against a real OpenAI-compatible server). It asserts only what the contract promises, so the
 * same assertions hold for a deterministic test engine and for llama.cpp generating nonsense.
 */

import { TresorError } from '@tresor/protocol';
import type { ChatRequest, Engine, GenerationEvent } from '@tresor/serving';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface EngineUnderTest {
  readonly engine: Engine;
  /** A model id the engine serves for chat and completion. */
  readonly model: string;
  /** The model to embed with; defaults to `model`. */
  readonly embeddingModel?: string;
  /** Extra clean-up (servers, temp files) after `engine.close()`. */
  readonly dispose?: () => Promise<void>;
}

export interface ConformanceOptions {
  /** Tokens to ask for where the suite needs a few (keep small for llama). Default 8. */
  readonly shortTokens?: number;
  /**
   * Whether a request run concurrently with others yields exactly what it yields alone. True for
   * deterministic engines; batched llama.cpp decoding can change float summation order.
   */
  readonly exactUnderConcurrency?: boolean;
}

export async function collect(
  stream: AsyncIterable<GenerationEvent>,
  onDelta?: (text: string) => void,
): Promise<{ text: string; events: GenerationEvent[] }> {
  const events: GenerationEvent[] = [];
  let text = '';
  for await (const e of stream) {
    events.push(e);
    if (e.type === 'delta') {
      text += e.text;
      onDelta?.(e.text);
    }
  }
  return { text, events };
}

function doneOf(events: readonly GenerationEvent[]): Extract<GenerationEvent, { type: 'done' }> {
  const done = events.filter((e) => e.type === 'done');
  expect(done).toHaveLength(1);
  expect(events.at(-1)).toBe(done[0]);
  return done[0]!;
}

async function expectCode(run: () => Promise<unknown>, code: string): Promise<void> {
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TresorError);
  expect((caught as TresorError).code).toBe(code);
}

export function describeEngineConformance(
  name: string,
  factory: () => Promise<EngineUnderTest>,
  options: ConformanceOptions = {},
): void {
  const shortTokens = options.shortTokens ?? 8;
  const exact = options.exactUnderConcurrency ?? true;

  describe(`Engine conformance: ${name}`, () => {
    let sut: EngineUnderTest;
    const chat = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
      model: sut.model,
      messages: [{ role: 'user', content }],
      maxTokens: shortTokens,
      temperature: 0,
      ...extra,
    });

    beforeAll(async () => {
      sut = await factory();
    });
    afterAll(async () => {
      await sut.engine.close();
      await sut.dispose?.();
    });

    it('lists the model it serves with a positive context length', async () => {
      const models = await sut.engine.listModels();
      const m = models.find((x) => x.id === sut.model);
      expect(m).toBeDefined();
      expect(m!.contextLength).toBeGreaterThan(0);
      expect(new Set(models.map((x) => x.id)).size).toBe(models.length);
    });

    it('streams chat deltas then exactly one done with usage', async () => {
      const { text, events } = await collect(sut.engine.chat(chat('Hello there, how are you today?')));
      const done = doneOf(events);
      expect(events.slice(0, -1).every((e) => e.type === 'delta' && e.text.length > 0)).toBe(true);
      expect(text.length).toBeGreaterThan(0);
      expect(done.usage.promptTokens).toBeGreaterThan(0);
      expect(done.usage.completionTokens).toBeGreaterThan(0);
      expect(done.usage.completionTokens).toBeLessThanOrEqual(shortTokens);
      expect(['stop', 'length']).toContain(done.finishReason);
    });

    it('answers the same greedy request identically twice (aggregation is stable)', async () => {
      const a = await collect(sut.engine.chat(chat('Tell me a story about a lighthouse')));
      const b = await collect(sut.engine.chat(chat('Tell me a story about a lighthouse')));
      expect(b.text).toBe(a.text);
      expect(doneOf(b.events)).toEqual(doneOf(a.events));
    });

    it('completes a plain prompt', async () => {
      const { text, events } = await collect(
        sut.engine.complete({
          model: sut.model,
          prompt: 'Once upon a time',
          maxTokens: shortTokens,
          temperature: 0,
        }),
      );
      const done = doneOf(events);
      expect(text.length).toBeGreaterThan(0);
      expect(done.usage.promptTokens).toBeGreaterThan(0);
      expect(done.usage.completionTokens).toBeGreaterThan(0);
    });

    it('honours maxTokens with finish reason length', async () => {
      const { events } = await collect(
        sut.engine.complete({
          model: sut.model,
          prompt: 'one two three four five six seven eight nine ten eleven twelve',
          maxTokens: 3,
          temperature: 0,
        }),
      );
      const done = doneOf(events);
      expect(done.finishReason).toBe('length');
      expect(done.usage.completionTokens).toBe(3);
    });

    it('stops before a stop string and drops it', async () => {
      const prompt = 'alpha beta gamma delta epsilon zeta eta theta';
      const full = await collect(
        sut.engine.complete({ model: sut.model, prompt, maxTokens: shortTokens, temperature: 0 }),
      );
      expect(full.text.length).toBeGreaterThan(2);
      // A stop string taken from the middle of the greedy answer cuts the second run right there.
      const at = Math.floor(full.text.length / 2);
      const stopString = full.text.slice(at, at + 2);
      const expected = full.text.slice(0, full.text.indexOf(stopString));
      const cut = await collect(
        sut.engine.complete({
          model: sut.model,
          prompt,
          maxTokens: shortTokens,
          temperature: 0,
          stop: [stopString],
        }),
      );
      expect(cut.text).toBe(expected);
      expect(doneOf(cut.events).finishReason).toBe('stop');
    });

    it('embeds inputs into vectors of one dimension, deterministically', async () => {
      const model = sut.embeddingModel ?? sut.model;
      const r = await sut.engine.embed({
        model,
        input: ['first text', 'a second, longer text', 'first text'],
      });
      expect(r.embeddings).toHaveLength(3);
      const dim = r.embeddings[0]!.length;
      expect(dim).toBeGreaterThan(0);
      for (const v of r.embeddings) {
        expect(v).toHaveLength(dim);
        expect(v.every((x) => Number.isFinite(x))).toBe(true);
      }
      expect(r.embeddings[2]).toEqual(r.embeddings[0]);
      expect(r.embeddings[1]).not.toEqual(r.embeddings[0]);
      expect(r.promptTokens).toBeGreaterThan(0);
    });

    it('counts tokens positively and monotonically', async () => {
      const a = await sut.engine.countTokens(sut.model, 'The quick brown fox');
      const b = await sut.engine.countTokens(sut.model, 'The quick brown fox jumps over the lazy dog');
      const c = await sut.engine.countTokens(
        sut.model,
        'The quick brown fox jumps over the lazy dog and runs far away into the forest',
      );
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(a);
      expect(c).toBeGreaterThan(b);
    });

    it('refuses an unknown model with MODEL_NOT_FOUND on every call', async () => {
      const model = 'no-such-model';
      await expectCode(() => collect(sut.engine.chat({ ...chat('hi'), model })), 'MODEL_NOT_FOUND');
      await expectCode(() => collect(sut.engine.complete({ model, prompt: 'hi' })), 'MODEL_NOT_FOUND');
      await expectCode(() => sut.engine.embed({ model, input: ['hi'] }), 'MODEL_NOT_FOUND');
      await expectCode(() => sut.engine.countTokens(model, 'hi'), 'MODEL_NOT_FOUND');
    });

    it('refuses parameters it cannot honour with API_REQUEST_INVALID', async () => {
      await expectCode(() => collect(sut.engine.chat(chat('hi', { maxTokens: 0 }))), 'API_REQUEST_INVALID');
      await expectCode(() => collect(sut.engine.chat(chat('hi', { maxTokens: 1.5 }))), 'API_REQUEST_INVALID');
      await expectCode(
        () => collect(sut.engine.chat(chat('hi', { temperature: -1 }))),
        'API_REQUEST_INVALID',
      );
      await expectCode(() => collect(sut.engine.chat(chat('hi', { stop: [''] }))), 'API_REQUEST_INVALID');
      await expectCode(
        () => collect(sut.engine.chat({ ...chat('hi'), messages: [] })),
        'API_REQUEST_INVALID',
      );
      await expectCode(() => sut.engine.embed({ model: sut.model, input: [] }), 'API_REQUEST_INVALID');
    });

    it('ends a stream with cancelled when aborted mid-stream', async () => {
      const controller = new AbortController();
      const words = Array.from({ length: 48 }, (_, i) => `word${i}`).join(' ');
      let deltasAfterAbort = 0;
      const { events } = await collect(
        sut.engine.complete({
          model: sut.model,
          prompt: words,
          maxTokens: 48,
          temperature: 0,
          signal: controller.signal,
        }),
        () => {
          if (controller.signal.aborted) deltasAfterAbort++;
          else controller.abort();
        },
      );
      const done = doneOf(events);
      expect(done.finishReason).toBe('cancelled');
      expect(done.usage.completionTokens).toBeLessThan(48);
      // Tokens already in flight may still arrive, but generation must not run on to the limit.
      expect(deltasAfterAbort).toBeLessThan(40);
    });

    it('ends at once with cancelled when the signal is already aborted', async () => {
      const { events, text } = await collect(
        sut.engine.chat(chat('never answered', { signal: AbortSignal.abort() })),
      );
      expect(text).toBe('');
      expect(doneOf(events).finishReason).toBe('cancelled');
    });

    it('keeps concurrent generations apart', async () => {
      const prompts = ['red green blue', 'cats and dogs', 'numbers one two'];
      const together = await Promise.all(prompts.map((p) => collect(sut.engine.chat(chat(p)))));
      for (const r of together) {
        expect(r.text.length).toBeGreaterThan(0);
        doneOf(r.events);
      }
      if (exact) {
        for (const [i, p] of prompts.entries()) {
          const alone = await collect(sut.engine.chat(chat(p)));
          expect(together[i]!.text).toBe(alone.text);
        }
      }
    });

    it('closes idempotently and refuses calls afterwards with ENGINE_UNAVAILABLE', async () => {
      const other = await factory();
      try {
        await other.engine.close();
        await other.engine.close();
        await expectCode(() => other.engine.listModels(), 'ENGINE_UNAVAILABLE');
        await expectCode(
          () => collect(other.engine.chat({ ...chat('hi'), model: other.model })),
          'ENGINE_UNAVAILABLE',
        );
        await expectCode(() => other.engine.countTokens(other.model, 'hi'), 'ENGINE_UNAVAILABLE');
      } finally {
        await other.dispose?.();
      }
    });
  });
}
