import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileKeyStore, SecretKeyBytes, type KeyId, type KeyStore } from '@tresor/keystore';
import {
  AuditLog,
  keyStoreCheckpointSigner,
  openMetadataDatabase,
  SqlAuditRepository,
  type SqlClient,
} from '@tresor/storage';
import {
  ADMIN_MEDIA_TYPE,
  ADMIN_PREFIX,
  AdminKeySet,
  adminRoutes,
  generateAdminKey,
  ReplayGuard,
  signAdminRequest,
  type AdminSigningKey,
} from '@tresor/trust';
import { statusOperations } from './status-operations.js';

/**
 * audit/verify and keystore/status through the real admin routes (signed requests), a real
 * SQLite audit log and a real file keystore; the chain is broken and keys revoked for real.
 */

const AUDIENCE = 'tresor-gateway-test';

interface Fixture {
  app: FastifyInstance;
  db: SqlClient;
  store: KeyStore;
  audit: AuditLog;
  admin: AdminSigningKey;
  kek: KeyId;
  dir: string;
}

let f: Fixture;

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-status-'));
  const store = await FileKeyStore.open({
    path: join(dir, 'keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('status test passphrase only')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const checkpointKey = await store.createSigningKey('ES256', { label: 'audit' });
  const kek = await store.createKek({ label: 'tenants' });
  const db = await openMetadataDatabase({ kind: 'sqlite', file: join(dir, 'state.db') });
  const auditRecords = new SqlAuditRepository(db);
  const audit = new AuditLog(auditRecords, {
    signer: await keyStoreCheckpointSigner(store, checkpointKey.id),
    checkpointEvery: 3,
  });
  const admin = await generateAdminKey('ops', 'ES256');
  const app = Fastify();
  await app.register(adminRoutes, {
    prefix: ADMIN_PREFIX,
    keys: await AdminKeySet.parse([{ id: admin.id, jwk: admin.publicJwk }]),
    audience: AUDIENCE,
    windowSeconds: 300,
    clock: { now: () => new Date() },
    startedAt: new Date(Date.now() - 1000),
    replay: new ReplayGuard(),
    audit,
    operations: statusOperations({
      audit,
      auditRecords,
      keyStore: store,
      keys: { tenantKek: kek.id, auditCheckpoint: checkpointKey.id },
      now: () => new Date('2026-12-07T10:00:00Z'),
    }),
  });
  for (const target of ['tenant:acme', 'tenant:globex', 'api-key:k1', 'api-key:k2']) {
    await audit.append({
      actor: { type: 'admin', id: 'ops' },
      action: 'tenants.create',
      target,
      outcome: 'success',
      details: {},
    });
  }
  f = { app, db, store, audit, admin, kek: kek.id, dir };
});

afterEach(async () => {
  await f.app.close();
  await f.db.close();
  await f.store.close().catch(() => undefined);
  await rm(f.dir, { recursive: true, force: true });
});

async function call(
  operation: string,
  request: unknown,
  key: AdminSigningKey = f.admin,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const path = `${ADMIN_PREFIX}/${operation}`;
  const jws = await signAdminRequest(key, { audience: AUDIENCE, path, request, now: new Date() });
  const res = await f.app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': ADMIN_MEDIA_TYPE },
    payload: jws,
  });
  return { status: res.statusCode, json: res.json() };
}

async function lastRecord(): Promise<{ action: string; outcome: string; details: Record<string, unknown> }> {
  const rows = await f.db.query(
    'SELECT action, outcome, details FROM audit_records ORDER BY seq DESC LIMIT 1',
  );
  const row = rows[0] as { action: string; outcome: string; details: string };
  return { ...row, details: JSON.parse(row.details) as Record<string, unknown> };
}

/** What someone with write access to the database file can do: drop the guard, then edit. */
async function tamper(sql: string): Promise<void> {
  await f.db.execute('DROP TRIGGER IF EXISTS audit_records_append_only');
  await f.db.execute(sql);
}

