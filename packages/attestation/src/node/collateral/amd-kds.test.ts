import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeCollateralServer } from '../../../../../test/support/fake-collateral-services.js';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../../../test/support/testdata.js';
import { testdataVector, type TestdataVector } from '../../conformance/testdata-vectors.js';
import { parseCertificates } from '../../certs.js';
import { snpReportBytes } from '../../snp/evidence-formats.js';
import type { SnpProduct } from '../../snp/product.js';
import { verifyAttestation, type AttestationFiles } from '../../verify-attestation.js';
import { fetchSnpCollateral, kdsVcekPath, type SnpCollateralOptions } from './amd-kds.js';
import type { FetchedCollateral } from './collateral-document.js';

interface SnpVectorClaims {
  readonly version: number;
  readonly product: SnpProduct;
  readonly signer: 'vcek' | 'vlek';
  readonly chip_id: string;
  readonly reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number };
}

const vectors = vectorDirs('snp').map((dir) => {
  const vector = testdataVector(readTestdataJson(`${dir}/expected.json`), (f) => readTestdata(`${dir}/${f}`));
  return { vector, claims: vector.claims as unknown as SnpVectorClaims };
});

function vectorNamed(id: string): { vector: TestdataVector; claims: SnpVectorClaims } {
  return vectors.find((v) => v.vector.id === id)!;
}

/** The KDS path of a vector's VCEK, written out from its expected.json (not from the code under test). */
function expectedVcekPath(claims: SnpVectorClaims): string {
  const t = claims.reported_tcb;
  return `/vcek/v1/${claims.product}/${claims.chip_id}?blSPL=${t.bootloader}&teeSPL=${t.tee}&snpSPL=${t.snp}&ucodeSPL=${t.microcode}`;
}

/** The first certificate of a role file as DER, as KDS serves a VCEK. */
function derOf(file: Uint8Array): Uint8Array {
  return new Uint8Array(parseCertificates(file)[0]!.rawData);
}

function filesOf(fetched: FetchedCollateral): AttestationFiles {
  return Object.fromEntries(fetched.files.map((f) => [f.role, new Uint8Array(readFileSync(f.path))]));
}

