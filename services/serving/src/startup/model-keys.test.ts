import { describe, expect, it } from 'vitest';
import { isTresorError, TresorError, type ErrorCode } from '@tresor/protocol';
import { releaseModelKeyRetrying } from './model-keys.js';

/**
 * The start-up key release asked again while the trust service is away (issue #13: a trust restart
 * must not leave a replica not-ready for good). The client is the KbsClient's one method, answering
 * a scripted sequence of outcomes; the real path (kill -9 of a trust process) is in
 * test/integration/reliability-trust-process.test.ts.
 */

const KEY = new Uint8Array(32).fill(7);

function scripted(outcomes: readonly (ErrorCode | 'key')[]): {
  getResource: () => Promise<Uint8Array>;
  calls: () => number;
} {
  let calls = 0;
  return {
    calls: () => calls,
    getResource: () => {
      const outcome = outcomes[Math.min(calls, outcomes.length - 1)] ?? 'key';
      calls++;
      return outcome === 'key'
        ? Promise.resolve(KEY.slice())
        : Promise.reject(new TresorError(outcome, `scripted ${outcome}`));
    },
  };
}

async function outcome(work: Promise<Uint8Array>): Promise<string> {
  try {
    return (await work).length === 32 ? 'key' : 'bad key';
  } catch (err) {
    if (!isTresorError(err)) throw err;
    return `${err.code}/${String(err.details?.refusal)}`;
  }
}

const fast = { initialDelayMs: 1, maxDelayMs: 4 };

describe('releaseModelKeyRetrying', () => {
  it('gets the key once the trust service answers again, reporting each transient refusal', async () => {
    const client = scripted([
      'TRUST_SERVICE_UNREACHABLE',
      'SERVICE_NOT_READY',
      'STORAGE_UNAVAILABLE',
      'KEYSTORE_UNAVAILABLE',
      'key',
    ]);
    const seen: string[] = [];
    const delays: number[] = [];
    const result = await outcome(
      releaseModelKeyRetrying(client, 'm', 'kbs:///models/key/m', {
        ...fast,
        signal: new AbortController().signal,
        onRetry: (error, delayMs) => {
          seen.push(String(error.details?.refusal));
          delays.push(delayMs);
        },
      }),
    );
    expect(result).toBe('key');
    expect(client.calls()).toBe(5);
    expect(seen).toEqual([
      'TRUST_SERVICE_UNREACHABLE',
      'SERVICE_NOT_READY',
      'STORAGE_UNAVAILABLE',
      'KEYSTORE_UNAVAILABLE',
    ]);
    expect(delays).toEqual([1, 2, 4, 4]); // doubled, capped at maxDelayMs
  });

  it.each<ErrorCode>([
    'POLICY_DENIED',
    'MEASUREMENT_NOT_ALLOWED',
    'RESIDENCY_VIOLATION',
    'ATTESTATION_SIGNATURE_INVALID',
  ])('does not ask again after a deliberate refusal (%s)', async (code) => {
    const client = scripted([code, 'key']);
    const result = await outcome(
      releaseModelKeyRetrying(client, 'm', 'kbs:///models/key/m', {
        ...fast,
        signal: new AbortController().signal,
      }),
    );
    expect(result).toBe(`MODEL_KEY_NOT_RELEASED/${code}`);
    expect(client.calls()).toBe(1);
  });

  it('gives up after the bounded number of attempts with the trust service still away', async () => {
    const client = scripted(['TRUST_SERVICE_UNREACHABLE']);
    const result = await outcome(
      releaseModelKeyRetrying(client, 'm', 'kbs:///models/key/m', {
        ...fast,
        attempts: 5,
        signal: new AbortController().signal,
      }),
    );
    expect(result).toBe('MODEL_KEY_NOT_RELEASED/TRUST_SERVICE_UNREACHABLE');
    expect(client.calls()).toBe(5);
  });

  it('stops waiting at once when the replica is closed', async () => {
    const client = scripted(['TRUST_SERVICE_UNREACHABLE']);
    const closing = new AbortController();
    const result = outcome(
      releaseModelKeyRetrying(client, 'm', 'kbs:///models/key/m', {
        initialDelayMs: 3_600_000,
        signal: closing.signal,
        onRetry: () => {
          closing.abort();
        },
      }),
    );
    expect(await result).toBe('MODEL_KEY_NOT_RELEASED/TRUST_SERVICE_UNREACHABLE');
    expect(client.calls()).toBe(1);
  });

  it('a released resource that is not a model key is refused, not retried', async () => {
    let calls = 0;
    const client = {
      getResource: () => {
        calls++;
        return Promise.resolve(new Uint8Array(5));
      },
    };
    const result = await outcome(
      releaseModelKeyRetrying(client, 'm', 'kbs:///models/key/m', {
        ...fast,
        signal: new AbortController().signal,
      }),
    );
    expect(result).toBe('MODEL_KEY_NOT_RELEASED/SEALED_MODEL_KEY_INVALID');
    expect(calls).toBe(1);
  });
});
