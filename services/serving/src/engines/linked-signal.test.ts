import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { collect } from '../../../../test/conformance/engine-conformance.js';
import { createEchoEngine } from './echo-engine.js';
import { linkAbortSignals } from './linked-signal.js';

/** Entries Node keeps in a source signal's set of dependants (what `AbortSignal.any` fills). */
function dependants(signal: AbortSignal): number {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  if (symbol === undefined) return 0;
  // Node's own Set, from another realm under vitest: no `instanceof Set`.
  const size = (signal as unknown as Record<symbol, { size?: unknown } | undefined>)[symbol]?.size;
  return typeof size === 'number' ? size : 0;
}

describe('linkAbortSignals', () => {
  it('aborts with the reason of whichever source aborts', () => {
    for (const which of [0, 1]) {
      const sources = [new AbortController(), new AbortController()];
      const link = linkAbortSignals(sources.map((c) => c.signal));
      expect(link.signal.aborted).toBe(false);
      const reason = new Error(`source ${which}`);
      sources[which]!.abort(reason);
      expect(link.signal.aborted).toBe(true);
      expect(link.signal.reason).toBe(reason);
    }
  });

  it('is aborted at once when a source already is, and then listens to no other source', () => {
    const live = new AbortController();
    const reason = new Error('gone');
    const link = linkAbortSignals([live.signal, AbortSignal.abort(reason)]);
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe(reason);
    expect(getEventListeners(live.signal, 'abort')).toHaveLength(0);
  });

  it('ignores absent sources and never aborts without any', () => {
    const none = linkAbortSignals([undefined, undefined]);
    expect(none.signal.aborted).toBe(false);
    none.release();
    expect(none.signal.aborted).toBe(false);

    const source = new AbortController();
    const one = linkAbortSignals([undefined, source.signal]);
    source.abort();
    expect(one.signal.aborted).toBe(true);
  });

  it('no longer follows its sources once released', () => {
    const source = new AbortController();
    const link = linkAbortSignals([source.signal]);
    link.release();
    link.release();
    expect(getEventListeners(source.signal, 'abort')).toHaveLength(0);
    source.abort();
    expect(link.signal.aborted).toBe(false);
  });

  it('detaches from the other sources when one aborts', () => {
    const engine = new AbortController();
    const request = new AbortController();
    const link = linkAbortSignals([request.signal, engine.signal]);
    request.abort();
    expect(link.signal.aborted).toBe(true);
    expect(getEventListeners(engine.signal, 'abort')).toHaveLength(0);
  });

  it('leaves nothing on a long-lived source after many released links (the soak leak)', () => {
    const engine = new AbortController();
    for (let i = 0; i < 5_000; i++) {
      const request = new AbortController();
      const link = linkAbortSignals([request.signal, engine.signal]);
      expect(getEventListeners(engine.signal, 'abort')).toHaveLength(1);
      if (i % 2 === 0) request.abort();
      link.release();
    }
    expect(getEventListeners(engine.signal, 'abort')).toHaveLength(0);
    expect(dependants(engine.signal)).toBe(0);
    // Still linked while in use: closing the engine aborts a running call.
    const running = linkAbortSignals([new AbortController().signal, engine.signal]);
    engine.abort(new Error('closed'));
    expect(running.signal.aborted).toBe(true);
    expect((running.signal.reason as Error).message).toBe('closed');
  });

  it('is what the echo engine uses: a finished or cancelled generation leaves nothing on the request signal', async () => {
    const engine = createEchoEngine();
    for (const cancel of [false, true]) {
      const request = new AbortController();
      if (cancel) request.abort();
      const { events } = await collect(
        engine.chat({
          model: 'echo',
          messages: [{ role: 'user', content: 'a b c' }],
          signal: request.signal,
        }),
      );
      expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: cancel ? 'cancelled' : 'stop' });
      // AbortSignal.any would have left the combined signal in this set (and in the engine's own).
      expect(dependants(request.signal)).toBe(0);
      expect(getEventListeners(request.signal, 'abort')).toHaveLength(0);
    }
    await engine.close();
  });
});
