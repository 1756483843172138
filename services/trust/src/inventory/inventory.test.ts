import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import { SampleSigningKey, verifyAttestation, type AppraisalInput } from '@tresor/attestation';
import { MemoryDocumentRepository } from '../signed-documents/document-repository.js';
import { signDocument, type DocumentSigner } from '../signed-documents/document-signer.js';
import { ephemeralDocumentSigner } from '../signed-documents/ephemeral-signer.js';
import { InventoryStore } from './inventory-store.js';
import { requireResident, residencyIds, residentHardwareIds, sampleMachineId } from './residency-check.js';
import {
  parseHardwareEntries,
  parseHardwareIds,
  verifyResidencyInventoryDocument,
  type HardwareEntry,
} from './residency-inventory.js';

const testdata = (path: string) =>
  new Uint8Array(
    readFileSync(new URL(`../../../../../shared/testdata/attestation/${path}`, import.meta.url)),
  );

function codeOf(fn: () => unknown): ErrorCode | 'no error' | 'not a TresorError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isTresorError(err) ? err.code : 'not a TresorError';
  }
}
async function asyncCodeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (err: unknown) => (isTresorError(err) ? err.code : 'not a TresorError'),
  );
}

const clock = { now: () => new Date('2026-03-01T12:00:00Z') };
let signer: DocumentSigner;
let snp: AppraisalInput;
let vlek: AppraisalInput;
let tdx: AppraisalInput;
let gpu: AppraisalInput;

beforeAll(async () => {
  signer = await ephemeralDocumentSigner('doc-key');
  const verify = async (files: Parameters<typeof verifyAttestation>[0]['files'], at: string) =>
    (await verifyAttestation({ files, now: new Date(at) })).result.appraisal;
  snp = await verify(
    {
      report: testdata('snp/gsg-milan-v2/report.bin'),
      signer_cert: testdata('snp/gsg-milan-v2/vcek.der'),
      ca_chain: testdata('snp/gsg-milan-v2/ask_ark.pem'),
    },
    '2025-06-01T00:00:00Z',
  );
  vlek = await verify(
    {
      report: testdata('snp/trustee-milan-vlek-v3/report.bin'),
      signer_cert: testdata('snp/trustee-milan-vlek-v3/vlek.der'),
      ca_chain: testdata('snp/trustee-milan-vlek-v3/asvk_ark.pem'),
    },
    '2025-06-01T00:00:00Z',
  );
  tdx = await verify(
    {
      quote: testdata('tdx/dcap-qvl-v4-uptodate/quote.bin'),
      collateral: testdata('tdx/dcap-qvl-v4-uptodate/collateral.json'),
      intel_root_ca: testdata('tdx/dcap-qvl-v4-uptodate/intel_sgx_root_ca.der'),
    },
    '2025-07-01T00:00:00Z',
  );
  gpu = await verify(
    {
      evidence: testdata('nvidia/nvtrust-hopper-sample/attestation_report.hex'),
      cert_chain: testdata('nvidia/nvtrust-hopper-sample/cert_chain.pem'),
      nvidia_device_root: testdata('nvidia/nvtrust-hopper-sample/nvidia_device_identity_root.pem'),
    },
    '2025-06-01T00:00:00Z',
  );
});

const entry = (id: string, kind: HardwareEntry['kind'], jurisdiction = 'CH'): HardwareEntry => ({
  id,
  kind,
  jurisdiction,
  site: '',
});

