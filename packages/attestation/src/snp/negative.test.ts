import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { concatBytes, utf8Encode } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import type { VerificationResult } from '../types.js';
import type { SnpEndorsements } from './endorsements.js';
import { SNP_SIGNED_SIZE, SNP_REPORT_SIZE } from './report.js';
import { snpVerifier } from './verifier.js';

/**
 * The negative matrix for SEV-SNP, every case derived at test time from the real vectors: one
 * flipped bit in the signed body, the signature and each certificate; the wrong product's chain;
 * expiry; a foreign CRL; a VCEK for another chip or another TCB; an unsigned report; the wrong kind
 * of key. Each is refused, and with its own catalogue code.
 */

const dir = (name: string): string => `attestation/snp/${name}`;
const file = (vector: string, name: string): Uint8Array => readTestdata(`${dir(vector)}/${name}`);
const derOf = (pem: Uint8Array): Uint8Array[] => parseCertificates(pem).map((c) => new Uint8Array(c.rawData));
const pemOf = (ders: readonly Uint8Array[]): Uint8Array =>
  utf8Encode(ders.map((d) => x509.PemConverter.encode(d.slice().buffer, 'CERTIFICATE')).join('\n'));

const AT = new Date('2025-06-01T00:00:00Z');

const gsg = {
  report: file('gsg-milan-v2', 'report.bin'),
  endorsements: {
    signerCert: file('gsg-milan-v2', 'vcek.der'),
    caChain: file('gsg-milan-v2', 'ask_ark.pem'),
  },
};
const vlek = {
  report: file('trustee-milan-vlek-v3', 'report.bin'),
  endorsements: {
    signerCert: file('trustee-milan-vlek-v3', 'vlek.der'),
    caChain: file('trustee-milan-vlek-v3', 'asvk_ark.pem'),
  },
};
const genoa = {
  report: file('azure-genoa-v3', 'report.bin'),
  endorsements: {
    signerCert: file('azure-genoa-v3', 'vcek.pem'),
    caChain: file('azure-genoa-v3', 'ask_ark.pem'),
  },
};

async function verify(
  report: Uint8Array,
  endorsements: SnpEndorsements,
  now = AT,
): Promise<VerificationResult> {
  return snpVerifier.verify(snpVerifier.parse(report), endorsements, { now });
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
  return out;
}

/** Offset of `needle` in `haystack` (to find a certificate's public key inside its DER). */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Two ways to spoil a certificate yet keep it parseable: its signature value, or its public key. */
function spoiled(der: Uint8Array): { where: string; der: Uint8Array }[] {
  const [cert] = parseCertificates(der);
  const spki = new Uint8Array(cert!.publicKey.rawData);
  const keyAt = indexOf(der, spki);
  expect(keyAt).toBeGreaterThan(0);
  return [
    { where: 'signature', der: flipBit(der, (der.length - 1) * 8) },
    { where: 'public key', der: flipBit(der, (keyAt + spki.length - 20) * 8 + 3) },
  ];
}

