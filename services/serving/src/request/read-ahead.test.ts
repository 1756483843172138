import { describe, expect, it } from 'vitest';
import { readAhead } from './read-ahead.js';

/** A source that records when each item was asked for, relative to what the consumer did. */
function recordingSource(count: number, log: string[], failAt?: number): AsyncIterable<number> {
  return (async function* () {
    try {
      for (let i = 0; i < count; i++) {
        log.push(`produce ${String(i)}`);
        await Promise.resolve();
        if (i === failAt) throw new Error(`failed at ${String(i)}`);
        yield i;
      }
    } finally {
      log.push('source closed');
    }
  })();
}

describe('readAhead', () => {
  it('passes every item on, in order', async () => {
    const seen: number[] = [];
    for await (const item of readAhead(recordingSource(5, []))) seen.push(item);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('asks for the next item before the consumer has handled the current one', async () => {
    const log: string[] = [];
    for await (const item of readAhead(recordingSource(3, log))) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      log.push(`consumed ${String(item)}`);
    }
    expect(log.indexOf('produce 1')).toBeLessThan(log.indexOf('consumed 0'));
    expect(log.indexOf('produce 2')).toBeLessThan(log.indexOf('consumed 1'));
    expect(log.at(-1)).toBe('consumed 2');
  });

  it('passes a failure of the source on at the item where it happened', async () => {
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const item of readAhead(recordingSource(5, [], 2))) seen.push(item);
      })(),
    ).rejects.toThrow('failed at 2');
    expect(seen).toEqual([0, 1]);
  });

  it('closes the source when the consumer stops early, and swallows the failure of the item in flight', async () => {
    const log: string[] = [];
    for await (const item of readAhead(recordingSource(5, log, 1))) {
      if (item === 0) break;
    }
    expect(log).toContain('source closed');
  });

  it('closes the source when the consumer stops early without a failure', async () => {
    const log: string[] = [];
    const seen: number[] = [];
    for await (const item of readAhead(recordingSource(10, log))) {
      seen.push(item);
      if (item === 2) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(log).toContain('source closed');
    // One item ahead at most: the fourth was asked for, the fifth never.
    expect(log).toContain('produce 3');
    expect(log).not.toContain('produce 4');
  });
});
