import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECEIPT_SSE_PREFIX, TresorError } from '@tresor/protocol';
import { splitSseReceipt, sseReceiptSplitter, type SseReceiptResult } from './sse-receipt.js';

const encoder = new TextEncoder();
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** `text` cut at `cuts` (positions), as pieces of a stream. */
function pieces(text: string, cuts: readonly number[]): Uint8Array[] {
  const bytes = encoder.encode(text);
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    if (c > from) out.push(bytes.slice(from, c));
    from = c;
  }
  return out;
}

function source(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  for await (const piece of stream as unknown as AsyncIterable<Uint8Array>)
    text += decoder.decode(piece, { stream: true });
  return text;
}

type Form = (
  parts: Uint8Array[],
  onEnd: (r: SseReceiptResult) => Promise<void>,
) => ReadableStream<Uint8Array>;
const forms: [string, Form][] = [
  ['TransformStream', (parts, onEnd) => source(parts).pipeThrough(sseReceiptSplitter(onEnd))],
  ['pull stream', (parts, onEnd) => splitSseReceipt(source(parts), onEnd, { sha256Hex: sha256 })],
];

async function run(
  form: Form,
  parts: Uint8Array[],
): Promise<{ out: string; result?: SseReceiptResult; error?: unknown }> {
  let result: SseReceiptResult | undefined;
  let out = '';
  try {
    out = await drain(
      form(parts, (r) => {
        result = r;
        return Promise.resolve();
      }),
    );
  } catch (error) {
    return { out, error };
  }
  return result === undefined ? { out } : { out, result };
}

const line = fc.stringMatching(/^(data: [a-z{}":,0-9 ]{0,40}|: keep-alive|event: [a-z]{1,8}|)$/);

describe.each(forms)('SSE receipt splitter (%s)', (_name, form) => {
  it('passes every byte before the receipt, unchanged, however the stream is cut; hashes exactly them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 12 }),
        fc.constantFrom('\n', '\r\n'),
        fc.constantFrom('', '\n', '\n\n', '\r\n'),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (lines, eol, after, cuts) => {
          const events = lines.map((l) => `${l}${eol}`).join('');
          const text = `${events}${RECEIPT_SSE_PREFIX}a.b.c${eol}${after}`;
          const { out, result, error } = await run(form, pieces(text, cuts));
          expect(error).toBeUndefined();
          expect(out).toBe(events);
          expect(result).toEqual({ receipt: 'a.b.c', responseSha256: sha256(encoder.encode(events)) });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a stream without a receipt passes whole, its last line too (no newline), with receipt null', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (lines, cuts) => {
          const text = `${lines.join('\n')}data: end`;
          const { out, result } = await run(form, pieces(text, cuts));
          expect(out).toBe(text);
          expect(result).toEqual({ receipt: null, responseSha256: sha256(encoder.encode(text)) });
        },
      ),
      { numRuns: 80 },
    );
  });

  it('takes a receipt on the last line without a newline', async () => {
    const { out, result } = await run(form, pieces(`data: 1\n\n${RECEIPT_SSE_PREFIX}x.y.z`, [3, 12]));
    expect(out).toBe('data: 1\n\n');
    expect(result?.receipt).toBe('x.y.z');
  });

  it('refuses anything but blank lines after the receipt, and never passes it on', async () => {
    for (const cuts of [[], [5], [20, 21, 40]]) {
      const { out, result, error } = await run(
        form,
        pieces(`data: 1\n\n${RECEIPT_SSE_PREFIX}x.y.z\n\ndata: 2\n\n`, cuts),
      );
      expect(error).toBeInstanceOf(TresorError);
      expect((error as TresorError).code).toBe('RECEIPT_INVALID');
      expect(out).not.toContain('data: 2');
      expect(result).toBeUndefined();
    }
  });

  it('errors the stream with what the end check throws (a receipt that does not verify)', async () => {
    const stream = form(pieces(`data: 1\n\n${RECEIPT_SSE_PREFIX}x.y.z\n`, [4]), () =>
      Promise.reject(new TresorError('RECEIPT_INVALID', 'forged')),
    );
    await expect(drain(stream)).rejects.toThrow('forged');
  });
});

describe('splitSseReceipt', () => {
  it('cancels its source when cancelled, and when a line after the receipt is refused', async () => {
    let cancelled: unknown = 'not cancelled';
    const make = (text: string) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(text));
        },
        cancel(reason) {
          cancelled = reason;
        },
      });
    const open = splitSseReceipt(make('data: 1\n\n'), () => Promise.resolve());
    const reader = open.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel('gone');
    expect(cancelled).toBe('gone');

    cancelled = 'not cancelled';
    const bad = splitSseReceipt(make(`${RECEIPT_SSE_PREFIX}x\ndata: 2\n`), () => Promise.resolve());
    await expect(drain(bad)).rejects.toBeInstanceOf(TresorError);
    expect(cancelled).toBeInstanceOf(TresorError);
  });
});
