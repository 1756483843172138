import { afterEach, describe, expect, it, vi } from 'vitest';
import { PARENT_PID_ENV, untilSignal } from './signals.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('untilSignal', () => {
  it('resolves with the signal received and stops listening', async () => {
    const term = process.listenerCount('SIGTERM');
    const int = process.listenerCount('SIGINT');
    const stopped = untilSignal({ env: {} });
    expect(process.listenerCount('SIGTERM')).toBe(term + 1);
    process.emit('SIGTERM', 'SIGTERM');
    await expect(stopped).resolves.toBe('SIGTERM');
    expect(process.listenerCount('SIGTERM')).toBe(term);
    expect(process.listenerCount('SIGINT')).toBe(int);
  });

  it("resolves with 'parent exited' once the parent named by TRESOR_PARENT_PID is gone", async () => {
    vi.useFakeTimers();
    let parent = 4242;
    const stopped = untilSignal({ env: { [PARENT_PID_ENV]: '4242' }, pollMs: 100, ppid: () => parent });
    let settled = false;
    void stopped.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1000);
    expect(settled).toBe(false);
    parent = 1; // re-parented to init
    await vi.advanceTimersByTimeAsync(100);
    await expect(stopped).resolves.toBe('parent exited');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops at once when the parent is already gone when it starts', async () => {
    await expect(untilSignal({ env: { [PARENT_PID_ENV]: '4242' }, ppid: () => 1 })).resolves.toBe(
      'parent exited',
    );
  });

  it.each(['', '0', '-1', 'abc', '12x', '99999999999'])('ignores %j as a parent pid', async (value) => {
    vi.useFakeTimers();
    const stopped = untilSignal({ env: { [PARENT_PID_ENV]: value }, pollMs: 100, ppid: () => 1 });
    expect(vi.getTimerCount()).toBe(0);
    process.emit('SIGINT', 'SIGINT');
    await expect(stopped).resolves.toBe('SIGINT');
  });
});
