import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import { chat, startPlatform, type PlatformEnv } from '../security/negative-matrix/platform-env.js';

/**
 * Fault injection: clock skew between components (issue #13), on the real platform (trust, a real
 * serving replica, a real gateway whose clock the test moves; test/security/negative-matrix/
 * platform-env.ts). Expectations: skew inside the tolerances is harmless; skew beyond them is
 * refused with a clean code (never a key, an answer or a verification on stale or future-dated
 * evidence); and once the clocks agree again, service resumes without a restart.
 */

let p: PlatformEnv;
let close: () => Promise<void>;

async function codeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ACCEPTED';
  } catch (err) {
    if (isTresorError(err)) return err.code;
    throw err;
  }
}

const connectClient = (now?: () => Date) =>
  connect(p.gateway.url, {
    policy: p.policy(),
    ...createNodeTransport({ ca: p.cluster.gatewayCa }),
    ...(now === undefined ? {} : { now }),
  });

beforeAll(async () => {
  ({ env: p, close } = await startPlatform());
}, 180_000);
afterAll(async () => {
  await close();
});

describe('clock skew', () => {
  it('a client whose clock is 30 s off still verifies and is answered (inside the tolerance)', async () => {
    for (const skew of [-30_000, 30_000]) {
      const client = await connectClient(() => new Date(Date.now() + skew));
      const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(chat('skewed but fine')),
      });
      expect(response.status).toBe(200);
      await response.text();
    }
  });

  it('a client an hour behind the platform refuses its evidence as not fresh (EVIDENCE_STALE)', async () => {
    expect(await codeOf(() => connectClient(() => new Date(Date.now() - 3_600_000)))).toBe('EVIDENCE_STALE');
  });

  it('a gateway an hour ahead: the inner date of every request is outside the replay window (OHTTP_REQUEST_REPLAYED), then recovers', async () => {
    const dated = (): Promise<string | null> =>
      p.sealed('/v1/models', { headers: [['date', new Date().toUTCString()]] });
    expect(await dated()).toBe(null);
    p.advance(3_600_000);
    try {
      expect(await dated()).toBe('OHTTP_REQUEST_REPLAYED');
    } finally {
      p.advance(-3_600_000);
    }
    expect(await dated()).toBe(null);
  });

  it('a gateway an hour ahead takes the replica out of rotation at re-attestation (REPLICA_UNAVAILABLE), and back once clocks agree', async () => {
    p.advance(3_600_000);
    try {
      expect(await p.gateway.pool.verifyAll()).toBe(0);
      expect(await p.sealed('/v1/chat/completions', { body: chat('anyone') })).toBe('REPLICA_UNAVAILABLE');
    } finally {
      p.advance(-3_600_000);
    }
    expect(await p.gateway.pool.verifyAll()).toBe(1);
    expect(await p.sealed('/v1/chat/completions', { body: chat('back') })).toBe(null);
  });
});