describe('residency against real evidence', () => {
  // testdata/attestation/snp/gsg-milan-v2/expected.json claims.chip_id
  const GSG_CHIP_ID =
    '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d';

  it('admits the recorded SNP chip, TDX platform and H100 only while they are listed in CH', () => {
    expect(residencyIds(snp)).toEqual([GSG_CHIP_ID]);
    expect(residencyIds(tdx)).toHaveLength(1);
    expect(residencyIds(gpu)).toHaveLength(1);
    const inventory = {
      hardware: parseHardwareEntries([
        { id: GSG_CHIP_ID.toUpperCase(), kind: 'snp-chip', jurisdiction: 'CH', site: 'ZRH-1' },
        { id: residencyIds(tdx)[0], kind: 'tdx-platform', jurisdiction: 'CH' },
        { id: residencyIds(gpu)[0], kind: 'gpu', jurisdiction: 'DE' },
      ]),
    };
    expect(requireResident(inventory, residencyIds(snp))).toEqual({
      jurisdiction: 'CH',
      hardware: [{ id: GSG_CHIP_ID, kind: 'snp-chip', jurisdiction: 'CH', site: 'ZRH-1' }],
    });
    expect(requireResident(inventory, residencyIds(tdx)).hardware[0]?.kind).toBe('tdx-platform');
    // Listed, but outside the jurisdiction.
    expect(codeOf(() => requireResident(inventory, residencyIds(gpu)))).toBe('RESIDENCY_VIOLATION');
    expect(requireResident(inventory, residencyIds(gpu), 'DE').jurisdiction).toBe('DE');
    // A CPU in the inventory with a GPU that is not: the workload as a whole is refused.
    expect(codeOf(() => requireResident(inventory, [...residencyIds(snp), ...residencyIds(gpu)]))).toBe(
      'RESIDENCY_VIOLATION',
    );
    expect(residentHardwareIds(inventory)).toEqual(
      inventory.hardware.filter((e) => e.jurisdiction === 'CH').map((e) => e.id),
    );
  });

  it('refuses a VLEK-signed SNP report, which names no chip, whatever the inventory lists', () => {
    expect(residencyIds(vlek)).toEqual([]);
    const everything = {
      hardware: parseHardwareEntries([{ id: 'ab'.repeat(64), kind: 'snp-chip', jurisdiction: 'CH' }]),
    };
    expect(codeOf(() => requireResident(everything, residencyIds(vlek)))).toBe('RESIDENCY_VIOLATION');
    expect(residencyIds({ tee: 'snp', hardwareIds: ['00'.repeat(64)] })).toEqual([]);
  });

  it('identifies a sample TEE installation by its public key', () => {
    const key = SampleSigningKey.generate();
    const id = sampleMachineId(key.verifyKey);
    expect(id).toBe(key.verifyKey.hex);
    const inventory = { hardware: [entry(id, 'sample-machine')] };
    expect(
      requireResident(inventory, residencyIds({ tee: 'sample', hardwareIds: [] }, id)).hardware,
    ).toHaveLength(1);
    expect(codeOf(() => requireResident(inventory, residencyIds({ tee: 'sample', hardwareIds: [] })))).toBe(
      'RESIDENCY_VIOLATION',
    );
    const other = sampleMachineId(SampleSigningKey.generate().verifyKey);
    expect(
      codeOf(() => requireResident(inventory, residencyIds({ tee: 'sample', hardwareIds: [] }, other))),
    ).toBe('RESIDENCY_VIOLATION');
  });
});

const hardwareId = fc
  .uint8Array({ minLength: 4, maxLength: 64 })
  .filter((b) => b.some((x) => x !== 0))
  .map((b) => Buffer.from(b).toString('hex'));

