import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { SessionStore } from './sessions.js';

function store(options: { ttlSeconds?: number; maxSessions?: number } = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const sessions = new SessionStore<string>({
    ttlSeconds: options.ttlSeconds ?? 300,
    maxSessions: options.maxSessions ?? 100,
    now: () => new Date(now),
  });
  return {
    sessions,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('SessionStore', () => {
  it('issues UUIDv4 simple-form ids and 32-byte padded standard-base64 nonces', () => {
    const { sessions } = store();
    const session = sessions.open('sample');
    expect(session.id).toMatch(/^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(session.nonce).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(session.expiresAt.getTime() - session.issuedAt.getTime()).toBe(300_000);
  });

  it('goes authed → attesting → attested, and keeps the expiry of /auth', () => {
    const { sessions, advance } = store();
    const { id, expiresAt } = sessions.open('snp');
    advance(10_000);
    expect(sessions.beginAttestation(id).tee).toBe('snp');
    expect(sessions.get(id).state).toBe('attesting');
    const attested = sessions.completeAttestation(id, 'token', 'identity');
    expect(attested).toMatchObject({ state: 'attested', token: 'token', attestation: 'identity', expiresAt });
  });

  it('accepts each challenge once (KBS_NONCE_REPLAYED), after success or failure alike', () => {
    const { sessions } = store();
    const a = sessions.open('sample');
    sessions.beginAttestation(a.id);
    expect(code(() => sessions.beginAttestation(a.id))).toBe('KBS_NONCE_REPLAYED');
    sessions.completeAttestation(a.id, 't', 'i');
    expect(code(() => sessions.beginAttestation(a.id))).toBe('KBS_NONCE_REPLAYED');
  });

  it('forgets a failed session', () => {
    const { sessions } = store();
    const a = sessions.open('sample');
    sessions.beginAttestation(a.id);
    sessions.end(a.id);
    expect(code(() => sessions.get(a.id))).toBe('KBS_SESSION_UNKNOWN');
  });

  it('expires sessions after their lifetime (KBS_SESSION_EXPIRED), then forgets them', () => {
    const { sessions, advance } = store({ ttlSeconds: 60 });
    const a = sessions.open('sample');
    advance(59_999);
    expect(code(() => sessions.get(a.id))).toBe('ok');
    advance(1);
    expect(code(() => sessions.get(a.id))).toBe('KBS_SESSION_EXPIRED');
    expect(code(() => sessions.get(a.id))).toBe('KBS_SESSION_UNKNOWN');
  });

  it('bounds live sessions (RATE_LIMITED), sweeping expired ones first', () => {
    const { sessions, advance } = store({ maxSessions: 3, ttlSeconds: 10 });
    for (let i = 0; i < 3; i++) sessions.open('sample');
    expect(code(() => sessions.open('sample'))).toBe('RATE_LIMITED');
    advance(10_000);
    expect(code(() => sessions.open('sample'))).toBe('ok');
    expect(sessions.size).toBe(1);
  });

  it('never confuses sessions and answers any cookie value with a catalogue code (property)', () => {
    const { sessions } = store({ maxSessions: 10_000 });
    const opened = new Map<string, string>();
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f]{32}$/)), (cookie) => {
        const session = sessions.open('sample');
        if (opened.has(session.id)) return false;
        opened.set(session.id, session.nonce);
        const outcome = code(() => sessions.get(cookie));
        return (
          sessions.get(session.id).id === session.id &&
          (opened.has(cookie) ? outcome === 'ok' : outcome === 'KBS_SESSION_UNKNOWN')
        );
      }),
      { numRuns: 1000 },
    );
  });
});
