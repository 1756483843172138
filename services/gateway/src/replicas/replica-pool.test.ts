import { createServer, type Server } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { createGatewayKey, HpkeKeyPair } from '@tresor/crypto';
import type { TrustDocumentSource } from '../attestation/trust-documents.js';
import { classifyTransportFailure, transportFailureOf } from './mesh-client.js';
import { ReplicaPool, type Delay, type Replica } from './replica-pool.js';
import type { ReplicaVerifier, VerifiedReplica } from './replica-verifier.js';

/**
 * Ejection policy: overload (busy answers, a slow request) never takes a replica out; gone or
 * untrusted replicas leave at once, slow ones after three failures in a row; a replica out of
 * rotation is re-probed on its own backoff timer and returns only when its evidence verifies.
 * The verifier stands in for the TEE evidence check (covered in replica-verifier.test.ts).
 */

const NOW = new Date('2026-12-07T12:00:00Z');
const hpkeKeyConfig = createGatewayKey(1, await HpkeKeyPair.generate()).config;

function verified(): VerifiedReplica {
  return {
    id: 'serving-a',
    tee: 'sample',
    models: ['tiny'],
    hpkeKeyConfig,
    tlsSpkiSha256: 'ab'.repeat(32),
    producedAt: NOW,
  };
}

/** A verifier whose verdict the test sets: verified, or the refusal it throws. */
class SwitchVerifier implements ReplicaVerifier {
  verdict: 'pass' | TresorError = 'pass';
  calls = 0;
  verify(): Promise<VerifiedReplica> {
    this.calls++;
    return this.verdict === 'pass' ? Promise.resolve(verified()) : Promise.reject(this.verdict);
  }
}

/** Timers the test fires by hand. */
class ManualDelay {
  readonly pending: { ms: number; run: () => void; cancelled: boolean }[] = [];
  readonly delay: Delay = (ms, run) => {
    const entry = { ms, run, cancelled: false };
    this.pending.push(entry);
    return () => {
      entry.cancelled = true;
    };
  };
  /** Fires the due timers; returns their delays. */
  fire(): number[] {
    const due = this.pending.splice(0).filter((e) => !e.cancelled);
    for (const e of due) e.run();
    return due.map((e) => e.ms);
  }
}

const documents = {
  current: () => Promise.resolve({ referenceValues: {}, inventory: {} }),
} as unknown as TrustDocumentSource;

const pools: ReplicaPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

/** A pool of one replica whose evidence fetch answers canned JSON (no TEE, no network). */
function poolWith(url = 'https://127.0.0.1:9/'): {
  pool: ReplicaPool;
  replica: Replica;
  verifier: SwitchVerifier;
  timers: ManualDelay;
} {
  const verifier = new SwitchVerifier();
  const timers = new ManualDelay();
  const pool = new ReplicaPool({
    urls: [url],
    mesh: { ca: '', cert: '', key: '' },
    verifier,
    documents,
    now: () => NOW,
    maxAgeMs: 300_000,
    timeoutMs: 2_000,
    logger: pino({ level: 'silent' }),
    delay: timers.delay,
  });
  pool.fetchEvidence = () => Promise.resolve({ json: {}, peerSpkiSha256: 'ab'.repeat(32) });
  pools.push(pool);
  const replica = pool.replicas[0];
  if (replica === undefined) throw new Error('no replica');
  return { pool, replica, verifier, timers };
}

async function attested(): Promise<ReturnType<typeof poolWith>> {
  const setup = poolWith();
  await setup.pool.verifyAll();
  expect(setup.pool.healthy()).toHaveLength(1);
  return setup;
}