describe('audit/verify', () => {
  it('reports an intact chain with its span, checkpoints and newest records, and audits the look', async () => {
    const { status, json } = await call('audit/verify', { recent: 3 });
    expect(status).toBe(200);
    expect(json.intact).toBe(true);
    expect(json.records).toBe(4);
    expect(json.firstSeq).toBe(1);
    expect(json.lastSeq).toBe(4);
    expect(json.checkpoints).toBeGreaterThanOrEqual(1);
    expect(typeof json.firstTime).toBe('string');
    expect(typeof json.lastTime).toBe('string');
    expect(json.problem).toBeUndefined();
    const recent = json.recent as { seq: number; target: string; actor: string }[];
    expect(recent.map((r) => r.seq)).toEqual([4, 3, 2]);
    expect(recent[0]).toMatchObject({ target: 'api-key:k2', actor: 'admin:ops' });
    const record = await lastRecord();
    expect(record).toMatchObject({ action: 'audit.verify', outcome: 'success' });
    expect(record.details).toMatchObject({ intact: true, records: 4 });
  });

  it('lists only the records it verified, newest first, when more were appended meanwhile', async () => {
    const first = await call('audit/verify', { recent: 10 });
    expect(first.json.lastSeq).toBe(4);
    // The first call appended its own audit.verify record (5): the second covers 1–5 and lists all.
    const { json } = await call('audit/verify', { recent: 10 });
    expect(json.lastSeq).toBe(5);
    expect((json.recent as { seq: number }[]).map((r) => r.seq)).toEqual([5, 4, 3, 2, 1]);
  });

  it('accepts a null request (the default of ten records)', async () => {
    const { status, json } = await call('audit/verify', null);
    expect(status).toBe(200);
    expect((json.recent as unknown[]).length).toBe(4);
  });

  it('names the first edited record when the chain is broken', async () => {
    await tamper("UPDATE audit_records SET target = 'tenant:evil' WHERE seq = 2");
    const { status, json } = await call('audit/verify', {});
    expect(status).toBe(200);
    expect(json.intact).toBe(false);
    expect(json.problem).toMatchObject({ code: 'AUDIT_CHAIN_BROKEN', seq: 2 });
    expect((await lastRecord()).details).toMatchObject({ intact: false, problem: 'AUDIT_CHAIN_BROKEN' });
  });

  it('names a deleted record', async () => {
    await tamper('DELETE FROM audit_records WHERE seq = 3');
    const { json } = await call('audit/verify', {});
    expect(json.intact).toBe(false);
    expect((json.problem as { seq: number }).seq).toBe(3);
  });

  it('refuses a malformed request, and records the refusal', async () => {
    const { status, json } = await call('audit/verify', { recent: 500 });
    expect(status).toBe(400);
    expect(json.code).toBe('INPUT_MALFORMED');
    expect(await lastRecord()).toMatchObject({ action: 'audit.verify', outcome: 'denied' });
  });

  it('refuses unknown members', async () => {
    const { status, json } = await call('audit/verify', { everything: true });
    expect(status).toBe(400);
    expect(json.code).toBe('INPUT_MALFORMED');
  });

  it('refuses a request signed by a key it does not know', async () => {
    const stranger = await generateAdminKey('ops', 'ES256');
    const { status } = await call('audit/verify', {}, stranger);
    expect(status).toBe(401);
  });
});

describe('keystore/status', () => {
  it('reports both keys reachable and not revoked, without key material', async () => {
    const { status, json } = await call('keystore/status', {});
    expect(status).toBe(200);
    expect(json).toMatchObject({ backend: 'file', reachable: true, revoked: false });
    expect(json.checkedAt).toBe('2026-12-07T10:00:00.000Z');
    const keys = json.keys as Record<string, unknown>[];
    expect(keys.map((k) => [k.role, k.state, k.reachable, k.revoked])).toEqual([
      ['tenant-kek', 'enabled', true, false],
      ['audit-checkpoint', 'enabled', true, false],
    ]);
    const text = JSON.stringify(json);
    for (const secret of ['"k"', '"d"', 'wrapped', 'ciphertext']) expect(text).not.toContain(secret);
    expect(await lastRecord()).toMatchObject({ action: 'keystore.status', outcome: 'success' });
  });

  it('shows a disabled tenant KEK as revoked', async () => {
    await f.store.disable(f.kek);
    const { json } = await call('keystore/status', null);
    expect(json).toMatchObject({ reachable: true, revoked: true });
    expect((json.keys as Record<string, unknown>[])[0]).toMatchObject({
      role: 'tenant-kek',
      state: 'disabled',
      revoked: true,
    });
  });

  it('shows a destroyed tenant KEK as revoked', async () => {
    await f.store.destroy(f.kek);
    const { json } = await call('keystore/status', {});
    expect((json.keys as Record<string, unknown>[])[0]).toMatchObject({ state: 'destroyed', revoked: true });
  });

  it('shows an unreachable keystore with the catalogue code', async () => {
    await f.store.close();
    const { status, json } = await call('keystore/status', {});
    expect(status).toBe(200);
    expect(json).toMatchObject({ reachable: false, revoked: false });
    expect((json.keys as Record<string, unknown>[])[0]).toMatchObject({
      state: 'unknown',
      reachable: false,
      code: 'KEYSTORE_UNAVAILABLE',
    });
  });

  it('refuses a request with members', async () => {
    const { status, json } = await call('keystore/status', { tenant: 'acme' });
    expect(status).toBe(400);
    expect(json.code).toBe('INPUT_MALFORMED');
    expect(await lastRecord()).toMatchObject({ action: 'keystore.status', outcome: 'denied' });
  });
});