describe('residency (properties)', () => {
  it('admits exactly the workloads whose every id is listed under the jurisdiction', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: hardwareId, ch: fc.boolean() }), {
          selector: (e) => e.id,
          maxLength: 8,
        }),
        fc.array(fc.oneof(hardwareId, fc.nat()), { maxLength: 4 }),
        (listed, asked) => {
          const inventory = {
            hardware: parseHardwareEntries(listed.map((e) => entry(e.id, 'gpu', e.ch ? 'CH' : 'FR'))),
          };
          const ids = asked.map((a) =>
            typeof a === 'number' && listed.length > 0 ? listed[a % listed.length]!.id : String(a),
          );
          const allowed = ids.length > 0 && ids.every((id) => listed.some((e) => e.id === id && e.ch));
          expect(codeOf(() => requireResident(inventory, ids))).toBe(
            allowed ? 'no error' : 'RESIDENCY_VIOLATION',
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('answers any JSON value with entries or INPUT_MALFORMED, never another error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.array(fc.record({ id: fc.string(), kind: fc.string(), jurisdiction: fc.string() })),
        ),
        (value) => {
          expect(['no error', 'INPUT_MALFORMED']).toContain(codeOf(() => parseHardwareEntries(value)));
          expect(['no error', 'INPUT_MALFORMED']).toContain(codeOf(() => parseHardwareIds(value)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('parsing admin input', () => {
  it.each([
    [[{ id: 'ab', kind: 'gpu', jurisdiction: 'CH' }], 'an id shorter than 4 bytes'],
    [[{ id: '00000000', kind: 'snp-chip', jurisdiction: 'CH' }], 'an all-zero (masked) chip id'],
    [[{ id: 'abcdefgh', kind: 'gpu', jurisdiction: 'CH' }], 'not hex'],
    [[{ id: 'abcdef01', kind: 'tpm', jurisdiction: 'CH' }], 'an unknown kind'],
    [[{ id: 'abcdef01', kind: 'gpu', jurisdiction: 'ch' }], 'a lower-case country'],
    [[{ id: 'abcdef01', kind: 'gpu', jurisdiction: 'CHE' }], 'an alpha-3 country'],
    [[{ id: 'abcdef01', kind: 'gpu', jurisdiction: 'CH', site: 'a\nb' }], 'a control character in the site'],
    [[{ id: 'abcdef01', kind: 'gpu', jurisdiction: 'CH', owner: 'x' }], 'an unknown member'],
    [
      [
        { id: 'abcdef01', kind: 'gpu', jurisdiction: 'CH' },
        { id: 'ABCDEF01', kind: 'gpu', jurisdiction: 'CH' },
      ],
      'one id twice',
    ],
  ])('refuses %j (%s)', (input, _why) => {
    expect(codeOf(() => parseHardwareEntries(input))).toBe('INPUT_MALFORMED');
  });
});

describe('InventoryStore', () => {
  it('publishes each change as a signed version and applies it to the residency check at once', async () => {
    const store = await InventoryStore.open({
      signer,
      issuer: 'trust.test',
      repository: new MemoryDocumentRepository(),
      clock,
    });
    const keys = store.publisher.verificationKeys;
    const ids = ['a1a1a1a1', 'b2b2b2b2', 'c3c3c3c3'];
    expect(codeOf(() => store.requireResident([ids[0]!]))).toBe('RESIDENCY_VIOLATION');
    await store.replace([entry(ids[0]!, 'snp-chip'), entry(ids[1]!, 'gpu')]);
    expect(store.requireResident([ids[0]!, ids[1]!]).hardware).toHaveLength(2);
    await store.put([entry(ids[2]!, 'tdx-platform'), entry(ids[1]!, 'gpu', 'AT')]);
    expect(codeOf(() => store.requireResident([ids[1]!]))).toBe('RESIDENCY_VIOLATION');
    await store.remove([ids[0]!]);
    expect(codeOf(() => store.requireResident([ids[0]!]))).toBe('RESIDENCY_VIOLATION');
    expect(await asyncCodeOf(store.remove([ids[0]!]))).toBe('ADMIN_TARGET_NOT_FOUND');
    expect(await asyncCodeOf(store.replace([entry(ids[2]!, 'gpu'), entry(ids[2]!, 'gpu')]))).toBe(
      'INPUT_MALFORMED',
    );

    const verified = await verifyResidencyInventoryDocument(store.document.jws, {
      keys,
      issuer: 'trust.test',
    });
    expect(verified.version).toBe(4);
    expect(verified.body.hardware.map((e) => [e.id, e.jurisdiction])).toEqual([
      [ids[1], 'AT'],
      [ids[2], 'CH'],
    ]);
    // A reference values document signed by the same key is not an inventory.
    const confused = await signDocument(signer, 'reference-values', {
      hardware: [],
      iss: 'trust.test',
      iat: 1,
      version: 9,
    });
    expect(await asyncCodeOf(verifyResidencyInventoryDocument(confused, { keys }))).toBe(
      'SIGNED_DOCUMENT_INVALID',
    );
    expect(
      await asyncCodeOf(
        verifyResidencyInventoryDocument(store.document.jws, { keys, pinned: { version: 5, digest: '' } }),
      ),
    ).toBe('SIGNED_DOCUMENT_ROLLBACK');
  });
});
