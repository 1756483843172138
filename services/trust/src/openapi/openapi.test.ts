import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrustFixture, type TrustFixture } from '../../../../test/support/trust-fixture.js';
import { AdminKeySet } from '../admin/admin-keys.js';
import { DEFAULT_ADMIN_WINDOW_SECONDS } from '../admin/admin-plugin.js';
import { trustPlugins } from '../deployment/start-trust-service.js';
import { InventoryStore } from '../inventory/inventory-store.js';
import { MeshCa } from '../mesh-ca/mesh-ca.js';
import { ReferenceValueStore } from '../reference-values/reference-value-store.js';
import { MemoryDocumentRepository } from '../signed-documents/document-repository.js';
import { ephemeralDocumentSigner } from '../signed-documents/ephemeral-signer.js';
import { DOCUMENTED_ADMIN_OPERATIONS, trustOpenApi } from './trust-openapi.js';

type Operations = Record<string, { responses?: Record<string, unknown>; summary?: string }>;

let fixture: TrustFixture;

/** `METHOD /path` for every route the running server registered (HEAD twins of GET left out). */
function registeredRoutes(): string[] {
  const listing = fixture.app.server.app.printRoutes({ commonPrefix: false });
  const routes: string[] = [];
  for (const line of listing.split('\n')) {
    const match = /(\/\S*) \(([A-Z, ]+)\)/.exec(line);
    if (match === null) continue;
    const path = match[1]!.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const method of match[2]!.split(', ')) if (method !== 'HEAD') routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

function documentedRoutes(): string[] {
  const paths = trustOpenApi().paths as Record<string, Operations>;
  return Object.entries(paths)
    .flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    )
    .sort();
}

beforeAll(async () => {
  const signer = await ephemeralDocumentSigner('doc-key');
  const clock = { now: () => new Date() };
  const documents = { signer, issuer: 'tresor-trust', clock };
  const referenceValues = await ReferenceValueStore.open({
    ...documents,
    repository: new MemoryDocumentRepository(),
  });
  const inventory = await InventoryStore.open({ ...documents, repository: new MemoryDocumentRepository() });
  const meshCa = await MeshCa.open({
    signer: { keyId: signer.keyId, publicJwk: signer.publicJwk, sign: (message) => signer.sign(message) },
    policy: referenceValuesAndInventory(referenceValues, inventory),
    audit: { append: () => Promise.resolve() },
    clock,
    trustDomain: 'tresor.local',
    certificateLifetimeSeconds: 600,
  });
  fixture = await startTrustFixture({
    plugins: trustPlugins({
      referenceValues,
      inventory,
      meshCa,
      adminKeys: await AdminKeySet.parse([]),
      adminRequestWindowSeconds: DEFAULT_ADMIN_WINDOW_SECONDS,
    }),
  });
});
afterAll(async () => {
  await fixture.close();
});

function referenceValuesAndInventory(referenceValues: ReferenceValueStore, inventory: InventoryStore) {
  return {
    requireReleased: referenceValues.requireReleased.bind(referenceValues),
    requireResident: inventory.requireResident.bind(inventory),
  };
}

describe('the OpenAPI document', () => {
  it('describes every route the trust service registers, and no route it does not', () => {
    const registered = registeredRoutes();
    expect(registered).toContain('POST /kbs/v0/attest');
    expect(registered).toContain('POST /admin/v0/reference-values/put');
    expect(documentedRoutes()).toEqual(registered);
    expect(
      registered
        .filter((r) => r.startsWith('POST /admin/v0/'))
        .map((r) => r.slice('POST /admin/v0/'.length))
        .sort(),
    ).toEqual([...DOCUMENTED_ADMIN_OPERATIONS].sort());
  });

  it('is served at /openapi.json, and every $ref in it resolves', async () => {
    const served = await fixture.app.server.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(served.statusCode).toBe(200);
    const doc = served.json<Record<string, unknown>>();
    expect(doc).toEqual(JSON.parse(JSON.stringify(trustOpenApi())));
    const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map(
      (m) => m[1]!,
    );
    expect(refs.length).toBeGreaterThan(10);
    for (const name of refs) expect(schemas, `schema ${name}`).toHaveProperty(name);
  });

  it('gives every operation a summary and at least one success answer', () => {
    for (const [path, operations] of Object.entries(trustOpenApi().paths as Record<string, Operations>)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.summary, `${method} ${path}`).toBeTruthy();
        expect(
          Object.keys(operation.responses ?? {}).some((s) => s.startsWith('2')),
          `${method} ${path}`,
        ).toBe(true);
      }
    }
  });
});
