import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseDataSplitter, parseEventData, streamEvents, type StreamEvent } from './sse-deltas.js';

function chunk(text: string): string {
  return `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
}

function streamOf(parts: readonly string[]): ReadableStream<Uint8Array> {
  const bytes = parts.map((p) => new TextEncoder().encode(p));
  return new ReadableStream({
    start(c) {
      for (const b of bytes) c.enqueue(b);
      c.close();
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of streamEvents(body)) out.push(e);
  return out;
}

/** Splits `bytes` at the given cut points (any byte, also inside a UTF-8 sequence). */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let last = 0;
  for (const p of [...at, bytes.length]) {
    parts.push(bytes.slice(last, p));
    last = p;
  }
  return parts;
}

const FINISH = `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;

describe('streamEvents', () => {
  it('yields the deltas of an OpenAI stream, skips the receipt comment, stops at [DONE]', async () => {
    const events = await collect(
      streamOf([
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant' } }] })}\n\n`,
        chunk('Grüezi'),
        chunk(' mitenand'),
        FINISH,
        ': tresor-receipt eyJhbGciOiJFZERTQSJ9.e30.sig\n\n',
        'data: [DONE]\n\n',
        chunk('after done'),
      ]),
    );
    expect(events).toEqual([
      { kind: 'delta', text: 'Grüezi' },
      { kind: 'delta', text: ' mitenand' },
      { kind: 'done', finishReason: 'stop' },
      { kind: 'done', finishReason: null },
    ]);
  });

  it('reports an error event with its code', async () => {
    const events = await collect(
      streamOf([`data: {"error":{"message":"over quota","code":"QUOTA_EXHAUSTED"}}\n\n`]),
    );
    expect(events).toEqual([{ kind: 'error', message: 'over quota', code: 'QUOTA_EXHAUSTED' }]);
  });

  it('reports an event that is not JSON instead of dropping it', async () => {
    expect(await collect(streamOf(['data: {not json\n\n']))).toEqual([
      { kind: 'error', message: 'the stream held an event that is not JSON', code: null },
    ]);
  });

  it('takes a last event that ends without a blank line', async () => {
    expect(await collect(streamOf([chunk('a').trimEnd()]))).toEqual([{ kind: 'delta', text: 'a' }]);
  });

  it('gives the same text however the bytes are split (UTF-8 and CRLF included)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        async (texts, points, crlf) => {
          let sse = texts.map(chunk).join('') + 'data: [DONE]\n\n';
          if (crlf) sse = sse.replace(/\n/g, '\r\n');
          const parts = cut(new TextEncoder().encode(sse), points);
          const body = new ReadableStream<Uint8Array>({
            start(c) {
              for (const p of parts) c.enqueue(p);
              c.close();
            },
          });
          const events = await collect(body);
          const text = events.map((e) => (e.kind === 'delta' ? e.text : '')).join('');
          expect(text).toBe(texts.join(''));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('parseEventData', () => {
  it('ignores shapes that carry no text', () => {
    expect(parseEventData('{}')).toEqual([]);
    expect(parseEventData('null')).toEqual([]);
    expect(parseEventData('{"choices":[null,1,{"delta":{"content":""}}]}')).toEqual([]);
    expect(parseEventData('{"choices":"x"}')).toEqual([]);
  });
  it('never throws, whatever the data', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (data) => {
        expect(Array.isArray(parseEventData(data))).toBe(true);
      }),
    );
  });
});

describe('SseDataSplitter', () => {
  it('joins multi-line data with newlines and ignores other fields', () => {
    const s = new SseDataSplitter();
    expect(s.push('event: x\nid: 1\ndata: a\ndata:b\nretry: 5\n\n')).toEqual(['a\nb']);
  });
  it('waits for the \\n of a \\r\\n split across chunks', () => {
    const s = new SseDataSplitter();
    expect(s.push('data: a\r')).toEqual([]);
    expect(s.push('\n\r\n')).toEqual(['a']);
  });
});