/** Lets the re-probe's verification (promises) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('replica ejection: overload is not an outage', () => {
  it('keeps a replica that answers busy, however often', async () => {
    const { pool, replica } = await attested();
    for (let i = 0; i < 50; i++) pool.answered(replica);
    expect(pool.pick('tiny')).toBe(replica);
  });

  it('keeps a replica after one or two timeouts', async () => {
    const { pool, replica } = await attested();
    expect(pool.transportFailed(replica, 'timeout')).toBe(false);
    expect(pool.transportFailed(replica, 'broken')).toBe(false);
    expect(pool.pick('tiny')).toBe(replica);
    expect(replica.lastError).toBeNull();
  });

  it('starts counting afresh after an answer: timeouts spread between answers never eject', async () => {
    const { pool, replica } = await attested();
    for (let i = 0; i < 10; i++) {
      pool.transportFailed(replica, 'timeout');
      pool.transportFailed(replica, 'timeout');
      pool.answered(replica);
    }
    expect(pool.healthy()).toHaveLength(1);
  });

  it('ignores a stale kept-alive connection (the request never reached the replica)', async () => {
    const { pool, replica } = await attested();
    for (let i = 0; i < 5; i++) expect(pool.transportFailed(replica, 'stale')).toBe(false);
    expect(replica.transportFailures).toBe(0);
    expect(pool.pick('tiny')).toBe(replica);
  });

  it('takes a replica out after three consecutive transport failures', async () => {
    const { pool, replica } = await attested();
    pool.transportFailed(replica, 'timeout');
    pool.transportFailed(replica, 'broken');
    expect(pool.transportFailed(replica, 'timeout')).toBe(true);
    expect(pool.healthy()).toHaveLength(0);
    expect(replica.lastError).toBe('UPSTREAM_FAILED');
    expect(() => pool.pick('tiny')).toThrow(expect.objectContaining({ code: 'REPLICA_UNAVAILABLE' }));
  });

  it('takes a replica out at once when it is gone or its mTLS handshake fails', async () => {
    for (const kind of ['gone', 'untrusted'] as const) {
      const { pool, replica } = await attested();
      expect(pool.transportFailed(replica, kind)).toBe(true);
      expect(() => pool.pick('tiny')).toThrow(expect.objectContaining({ code: 'REPLICA_UNAVAILABLE' }));
    }
  });

  it('takes a replica out at once on a refused connection, classified from a real socket error', async () => {
    // A port that was just listening and is now closed: connecting is refused.
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
    const { pool, replica } = poolWith(`https://127.0.0.1:${address.port}/`);
    const err = await replica.client.send('GET', '/v1/models').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TresorError);
    expect(transportFailureOf(err)).toBe('gone');
    expect((err as TresorError).details?.system).toBe('ECONNREFUSED');
    // Attested only now, so the refusal is what takes it out.
    pool.fetchEvidence = () => Promise.resolve({ json: {}, peerSpkiSha256: 'ab'.repeat(32) });
    await pool.verifyAll();
    expect(pool.transportFailed(replica, transportFailureOf(err) ?? 'broken')).toBe(true);
    expect(pool.healthy()).toHaveLength(0);
  });

  it('takes a replica out at once on a TLS key mismatch or a sealed answer that fails (fail)', async () => {
    const { pool, replica } = await attested();
    pool.fail(replica, 'TLS_KEY_MISMATCH');
    expect(pool.healthy()).toHaveLength(0);
    expect(replica.lastError).toBe('TLS_KEY_MISMATCH');
  });
});

describe('replica re-probe', () => {
  it('brings an ejected replica back after a successful re-probe, without the periodic timer', async () => {
    const { pool, replica, verifier, timers } = await attested();
    pool.transportFailed(replica, 'gone');
    expect(verifier.calls).toBe(1);
    expect(timers.fire()).toEqual([250]);
    await settle();
    expect(verifier.calls).toBe(2);
    expect(pool.pick('tiny')).toBe(replica);
    expect(replica.lastError).toBeNull();
    expect(timers.pending).toHaveLength(0);
  });

  it('keeps a replica whose evidence fails out, re-probing with a doubling, bounded backoff', async () => {
    const { pool, replica, verifier, timers } = await attested();
    verifier.verdict = new TresorError('ATTESTATION_SIGNATURE_INVALID');
    await pool.verifyAll();
    expect(pool.healthy()).toHaveLength(0);
    expect(replica.lastError).toBe('ATTESTATION_SIGNATURE_INVALID');
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      delays.push(...timers.fire());
      await settle();
      expect(pool.healthy()).toHaveLength(0);
      expect(() => pool.pick('tiny')).toThrow(expect.objectContaining({ code: 'REPLICA_UNAVAILABLE' }));
    }
    expect(delays.slice(0, 4)).toEqual([250, 500, 1000, 2000]);
    expect(Math.max(...delays)).toBe(30_000);
    expect(delays.at(-1)).toBe(30_000);
  });

  it('does not route to a replica until its re-probe verifies, and never twice-schedules', async () => {
    const { pool, replica, verifier, timers } = await attested();
    verifier.verdict = new TresorError('EVIDENCE_STALE');
    pool.transportFailed(replica, 'untrusted');
    pool.fail(replica, 'UPSTREAM_FAILED');
    await pool.verifyAll();
    expect(timers.pending.filter((t) => !t.cancelled)).toHaveLength(1);
    verifier.verdict = 'pass';
    timers.fire();
    await settle();
    expect(pool.pick('tiny')).toBe(replica);
  });

  it('stops re-probing once the pool is closed', async () => {
    const { pool, replica, verifier, timers } = await attested();
    pool.transportFailed(replica, 'gone');
    pool.close();
    timers.fire();
    await settle();
    expect(verifier.calls).toBe(1);
    expect(pool.healthy()).toHaveLength(0);
  });
});

describe('classifyTransportFailure', () => {
  const fresh = { connected: false, reused: false, timedOut: false };
  const error = (code: string): Error => Object.assign(new Error(code), { code });

  it('reads refused and unreachable as gone, and a reset while connecting too', () => {
    expect(classifyTransportFailure(error('ECONNREFUSED'), fresh)).toBe('gone');
    expect(classifyTransportFailure(error('EHOSTUNREACH'), fresh)).toBe('gone');
    expect(classifyTransportFailure(error('ECONNRESET'), fresh)).toBe('gone');
  });

  it('reads certificate and handshake errors as untrusted', () => {
    expect(classifyTransportFailure(error('DEPTH_ZERO_SELF_SIGNED_CERT'), fresh)).toBe('untrusted');
    expect(classifyTransportFailure(error('ERR_TLS_CERT_ALTNAME_INVALID'), fresh)).toBe('untrusted');
    expect(classifyTransportFailure(error('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), fresh)).toBe(
      'untrusted',
    );
    expect(classifyTransportFailure(new Error('handshake'), fresh)).toBe('untrusted');
  });

  it('reads a reset on a reused connection as stale, after the handshake as broken, a timeout as timeout', () => {
    expect(classifyTransportFailure(error('ECONNRESET'), { ...fresh, connected: true, reused: true })).toBe(
      'stale',
    );
    expect(classifyTransportFailure(error('ECONNRESET'), { ...fresh, connected: true })).toBe('gone');
    expect(classifyTransportFailure(error('EPROTO'), { ...fresh, connected: true })).toBe('broken');
    expect(classifyTransportFailure(error('ECONNRESET'), { ...fresh, connected: true, timedOut: true })).toBe(
      'timeout',
    );
  });

  it('finds no transport failure in other errors', () => {
    expect(transportFailureOf(new Error('x'))).toBeUndefined();
    expect(transportFailureOf(new TresorError('UPSTREAM_FAILED'))).toBeUndefined();
    expect(
      transportFailureOf(new TresorError('UPSTREAM_FAILED', 'x', { details: { transport: 'other' } })),
    ).toBeUndefined();
  });
});
