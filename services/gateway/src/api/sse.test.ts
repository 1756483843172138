import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventData, mayHoldUsage, usageOf } from './sse.js';

function parsed(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

describe('eventData', () => {
  it('reads one data line, joins several, and ignores comments', () => {
    expect(eventData('data: {"a":1}')).toBe('{"a":1}');
    expect(eventData('data:x')).toBe('x');
    expect(eventData('event: e\ndata: one\ndata: two')).toBe('one\ntwo');
    expect(eventData(': tresor-usage {}')).toBeUndefined();
  });
});

describe('mayHoldUsage', () => {
  it('skips content chunks with "usage":null and none at all', () => {
    expect(mayHoldUsage('{"choices":[{"delta":{"content":"hi"}}],"usage":null}')).toBe(false);
    expect(mayHoldUsage('{"choices":[{"delta":{"content":"hi"}}]}')).toBe(false);
    expect(mayHoldUsage('[DONE]')).toBe(false);
  });

  it('keeps every text that can carry usage', () => {
    expect(mayHoldUsage('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}')).toBe(true);
    // The last duplicate member wins in JSON.parse.
    expect(mayHoldUsage('{"usage":null,"usage":{"prompt_tokens":1}}')).toBe(true);
    expect(mayHoldUsage('{"usage" : {"prompt_tokens":1}}')).toBe(true);
    expect(mayHoldUsage('{"\\u0075sage":{"prompt_tokens":1}}')).toBe(true);
  });

  it('never drops a usage that usageOf would find (property)', () => {
    const usage = fc.oneof(
      fc.constant(null),
      fc.record({ prompt_tokens: fc.nat(), completion_tokens: fc.nat() }),
    );
    const member = fc.record({
      key: fc.constantFrom('usage', 'choices', 'id', 'u\u0073age'),
      value: fc.oneof(usage, fc.string(), fc.nat()),
    });
    fc.assert(
      fc.property(fc.array(member, { maxLength: 5 }), fc.boolean(), (members, escape) => {
        let text = `{${members.map((m) => `${JSON.stringify(m.key)}:${JSON.stringify(m.value)}`).join(',')}}`;
        if (escape) text = text.replaceAll('"usage"', '"\\u0075sage"');
        if (usageOf(parsed(text)) !== undefined) expect(mayHoldUsage(text)).toBe(true);
      }),
    );
  });
});