describe('fetchSnpCollateral against a local fake AMD KDS', () => {
  let kds: FakeCollateralServer;
  let directory: string;
  const options = (overrides: Partial<SnpCollateralOptions> = {}): SnpCollateralOptions => ({
    directory,
    endpoints: { amdKds: kds.url },
    now: () => new Date('2025-06-01T00:00:00Z'),
    sleep: () => Promise.resolve(),
    crl: false,
    ...overrides,
  });

  beforeAll(async () => {
    kds = await FakeCollateralServer.start();
  });
  afterAll(() => kds.close());
  beforeEach(() => {
    kds.reset();
    directory = mkdtempSync(join(tmpdir(), 'tresor-kds-'));
  });

  function serveVector(vector: TestdataVector, claims: SnpVectorClaims): void {
    kds.serve(expectedVcekPath(claims), { body: derOf(vector.files.signer_cert!) });
    kds.serve(`/${claims.signer}/v1/${claims.product}/cert_chain`, { body: vector.files.ca_chain! });
  }

  for (const { vector, claims } of vectors.filter((v) => v.claims.signer === 'vcek')) {
    it(`${vector.id}: the fetched VCEK and chain verify exactly like the test data's`, async () => {
      serveVector(vector, claims);
      const product = claims.version === 2 ? { product: claims.product } : {};
      const fetched = await fetchSnpCollateral(vector.files.report!, options(product));
      expect(fetched.files.map((f) => [f.role, f.source])).toEqual([
        ['signer_cert', 'network'],
        ['ca_chain', 'network'],
      ]);
      expect(fetched.notes).toEqual([]);
      expect(kds.requests).toEqual([expectedVcekPath(claims), `/vcek/v1/${claims.product}/cert_chain`]);
      for (const c of vector.cases) {
        const request = {
          now: c.verifyAt,
          tee: 'snp' as const,
          ...(product.product ? { snpProduct: product.product } : {}),
        };
        const withFetched = await verifyAttestation({
          ...request,
          files: { report: vector.files.report!, ...filesOf(fetched) },
        });
        const withTestdata = await verifyAttestation({ ...request, files: vector.files });
        expect(withFetched.result.valid).toBe(c.valid);
        expect(withFetched.result).toEqual(withTestdata.result);
      }
    });
  }

  it('trustee-milan-vlek-v3: fetches the ASVK chain and says the VLEK must come from the cloud provider', async () => {
    const { vector, claims } = vectorNamed('snp/trustee-milan-vlek-v3');
    serveVector(vector, claims);
    const fetched = await fetchSnpCollateral(vector.files.report!, options());
    expect(fetched.files.map((f) => f.role)).toEqual(['ca_chain']);
    expect(kds.requests).toEqual(['/vlek/v1/Milan/cert_chain']);
    expect(fetched.notes[0]).toMatch(/VLEK, which AMD KDS does not publish/);
    const verified = await verifyAttestation({
      tee: 'snp',
      now: vector.cases[0]!.verifyAt,
      files: { report: vector.files.report!, signer_cert: vector.files.signer_cert!, ...filesOf(fetched) },
    });
    expect(verified.result.valid).toBe(true);
  });

  it('reuses a cached document while it is valid, and refetches it once stale or on refresh', async () => {
    const { vector, claims } = vectorNamed('snp/gsg-milan-v2');
    serveVector(vector, claims);
    await fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' }));
    kds.reset();

    const cached = await fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' }));
    expect(cached.files.map((f) => f.source)).toEqual(['cache', 'cache']);
    expect(kds.requests).toEqual([]);

    // The VCEK's notAfter is 2029-09-24; the ASK and ARK outlive it. Only the VCEK is asked for again.
    serveVector(vector, claims);
    const later = await fetchSnpCollateral(
      vector.files.report!,
      options({ product: 'Milan', now: () => new Date('2030-01-01T00:00:00Z') }),
    );
    expect(later.files.map((f) => f.source)).toEqual(['network', 'cache']);
    expect(kds.requests).toEqual([expectedVcekPath(claims)]);
    expect(later.notes).toEqual([
      expect.stringMatching(/served outside its own validity \(valid until 2029-09-24/),
    ]);

    kds.requests.length = 0;
    await fetchSnpCollateral(vector.files.report!, options({ product: 'Milan', refresh: true }));
    expect(kds.requests).toHaveLength(2);
  });

  it('names the file after the request: another TCB is another file', async () => {
    const { vector, claims } = vectorNamed('snp/gsg-milan-v2');
    serveVector(vector, claims);
    const fetched = await fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' }));
    expect(fetched.files.map((f) => f.path.slice(directory.length + 1))).toEqual([
      `vcek-milan-${claims.chip_id}-bl2-tee0-snp5-ucode68.der`,
      'ask_ark-milan.pem',
    ]);
  });

  it('fetches the CRL and hands it to the verifier, which refuses one not signed by AMD', async () => {
    const { vector, claims } = vectorNamed('snp/gsg-milan-v2');
    serveVector(vector, claims);
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const crl = await x509.X509CrlGenerator.create({
      issuer: 'CN=ARK-Milan',
      thisUpdate: new Date('2025-05-30T00:00:00Z'),
      nextUpdate: new Date('2025-06-05T00:00:00Z'),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey: keys.privateKey,
    });
    kds.serve('/vcek/v1/Milan/crl', { body: new Uint8Array(crl.rawData) });
    const fetched = await fetchSnpCollateral(vector.files.report!, options({ product: 'Milan', crl: true }));
    expect(fetched.files.map((f) => f.role)).toEqual(['signer_cert', 'ca_chain', 'crl']);
    const verified = await verifyAttestation({
      tee: 'snp',
      now: new Date('2025-06-01T00:00:00Z'),
      snpProduct: 'Milan',
      files: { report: vector.files.report!, ...filesOf(fetched) },
    });
    expect(verified.result.error).toBe('ATTESTATION_CRL_INVALID');

    // The CRL is reused until its nextUpdate, then fetched again.
    kds.requests.length = 0;
    await fetchSnpCollateral(
      vector.files.report!,
      options({ product: 'Milan', crl: true, now: () => new Date('2025-06-04T00:00:00Z') }),
    );
    expect(kds.requests).toEqual([]);
    await fetchSnpCollateral(
      vector.files.report!,
      options({ product: 'Milan', crl: true, now: () => new Date('2025-06-06T00:00:00Z') }),
    );
    expect(kds.requests).toEqual(['/vcek/v1/Milan/crl']);
  });

  it('writes nothing for a failed fetch and keeps the previous file intact', async () => {
    const { vector, claims } = vectorNamed('snp/gsg-milan-v2');
    kds.serve(expectedVcekPath(claims), { body: derOf(vector.files.signer_cert!) });
    kds.serve('/vcek/v1/Milan/cert_chain', { body: '<html>maintenance</html>' });
    await expect(
      fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' })),
    ).rejects.toMatchObject({
      code: 'COLLATERAL_RESPONSE_INVALID',
    });
    expect(readdirSync(directory)).toEqual([`vcek-milan-${claims.chip_id}-bl2-tee0-snp5-ucode68.der`]);

    const chainPath = join(directory, 'ask_ark-milan.pem');
    writeFileSync(chainPath, 'previous');
    kds.serve('/vcek/v1/Milan/cert_chain', { body: new Uint8Array(8 << 20) });
    await expect(
      fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' })),
    ).rejects.toMatchObject({
      code: 'COLLATERAL_RESPONSE_TOO_LARGE',
    });
    expect(readFileSync(chainPath, 'utf8')).toBe('previous');
    expect(readdirSync(directory).filter((name) => name.includes('partial'))).toEqual([]);
  });

  it('maps an unknown chip to COLLATERAL_NOT_FOUND', async () => {
    const { vector } = vectorNamed('snp/gsg-milan-v2');
    await expect(
      fetchSnpCollateral(vector.files.report!, options({ product: 'Milan' })),
    ).rejects.toMatchObject({
      code: 'COLLATERAL_NOT_FOUND',
    });
    expect(readdirSync(directory)).toEqual([]);
  });

  it('refuses reports that name no fetchable VCEK, before any request', async () => {
    const report = snpReportBytes(vectorNamed('snp/gsg-milan-v2').vector.files.report!).slice();
    const masked = report.slice();
    masked.fill(0, 0x1a0, 0x1e0);
    await expect(fetchSnpCollateral(masked, options({ product: 'Milan' }))).rejects.toMatchObject({
      code: 'COLLATERAL_UNAVAILABLE',
      message: expect.stringContaining('MASK_CHIP_ID') as unknown,
    });
    const unsigned = report.slice();
    unsigned[0x48] = 7 << 2; // SIGNING_KEY = none
    await expect(fetchSnpCollateral(unsigned, options({ product: 'Milan' }))).rejects.toMatchObject({
      code: 'COLLATERAL_UNAVAILABLE',
    });
    expect(kds.requests).toEqual([]);
  });

  it('needs the product for a version-2 report and refuses one that contradicts the CPUID', async () => {
    await expect(
      fetchSnpCollateral(vectorNamed('snp/gsg-milan-v2').vector.files.report!, options()),
    ).rejects.toMatchObject({
      code: 'USAGE_INVALID',
      message: expect.stringContaining('--product Milan|Genoa|Turin') as unknown,
    });
    await expect(
      fetchSnpCollateral(
        vectorNamed('snp/azure-genoa-v3').vector.files.report!,
        options({ product: 'Milan' }),
      ),
    ).rejects.toMatchObject({
      code: 'USAGE_INVALID',
      message: expect.stringContaining('names an AMD Genoa') as unknown,
    });
  });

  it('refuses malformed evidence with the parser code', async () => {
    await expect(fetchSnpCollateral(new Uint8Array(100), options())).rejects.toMatchObject({
      code: 'ATTESTATION_EVIDENCE_MALFORMED',
    });
  });
});

describe('kdsVcekPath', () => {
  const chipId = Uint8Array.from({ length: 64 }, (_, i) => i + 1);

  it('asks for the full 64-byte chip ID and four SPLs on Milan and Genoa', () => {
    expect(kdsVcekPath('Genoa', chipId, { bootloader: 10, tee: 0, snp: 23, microcode: 84 })).toBe(
      `/vcek/v1/Genoa/${Buffer.from(chipId).toString('hex')}?blSPL=10&teeSPL=0&snpSPL=23&ucodeSPL=84`,
    );
  });

  it('asks Turin for the 8-byte hardware ID and the FMC SPL too', () => {
    expect(kdsVcekPath('Turin', chipId, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 })).toBe(
      '/vcek/v1/Turin/0102030405060708?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5',
    );
  });
});
