import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fastify, type FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { CompactSign, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { utf8Encode } from '@tresor/crypto';
import { defaultErrorShaper, useErrorShaper } from '@tresor/server-kit';
import {
  AuditLog,
  SqlAuditRepository,
  SqlUsedRequestIds,
  openMetadataDatabase,
  type SqlClient,
  type StoredAuditRow,
} from '@tresor/storage';
import { InventoryStore } from '../inventory/inventory-store.js';
import { inventoryOperations } from '../inventory/admin-operations.js';
import { referenceValueOperations } from '../reference-values/admin-operations.js';
import { ReferenceValueStore } from '../reference-values/reference-value-store.js';
import { verifyReferenceValuesDocument } from '../reference-values/reference-values-document.js';
import { MemoryDocumentRepository } from '../signed-documents/document-repository.js';
import { DOCUMENT_PREFIX, documentRoutes } from '../signed-documents/document-routes.js';
import { ephemeralDocumentSigner } from '../signed-documents/ephemeral-signer.js';
import { AdminKeySet } from './admin-keys.js';
import { ADMIN_REQUEST_TYPE, verifyAdminRequest } from './admin-request.js';
import {
  exportAdminKey,
  generateAdminKey,
  importAdminKey,
  signAdminRequest,
  type AdminSigningKey,
} from './admin-request-signer.js';
import { ADMIN_PREFIX, adminRoutes } from './admin-routes.js';
import { DatabaseReplayGuard, ReplayGuard, type AdminReplayGuard } from './replay-guard.js';

const AUDIENCE = 'trust.tresor.test';
const STARTED = new Date('2026-03-01T12:00:00Z');
let now = new Date(STARTED.getTime() + 10_000);
const clock = { now: () => now };

const SET = {
  component: 'serving',
  release: '1.4.0',
  tee: 'snp',
  measurements: { measurement: ['ab'.repeat(48)] },
};
const PUT = `${ADMIN_PREFIX}/reference-values/put`;

interface Harness {
  readonly app: FastifyInstance;
  readonly referenceValues: ReferenceValueStore;
  readonly inventory: InventoryStore;
  readonly db: SqlClient;
  readonly audit: AuditLog;
}

let alice: AdminSigningKey;
let bob: AdminSigningKey;
let mallory: AdminSigningKey;
let h: Harness;

async function harness(
  auditOverride?: { append: AuditLog['append'] },
  replay: (db: SqlClient) => AdminReplayGuard = () => new ReplayGuard(),
): Promise<Harness> {
  alice = await generateAdminKey('alice');
  bob = await generateAdminKey('bob@ops', 'EdDSA');
  mallory = await generateAdminKey('alice'); // claims alice's id, holds another key
  const signer = await ephemeralDocumentSigner('doc-key');
  const db = await openMetadataDatabase({ kind: 'sqlite', file: ':memory:' });
  const audit = new AuditLog(new SqlAuditRepository(db), {
    signer: {
      keyId: signer.keyId,
      algorithm: 'ES256',
      publicJwk: { ...signer.publicJwk },
      sign: (message) => signer.sign(message),
    },
    clock,
  });
  const options = { signer, issuer: AUDIENCE, clock };
  const referenceValues = await ReferenceValueStore.open({
    ...options,
    repository: new MemoryDocumentRepository(),
  });
  const inventory = await InventoryStore.open({ ...options, repository: new MemoryDocumentRepository() });
  const app = fastify({ bodyLimit: 64 * 1024 });
  useErrorShaper(app, defaultErrorShaper);
  await app.register(adminRoutes, {
    prefix: ADMIN_PREFIX,
    keys: await AdminKeySet.parse([
      { id: alice.id, jwk: alice.publicJwk },
      { id: bob.id, jwk: bob.publicJwk },
    ]),
    audience: AUDIENCE,
    windowSeconds: 300,
    clock,
    startedAt: STARTED,
    replay: replay(db),
    audit: auditOverride ?? audit,
    operations: [...referenceValueOperations(referenceValues), ...inventoryOperations(inventory)],
  });
  await app.register(documentRoutes, {
    prefix: DOCUMENT_PREFIX,
    referenceValues: referenceValues.publisher,
    residencyInventory: inventory.publisher,
  });
  return { app, referenceValues, inventory, db, audit };
}

const sign = (key: AdminSigningKey, path: string, request: unknown, at = now, jti?: string) =>
  signAdminRequest(key, {
    audience: AUDIENCE,
    path,
    request,
    now: at,
    ...(jti === undefined ? {} : { jti }),
  });

async function send(path: string, payload: string, contentType = 'application/jose') {
  const response = await h.app.inject({
    method: 'POST',
    url: path,
    payload,
    headers: { 'content-type': contentType },
  });
  return {
    status: response.statusCode,
    code: response.headers['tresor-error-code'],
    body: response.json<Record<string, unknown>>(),
  };
}

async function auditRows(): Promise<StoredAuditRow[]> {
  return new SqlAuditRepository(h.db).read((reader) => reader.records(0, 1000));
}

beforeEach(async () => {
  now = new Date(STARTED.getTime() + 10_000);
  h = await harness();
});
afterEach(async () => {
  await h.app.close();
  await h.db.close();
});

describe('signed admin requests', () => {
  it('applies a signed change, publishes it as the next document version and audits who did what', async () => {
    const answer = await send(PUT, await sign(alice, PUT, SET));
    expect(answer).toMatchObject({ status: 200, body: { version: 2 } });
    const served = await h.app.inject({ method: 'GET', url: `${DOCUMENT_PREFIX}/reference-values` });
    expect(served.headers['content-type']).toBe('application/jose');
    expect(served.headers['tresor-document-version']).toBe('2');
    const keys = (await h.app.inject({ method: 'GET', url: `${DOCUMENT_PREFIX}/document-keys` })).json<{
      keys: [];
    }>();
    const doc = await verifyReferenceValuesDocument(served.body, { keys, issuer: AUDIENCE });
    expect(doc.body.referenceValues).toEqual([
      { ...SET, imageDigests: [], initDataHashes: [], modelDigests: [] },
    ]);
    const [row] = await auditRows();
    expect(row).toMatchObject({
      actorType: 'admin',
      actorId: 'alice',
      action: 'reference-values.put',
      target: 'reference-values:serving/1.4.0/snp',
      outcome: 'success',
    });
    expect(JSON.parse(String(row?.details))).toMatchObject({ version: 2, measurements: 1 });
  });

  it('accepts an Ed25519 admin key, and a key file written and read back', async () => {
    const path = `${ADMIN_PREFIX}/inventory/put`;
    const request = { hardware: [{ id: 'c0ffee00', kind: 'gpu', jurisdiction: 'CH' }] };
    expect(await send(path, await sign(bob, path, request))).toMatchObject({
      status: 200,
      body: { version: 2, machines: 1 },
    });
    const reread = await importAdminKey(JSON.parse(JSON.stringify(await exportAdminKey(alice))));
    expect(await send(path, await sign(reread, path, request))).toMatchObject({
      status: 200,
      body: { version: 3 },
    });
    expect(h.inventory.requireResident(['c0ffee00']).jurisdiction).toBe('CH');
  });

  it('refuses unsigned requests: a JSON body, alg none, no signature, an empty body', async () => {
    const claims = {
      aud: AUDIENCE,
      htu: PUT,
      iat: Math.floor(now.getTime() / 1000),
      jti: 'x'.repeat(22),
      request: SET,
    };
    const signed = await sign(alice, PUT, SET);
    for (const [payload, type] of [
      [JSON.stringify(claims), 'application/json'],
      [JSON.stringify(SET), 'application/json'],
      [new UnsecuredJWT(claims).encode(), 'application/jose'],
      [signed.slice(0, signed.lastIndexOf('.') + 1), 'application/jose'],
      ['', 'application/jose'],
      ['not a jws', 'application/jose'],
    ] as const) {
      expect(await send(PUT, payload, type)).toMatchObject({ status: 401, code: 'ADMIN_SIGNATURE_MISSING' });
    }
    expect(h.referenceValues.document.version).toBe(1);
  });

  it('refuses a key the config does not list, and another key claiming a listed id', async () => {
    const stranger = await generateAdminKey('carol');
    expect(await send(PUT, await sign(stranger, PUT, SET))).toMatchObject({
      status: 401,
      code: 'ADMIN_KEY_UNKNOWN',
    });
    expect(await send(PUT, await sign(mallory, PUT, SET))).toMatchObject({
      status: 401,
      code: 'ADMIN_SIGNATURE_INVALID',
    });
    const { privateKey } = await generateKeyPair('ES256');
    const noKid = await new CompactSign(utf8Encode('{}'))
      .setProtectedHeader({ alg: 'ES256', typ: ADMIN_REQUEST_TYPE })
      .sign(privateKey);
    expect(await send(PUT, noKid)).toMatchObject({ status: 401, code: 'ADMIN_KEY_UNKNOWN' });
    expect(await auditRows()).toEqual([]);
  });

  it('refuses a request signed for another operation or another service', async () => {
    expect(await send(PUT, await sign(alice, `${ADMIN_PREFIX}/reference-values/remove`, SET))).toMatchObject({
      status: 401,
      code: 'ADMIN_SIGNATURE_INVALID',
    });
    const elsewhere = await signAdminRequest(alice, {
      audience: 'trust.other',
      path: PUT,
      request: SET,
      now,
    });
    expect(await send(PUT, elsewhere)).toMatchObject({ status: 401, code: 'ADMIN_SIGNATURE_INVALID' });
  });

  it('accepts each signed request once (replay refused and audited)', async () => {
    const once = await sign(alice, PUT, SET);
    expect((await send(PUT, once)).status).toBe(200);
    expect(await send(PUT, once)).toMatchObject({ status: 409, code: 'ADMIN_REQUEST_REPLAYED' });
    now = new Date(now.getTime() + 200_000);
    expect(await send(PUT, once)).toMatchObject({ status: 409, code: 'ADMIN_REQUEST_REPLAYED' });
    now = new Date(now.getTime() + 200_000);
    expect(await send(PUT, once)).toMatchObject({ status: 401, code: 'ADMIN_REQUEST_EXPIRED' });
    expect(h.referenceValues.document.version).toBe(2);
    const outcomes = (await auditRows()).map((r) => [
      r.outcome,
      (JSON.parse(String(r.details)) as { reason?: string }).reason ?? null,
    ]);
    expect(outcomes).toEqual([
      ['success', null],
      ['denied', 'ADMIN_REQUEST_REPLAYED'],
      ['denied', 'ADMIN_REQUEST_REPLAYED'],
      ['denied', 'ADMIN_REQUEST_EXPIRED'],
    ]);
  });

  it('refuses requests signed too long ago, in the future, or before the service started', async () => {
    const at = (ms: number) => sign(alice, PUT, SET, new Date(ms));
    expect(await send(PUT, await at(now.getTime() + 301_000))).toMatchObject({
      status: 401,
      code: 'ADMIN_REQUEST_EXPIRED',
    });
    expect(await send(PUT, await at(STARTED.getTime() - 5_000))).toMatchObject({
      status: 401,
      code: 'ADMIN_REQUEST_EXPIRED',
    });
    now = new Date(STARTED.getTime() + 3_600_000);
    expect(await send(PUT, await at(now.getTime() - 301_000))).toMatchObject({
      status: 401,
      code: 'ADMIN_REQUEST_EXPIRED',
    });
    expect((await send(PUT, await at(now.getTime() - 290_000))).status).toBe(200);
  });

  it('accepts a request signed before the start when the replay guard is in the database, once', async () => {
    await h.app.close();
    await h.db.close();
    h = await harness(undefined, (db) => new DatabaseReplayGuard(new SqlUsedRequestIds(db)));
    const early = await sign(alice, PUT, SET, new Date(STARTED.getTime() - 5_000));
    expect((await send(PUT, early)).status).toBe(200);
    expect(await send(PUT, early)).toMatchObject({ status: 409, code: 'ADMIN_REQUEST_REPLAYED' });
    expect(await send(PUT, await sign(alice, PUT, SET, new Date(now.getTime() - 301_000)))).toMatchObject({
      status: 401,
      code: 'ADMIN_REQUEST_EXPIRED',
    });
  });

  it('refuses malformed input and missing targets with their codes, auditing the refusal', async () => {
    expect(await send(PUT, await sign(alice, PUT, { ...SET, measurements: {} }))).toMatchObject({
      status: 400,
      code: 'INPUT_MALFORMED',
    });
    const remove = `${ADMIN_PREFIX}/reference-values/remove`;
    expect(
      await send(remove, await sign(alice, remove, { component: 'serving', release: '9.9.9', tee: 'snp' })),
    ).toMatchObject({ status: 404, code: 'ADMIN_TARGET_NOT_FOUND' });
    expect((await auditRows()).map((r) => r.outcome)).toEqual(['denied', 'denied']);
    expect(h.referenceValues.document.version).toBe(1);
  });

  it('refuses an oversized body before reading it', async () => {
    const answer = await send(PUT, 'a'.repeat(3 * 1024 * 1024));
    expect(answer).toMatchObject({ status: 413, code: 'REQUEST_BODY_TOO_LARGE' });
  });

  it('publishes nothing when the audit record cannot be written', async () => {
    await h.app.close();
    await h.db.close();
    h = await harness({ append: () => Promise.reject(new Error('disk full')) });
    const answer = await send(PUT, await sign(alice, PUT, SET));
    expect(answer.status).toBe(500);
    expect(h.referenceValues.document.version).toBe(1);
  });

  it('lists reference values and the inventory for an admin, and answers no secret', async () => {
    const list = `${ADMIN_PREFIX}/inventory/list`;
    expect(await send(list, await sign(alice, list, null))).toMatchObject({
      status: 200,
      body: { version: 1, jurisdiction: 'CH', hardware: [] },
    });
    expect(await auditRows()).toEqual([]);
  });
});

describe('verifyAdminRequest (properties)', () => {
  it('refuses a signed request with any one character changed, with an admin code, never applying it', async () => {
    const keys = await AdminKeySet.parse([{ id: alice.id, jwk: alice.publicJwk }]);
    const signed = await sign(alice, PUT, SET);
    const lastOfSegment = new Set([signed.indexOf('.') - 1, signed.lastIndexOf('.') - 1, signed.length - 1]);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: signed.length - 1 }),
        fc.constantFrom('A', 'b', '0', '_', '.', '='),
        async (i, c) => {
          fc.pre(signed[i] !== c && !lastOfSegment.has(i));
          const changed = signed.slice(0, i) + c + signed.slice(i + 1);
          const outcome = await verifyAdminRequest(changed, {
            keys,
            audience: AUDIENCE,
            path: PUT,
            now,
            notBefore: STARTED,
            windowSeconds: 300,
            replay: new ReplayGuard(),
          }).catch((err: unknown) => err);
          expect(isTresorError(outcome)).toBe(true);
          expect(['ADMIN_SIGNATURE_MISSING', 'ADMIN_SIGNATURE_INVALID', 'ADMIN_KEY_UNKNOWN']).toContain(
            isTresorError(outcome) ? outcome.code : undefined,
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('answers any body with a catalogue refusal, never another error', async () => {
    const keys = await AdminKeySet.parse([{ id: alice.id, jwk: alice.publicJwk }]);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue()), async (body) => {
        const outcome = await verifyAdminRequest(body, {
          keys,
          audience: AUDIENCE,
          path: PUT,
          now,
          notBefore: STARTED,
          windowSeconds: 300,
          replay: new ReplayGuard(),
        }).catch((err: unknown) => err);
        expect(isTresorError(outcome)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('runs any JSON as a reference values request to an answer with a code, never a bare 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (request) => {
        const answer = await send(PUT, await sign(alice, PUT, request));
        expect([200, 400]).toContain(answer.status);
        if (answer.status === 400) expect(answer.code).toBe('INPUT_MALFORMED');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ReplayGuard', () => {
  it('forgets ids once expired, and refuses new ones rather than forget live ones when full', async () => {
    const guard = new ReplayGuard(2);
    await guard.use('a', 1000, 0);
    await guard.use('b', 2000, 0);
    await expect(guard.use('c', 3000, 500)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await guard.use('c', 3000, 1000);
    expect(guard.size).toBe(2);
    await expect(guard.use('b', 4000, 1500)).rejects.toMatchObject({ code: 'ADMIN_REQUEST_REPLAYED' });
  });
});

describe('DatabaseReplayGuard', () => {
  it('refuses a replay after a restart and from another replica, and when full', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tresor-replay-'));
    const target = { kind: 'sqlite' as const, file: join(dir, 'tresor.db') };
    try {
      const first = await openMetadataDatabase(target);
      const guard = new DatabaseReplayGuard(new SqlUsedRequestIds(first), 2);
      expect(guard.persistent).toBe(true);
      await guard.use('alice\u0000jti-1', 300_000, 0);
      await first.close();
      const restarted = await openMetadataDatabase(target);
      const replica = await openMetadataDatabase(target);
      const again = new DatabaseReplayGuard(new SqlUsedRequestIds(restarted), 2);
      const other = new DatabaseReplayGuard(new SqlUsedRequestIds(replica), 2);
      await expect(again.use('alice\u0000jti-1', 300_000, 10)).rejects.toMatchObject({
        code: 'ADMIN_REQUEST_REPLAYED',
      });
      await other.use('alice\u0000jti-2', 300_000, 10);
      await expect(again.use('alice\u0000jti-2', 300_000, 20)).rejects.toMatchObject({
        code: 'ADMIN_REQUEST_REPLAYED',
      });
      await expect(again.use('alice\u0000jti-3', 300_000, 20)).rejects.toMatchObject({
        code: 'RATE_LIMITED',
      });
      await again.use('alice\u0000jti-1', 600_000, 300_000);
      await restarted.close();
      await replica.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('AdminKeySet', () => {
  it('refuses private keys, RSA and P-384 keys, a mismatched alg and repeated ids', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const p384 = await generateKeyPair('ES384', { extractable: true });
    const pub = await exportJWK(publicKey);
    for (const keys of [
      [{ id: 'a', jwk: await exportJWK(privateKey) }],
      [{ id: 'a', jwk: await exportJWK(rsa.publicKey) }],
      [{ id: 'a', jwk: await exportJWK(p384.publicKey) }],
      [{ id: 'a', jwk: { ...pub, alg: 'EdDSA' } }],
      [{ id: 'a', jwk: { ...pub, x: 'AAAA' } }],
      [
        { id: 'a', jwk: pub },
        { id: 'a', jwk: pub },
      ],
      [{ id: 'has space', jwk: pub }],
      { a: pub },
    ]) {
      await expect(AdminKeySet.parse(keys)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    }
    expect((await AdminKeySet.parse([{ id: 'a', jwk: pub }])).ids).toEqual(['a']);
  });
});