describe('SEV-SNP negative matrix', () => {
  it('the unmodified bases verify (so every refusal below comes from the one change)', async () => {
    for (const base of [gsg, vlek, genoa])
      expect((await verify(base.report, base.endorsements)).valid).toBe(true);
  });

  it('refuses one flipped bit anywhere in the signed body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(gsg, vlek, genoa),
        fc.nat({ max: SNP_SIGNED_SIZE * 8 - 1 }),
        async (base, bit) => {
          let result: VerificationResult;
          try {
            result = await verify(flipBit(base.report, bit), base.endorsements);
          } catch (error) {
            // Version and flag bits the parser refuses never reach verification.
            return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
          }
          return !result.valid && result.checks.report_signature?.code === 'ATTESTATION_SIGNATURE_INVALID';
        },
      ),
      { numRuns: 400 },
    );
  });

  it('refuses a flipped bit in report_data with ATTESTATION_SIGNATURE_INVALID, bit by bit', async () => {
    for (let bit = 0x50 * 8; bit < 0x90 * 8; bit++) {
      const result = await verify(flipBit(gsg.report, bit), gsg.endorsements);
      expect({ bit, error: result.error }).toEqual({ bit, error: 'ATTESTATION_SIGNATURE_INVALID' });
    }
  });

  it('refuses one flipped bit anywhere in the signature block with ATTESTATION_SIGNATURE_INVALID', async () => {
    const block = (SNP_REPORT_SIZE - SNP_SIGNED_SIZE) * 8;
    // R and S: low 48 bytes (the integer), high 24 bytes (padding); then the reserved tail.
    const chosen = [0, 47 * 8 + 7, 48 * 8, 71 * 8 + 7, 72 * 8, 143 * 8 + 7, 144 * 8, block - 1];
    for (const bit of chosen) {
      const result = await verify(flipBit(gsg.report, SNP_SIGNED_SIZE * 8 + bit), gsg.endorsements);
      expect({ bit, error: result.error }).toEqual({ bit, error: 'ATTESTATION_SIGNATURE_INVALID' });
    }
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(gsg, vlek), fc.nat({ max: block - 1 }), async (base, bit) => {
        const result = await verify(flipBit(base.report, SNP_SIGNED_SIZE * 8 + bit), base.endorsements);
        return result.error === 'ATTESTATION_SIGNATURE_INVALID';
      }),
      { numRuns: 300 },
    );
  });

  describe.each([
    ['VCEK chain', gsg],
    ['VLEK chain', vlek],
  ])('one flipped bit in each certificate of the %s', (_name, base) => {
    const [intermediate, ark] = derOf(base.endorsements.caChain);
    const leaf = base.endorsements.signerCert;

    it.each(spoiled(leaf))('leaf $where: ATTESTATION_CERT_CHAIN_INVALID', async ({ der }) => {
      const result = await verify(base.report, { ...base.endorsements, signerCert: der });
      expect(result.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
      expect(result.checks.leaf_signed_by_ask?.ok).toBe(false);
    });

    it.each(spoiled(intermediate!))('ASK/ASVK $where: ATTESTATION_CERT_CHAIN_INVALID', async ({ der }) => {
      const result = await verify(base.report, { ...base.endorsements, caChain: pemOf([der, ark!]) });
      expect(result.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
      expect(result.checks.ask_signed_by_ark?.ok).toBe(false);
    });

    it.each(spoiled(ark!))('ARK $where: ATTESTATION_ROOT_UNTRUSTED', async ({ der }) => {
      const result = await verify(base.report, {
        ...base.endorsements,
        caChain: pemOf([intermediate!, der]),
      });
      expect(result.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
      expect(result.checks.ark_pinned?.ok).toBe(false);
    });
  });

  it("refuses the wrong product's chain with ATTESTATION_ROOT_UNTRUSTED", async () => {
    const milanReportGenoaChain = await verify(gsg.report, {
      ...gsg.endorsements,
      caChain: genoa.endorsements.caChain,
    });
    expect(milanReportGenoaChain.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
    const genoaReportMilanChain = await verify(genoa.report, {
      ...genoa.endorsements,
      caChain: gsg.endorsements.caChain,
    });
    expect(genoaReportMilanChain.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
    // Milan ASK under the Genoa ARK: the root is not the pinned one for the report.
    const [milanAsk] = derOf(gsg.endorsements.caChain);
    const [, genoaArk] = derOf(genoa.endorsements.caChain);
    const mixed = await verify(gsg.report, { ...gsg.endorsements, caChain: pemOf([milanAsk!, genoaArk!]) });
    expect(mixed.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
  });

  it('refuses a caller product that contradicts the report or the chain', async () => {
    // Version 2: the caller's product picks the pinned ARK, and the Milan chain is not it.
    const v2 = await verify(gsg.report, { ...gsg.endorsements, product: 'Genoa' });
    expect(v2.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
    // Version 3: CPUID (signed) wins; the caller's word is checked against it.
    const v3 = await verify(genoa.report, { ...genoa.endorsements, product: 'Milan' });
    expect(v3.checks.ark_pinned?.ok).toBe(true);
    expect(v3.error).toBe('ATTESTATION_ROOT_UNTRUSTED');
    expect(v3.checks.product_matches_chain?.ok).toBe(false);
    expect((await verify(genoa.report, { ...genoa.endorsements, product: 'Genoa' })).valid).toBe(true);
  });

  it('refuses a leaf outside its validity window at the clock given', async () => {
    const [vcek] = parseCertificates(gsg.endorsements.signerCert);
    const after = new Date(vcek!.notAfter.getTime() + 1000);
    const before = new Date(vcek!.notBefore.getTime() - 1000);
    expect((await verify(gsg.report, gsg.endorsements, after)).error).toBe('ATTESTATION_CERT_EXPIRED');
    expect((await verify(gsg.report, gsg.endorsements, before)).error).toBe('ATTESTATION_CERT_NOT_YET_VALID');
    expect((await verify(gsg.report, gsg.endorsements, vcek!.notAfter)).valid).toBe(true);
  });

  it('refuses a CRL that the chain did not sign with ATTESTATION_CRL_INVALID', async () => {
    // Only AMD can sign a real one; a CRL in the ARK's name signed by another key must not pass.
    const [, ark] = parseCertificates(gsg.endorsements.caChain);
    const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    const keys = await crypto.subtle.generateKey(alg, false, ['sign', 'verify']);
    const crl = await x509.X509CrlGenerator.create({
      issuer: ark!.subject,
      thisUpdate: new Date('2025-01-01T00:00:00Z'),
      nextUpdate: new Date('2026-01-01T00:00:00Z'),
      signingAlgorithm: alg,
      signingKey: keys.privateKey,
      entries: [],
    });
    const result = await verify(gsg.report, { ...gsg.endorsements, crl: new Uint8Array(crl.rawData) });
    expect(result.error).toBe('ATTESTATION_CRL_INVALID');
    expect(result.checks.crl?.ok).toBe(false);
  });

  it("refuses another chip's VCEK (same TCB) with ATTESTATION_CHIP_ID_MISMATCH", async () => {
    // virtee-milan-v2 and azure-milan-hcl-v2 both report TCB 3/0/8/115, on different chips.
    const report = readTestdata(`${dir('virtee-milan-v2')}/report.hex`);
    const [otherVcek] = derOf(file('azure-milan-hcl-v2', 'vcek_ask_ark.pem'));
    const result = await verify(report, { signerCert: otherVcek!, caChain: gsg.endorsements.caChain });
    expect(result.error).toBe('ATTESTATION_CHIP_ID_MISMATCH');
    expect(result.checks.cert_tcb_equals_reported_tcb?.ok).toBe(true);
    expect(result.checks.report_signature?.ok).toBe(false);
  });

  it('refuses a VCEK issued for another TCB with ATTESTATION_TCB_MISMATCH', async () => {
    const result = await verify(gsg.report, {
      ...gsg.endorsements,
      signerCert: file('virtee-milan-v2', 'vcek.der'),
    });
    expect(result.error).toBe('ATTESTATION_TCB_MISMATCH');
    expect(result.checks.cert_tcb_equals_reported_tcb?.detail).toContain(
      'bootloader 3 in the certificate, 2 reported',
    );
  });

  it('takes the chip from the VCEK when MASK_CHIP_KEY zeroes CHIP_ID, and only then', async () => {
    const masked = gsg.report.slice();
    masked[0x48] = masked[0x48]! | 2;
    masked.fill(0, 0x1a0, 0x1e0);
    const result = await verify(masked, gsg.endorsements);
    expect(result.checks.cert_hwid_equals_chip_id?.ok).toBe(true);
    expect(result.appraisal.hardwareIds).toEqual([
      (await verify(gsg.report, gsg.endorsements)).appraisal.hardwareIds[0],
    ]);
    expect(result.error).toBe('ATTESTATION_SIGNATURE_INVALID'); // the edit itself breaks the signature
    const zeroedOnly = gsg.report.slice();
    zeroedOnly.fill(0, 0x1a0, 0x1e0);
    expect((await verify(zeroedOnly, gsg.endorsements)).error).toBe('ATTESTATION_CHIP_ID_MISMATCH');
  });

  it('refuses an unsigned report (SIGNING_KEY none) with ATTESTATION_SIGNATURE_INVALID', async () => {
    const unsigned = gsg.report.slice();
    unsigned[0x48] = 7 << 2;
    const result = await verify(unsigned, gsg.endorsements);
    expect(result.error).toBe('ATTESTATION_SIGNATURE_INVALID');
    expect(result.checks.signer_matches_cert?.code).toBe('ATTESTATION_SIGNATURE_INVALID');
  });

  it('refuses the wrong kind of key with ATTESTATION_CERT_CHAIN_INVALID', async () => {
    const vlekReportVcek = await verify(vlek.report, gsg.endorsements);
    expect(vlekReportVcek.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
    expect(vlekReportVcek.checks.signer_matches_cert?.ok).toBe(false);
    const vcekReportVlek = await verify(gsg.report, vlek.endorsements);
    expect(vcekReportVlek.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
    // A VCEK presented with the ASVK chain: the ASVK did not issue it.
    const vcekUnderAsvk = await verify(gsg.report, {
      ...gsg.endorsements,
      caChain: vlek.endorsements.caChain,
    });
    expect(vcekUnderAsvk.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
  });

  it("stands the pinned ASK in for a missing one, and refuses another product's ASK", async () => {
    const [milanAsk, milanArk] = derOf(gsg.endorsements.caChain);
    const [genoaAsk] = derOf(genoa.endorsements.caChain);
    expect((await verify(gsg.report, { ...gsg.endorsements, caChain: pemOf([milanArk!]) })).valid).toBe(true);
    expect((await verify(gsg.report, { ...gsg.endorsements, caChain: pemOf([milanAsk!]) })).valid).toBe(true);
    const wrongAsk = await verify(gsg.report, { ...gsg.endorsements, caChain: pemOf([genoaAsk!]) });
    expect(wrongAsk.checks.ark_pinned?.ok).toBe(true);
    expect(wrongAsk.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
    expect(wrongAsk.checks.ask_signed_by_ark?.detail).toBe('the ASK/ASVK is not signed by the ARK');
  });

  it('throws INPUT_MALFORMED for endorsements that are not certificates', async () => {
    const report = snpVerifier.parse(gsg.report);
    for (const bad of [new Uint8Array([1, 2, 3]), utf8Encode('-----BEGIN CERTIFICATE-----\nAAAA\n')]) {
      await expect(snpVerifier.verify(report, { signerCert: bad }, { now: AT })).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
      });
      await expect(
        snpVerifier.verify(report, { ...gsg.endorsements, caChain: bad }, { now: AT }),
      ).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
      });
      await expect(
        snpVerifier.verify(report, { ...gsg.endorsements, crl: bad }, { now: AT }),
      ).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
      });
    }
  });

  it('answers mutated certificates with a result or INPUT_MALFORMED, never another exception', async () => {
    const report = snpVerifier.parse(gsg.report);
    const [ask, ark] = derOf(gsg.endorsements.caChain);
    const certs = [gsg.endorsements.signerCert, ask!, ark!];
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: certs.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (which, edits) => {
          const mutated = certs.map((c) => c.slice());
          const target = mutated[which]!;
          for (const [at, value] of edits) target[at % target.length] = value;
          const endorsements = { signerCert: mutated[0]!, caChain: pemOf(mutated.slice(1)) };
          try {
            const result = await snpVerifier.verify(report, endorsements, { now: AT });
            return typeof result.valid === 'boolean';
          } catch (error) {
            return isTresorError(error) && error.code === 'INPUT_MALFORMED';
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never reuses a cached verdict for changed endorsement bytes', async () => {
    const good = await verify(gsg.report, gsg.endorsements);
    const changed = await verify(gsg.report, {
      ...gsg.endorsements,
      signerCert: flipBit(gsg.endorsements.signerCert, (gsg.endorsements.signerCert.length - 1) * 8),
    });
    const again = await verify(gsg.report, gsg.endorsements);
    expect([good.valid, changed.valid, again.valid]).toEqual([true, false, true]);
    // Same bytes in a new array (and with the ASK/ARK appended to the leaf instead) still verify.
    const bundled = concatBytes(
      pemOf([gsg.endorsements.signerCert]),
      utf8Encode('\n'),
      gsg.endorsements.caChain,
    );
    expect((await verify(gsg.report, { signerCert: bundled })).valid).toBe(true);
  });
});
