import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes } from '@tresor/crypto';
import {
  StreamingBhttpResponseReader,
  streamingContentChunk,
  streamingResponseEnd,
  streamingResponseHead,
  type StreamedResponsePart,
} from './streaming-bhttp.js';

const field = fc.tuple(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  fc.string({ maxLength: 40 }).filter((s) => !/[\r\n\0]/.test(s)),
);

describe('streamed Binary HTTP responses (RFC 9292 indeterminate-length)', () => {
  it('reads back head, content chunks and end however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 200, max: 599 }),
        fc.array(field, { maxLength: 5 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (status, headers, contents, splits) => {
          const wire = concatBytes(
            streamingResponseHead(status, headers),
            ...contents.map(streamingContentChunk),
            streamingResponseEnd(),
          );
          const reader = new StreamingBhttpResponseReader();
          const parts: StreamedResponsePart[] = [];
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const size = splits[i % splits.length]!;
            parts.push(...reader.push(wire.subarray(at, at + size)));
            at += size;
          }
          expect(reader.done).toBe(true);
          expect(parts[0]).toEqual({ type: 'head', status, headers });
          expect(parts.slice(1, -1)).toEqual(contents.map((bytes) => ({ type: 'content', bytes })));
          expect(parts.at(-1)).toEqual({ type: 'end' });
        },
      ),
    );
  });

  it('waits for more bytes instead of guessing, and refuses other framings and trailers', () => {
    const reader = new StreamingBhttpResponseReader();
    expect(reader.push(Uint8Array.of(3))).toEqual([]);
    expect(reader.done).toBe(false);
    expect(() => new StreamingBhttpResponseReader().push(Uint8Array.of(1, 0x40, 200))).toThrow(
      expect.objectContaining({ code: 'BHTTP_MALFORMED' }),
    );
    const trailer = concatBytes(streamingResponseHead(200, []), Uint8Array.of(0), Uint8Array.of(1, 0x61));
    expect(() => new StreamingBhttpResponseReader().push(trailer)).toThrow(
      expect.objectContaining({ code: 'BHTTP_MALFORMED' }),
    );
  });

  it('never emits an empty content chunk (a zero length would end the content)', () => {
    expect(streamingContentChunk(new Uint8Array(0))).toEqual(new Uint8Array(0));
  });
});
