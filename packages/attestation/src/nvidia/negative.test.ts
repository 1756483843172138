import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '@tresor/protocol';
import { bytesToBase64, hexToBytes } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import type { VerificationResult } from '../types.js';
import { parseGpuAttestationReport } from './attestation-report.js';
import { nvidiaVerifier, type NvidiaEndorsements } from './verifier.js';

/**
 * The negative matrix, derived at test time from the real nvtrust vectors: each tampering is refused
 * with its own specific code, recorded on the check that caught it, and never throws.
 */

const HOPPER = 'attestation/nvidia/nvtrust-hopper-sample';
const PPCIE = 'attestation/nvidia/nvtrust-ppcie-8gpu';
const AT = new Date('2025-06-01T00:00:00Z');

const evidence = hexToBytes(
  new TextDecoder().decode(readTestdata(`${HOPPER}/attestation_report.hex`)).trim(),
);
const chainDer = parseCertificates(readTestdata(`${HOPPER}/cert_chain.pem`)).map(
  (c) => new Uint8Array(c.rawData),
);
const report = parseGpuAttestationReport(evidence);
const listJson = new TextDecoder().decode(readTestdata(`${PPCIE}/gpu_evidence.json`));

/** Offset of a view returned by the parser within the evidence it was parsed from. */
function offsetOf(view: Uint8Array): number {
  return view.byteOffset - report.bytes.byteOffset;
}

function flipBit(bytes: Uint8Array, offset: number, bit = 0): Uint8Array {
  const out = bytes.slice();
  out[offset]! ^= 1 << bit;
  return out;
}

function pem(ders: readonly Uint8Array[]): Uint8Array {
  const blocks = ders.map((der) => {
    const lines = bytesToBase64(der)
      .match(/.{1,64}/g)!
      .join('\n');
    return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`;
  });
  return new TextEncoder().encode(blocks.join(''));
}

async function verify(
  bytes: Uint8Array,
  endorsements: NvidiaEndorsements = { certChain: pem(chainDer) },
  now = AT,
): Promise<VerificationResult> {
  return nvidiaVerifier.verify(nvidiaVerifier.parse(bytes), endorsements, { now });
}

function expectRefused(result: VerificationResult, check: string, code: ErrorCode): void {
  expect(result.valid).toBe(false);
  expect(result.error).toBe(code);
  expect(result.checks[check]).toMatchObject({ ok: false, code });
  expect(result.checks[check]?.detail).toEqual(expect.any(String));
}

describe('NVIDIA negative matrix (single GPU report)', () => {
  it('the untampered vector is valid (the baseline every row changes one thing in)', async () => {
    expect((await verify(evidence)).valid).toBe(true);
  });

  const signedFields: [string, () => number][] = [
    ['the requester nonce', () => offsetOf(report.request.nonce) + 7],
    ['a measurement value', () => offsetOf(report.response.blocks[1]!.value) + 20],
    ['the measurement block header (DMTF type)', () => offsetOf(report.response.blocks[5]!.value) - 3],
    ['the responder nonce', () => offsetOf(report.response.responderNonce)],
    ['the opaque data (board id)', () => offsetOf(report.response.opaqueData.fields.get(14)!)],
    ['the opaque data (driver version digit)', () => offsetOf(report.response.opaqueData.fields.get(3)!)],
    ['the signature r', () => offsetOf(report.response.signature) + 5],
    ['the signature s', () => offsetOf(report.response.signature) + 90],
  ];
  for (const [what, offset] of signedFields) {
    it(`one flipped bit in ${what} → ATTESTATION_SIGNATURE_INVALID`, async () => {
      const result = await verify(flipBit(evidence, offset()));
      expectRefused(result, 'spdm_signature', 'ATTESTATION_SIGNATURE_INVALID');
      expect(result.checks.chain_signatures).toEqual({ ok: true });
    });
  }

  for (const i of [0, 1, 2, 3]) {
    it(`one flipped bit in the signature of certificate ${i} → ATTESTATION_CERT_CHAIN_INVALID`, async () => {
      const chain = chainDer.map((der, j) => (j === i ? flipBit(der, der.length - 1) : der));
      const result = await verify(evidence, { certChain: pem(chain) });
      expectRefused(result, 'chain_signatures', 'ATTESTATION_CERT_CHAIN_INVALID');
      expect(result.checks.spdm_signature).toEqual({ ok: true });
    });
  }

  it('one flipped bit in the root certificate → ATTESTATION_ROOT_UNTRUSTED', async () => {
    const chain = chainDer.map((der, j) => (j === 4 ? flipBit(der, der.length - 1) : der));
    const result = await verify(evidence, { certChain: pem(chain) });
    expectRefused(result, 'chain_anchored_to_nvidia_device_root', 'ATTESTATION_ROOT_UNTRUSTED');
  });

  it("one flipped bit in the leaf's public key → ATTESTATION_SIGNATURE_INVALID first, chain invalid too", async () => {
    const leaf = chainDer[0]!;
    const keyAt = indexOf(leaf, new Uint8Array(parseCertificates(leaf)[0]!.publicKey.rawData)) + 40;
    const result = await verify(evidence, { certChain: pem([flipBit(leaf, keyAt), ...chainDer.slice(1)]) });
    expectRefused(result, 'spdm_signature', 'ATTESTATION_SIGNATURE_INVALID');
    expect(result.checks.chain_signatures).toMatchObject({
      ok: false,
      code: 'ATTESTATION_CERT_CHAIN_INVALID',
    });
  });

  it('a supplied root that is not the pinned NVIDIA Device Identity CA → ATTESTATION_ROOT_UNTRUSTED', async () => {
    const amdArk = readTestdata('attestation/snp/gsg-milan-v2/ask_ark.pem');
    const ark = new Uint8Array(parseCertificates(amdArk)[1]!.rawData);
    const result = await verify(evidence, { certChain: pem(chainDer), deviceRoot: ark });
    expectRefused(result, 'chain_anchored_to_nvidia_device_root', 'ATTESTATION_ROOT_UNTRUSTED');
    expect(result.checks.chain_signatures).toEqual({ ok: true });
  });

  it("a chain ending in another vendor's root → refused (issuer mismatch, not anchored)", async () => {
    const amdArk = new Uint8Array(
      parseCertificates(readTestdata('attestation/snp/gsg-milan-v2/ask_ark.pem'))[1]!.rawData,
    );
    const result = await verify(evidence, { certChain: pem([...chainDer.slice(0, 4), amdArk]) });
    expectRefused(result, 'chain_signatures', 'ATTESTATION_CERT_CHAIN_INVALID');
    expect(result.checks.chain_anchored_to_nvidia_device_root).toMatchObject({
      ok: false,
      code: 'ATTESTATION_ROOT_UNTRUSTED',
    });
  });

  it('a chain cut short of the NVIDIA CA → ATTESTATION_ROOT_UNTRUSTED; one omitting only the root is fine', async () => {
    const cut = await verify(evidence, { certChain: pem(chainDer.slice(0, 2)) });
    expectRefused(cut, 'chain_anchored_to_nvidia_device_root', 'ATTESTATION_ROOT_UNTRUSTED');
    expect(cut.checks.chain_signatures).toEqual({ ok: true });
    // The last intermediate is signed by the pinned root itself, so the chain is still anchored.
    expect((await verify(evidence, { certChain: pem(chainDer.slice(0, 4)) })).valid).toBe(true);
  });

  it('intermediates out of order → ATTESTATION_CERT_CHAIN_INVALID', async () => {
    const [leaf, brom, ica, identity, root] = chainDer;
    const result = await verify(evidence, { certChain: pem([leaf!, ica!, brom!, identity!, root!]) });
    expectRefused(result, 'chain_signatures', 'ATTESTATION_CERT_CHAIN_INVALID');
  });

  it("another GPU's chain → signature invalid, and its FWID differs (ATTESTATION_TCB_MISMATCH)", async () => {
    const other = JSON.parse(listJson) as { certificate: string }[];
    const chain = Uint8Array.from(atob(other[0]!.certificate), (c) => c.charCodeAt(0));
    const result = await verify(evidence, { certChain: chain });
    expectRefused(result, 'spdm_signature', 'ATTESTATION_SIGNATURE_INVALID');
    expect(result.checks.fwid_matches_leaf_certificate).toMatchObject({
      ok: false,
      code: 'ATTESTATION_TCB_MISMATCH',
    });
  });

  it('a clock before the chain was issued → ATTESTATION_CERT_NOT_YET_VALID', async () => {
    // The intermediates date from 2022, the leaf from 2020-10-17; notAfter is 9999-12-31 everywhere.
    for (const at of ['2021-06-01T00:00:00Z', '2019-01-01T00:00:00Z']) {
      const result = await verify(evidence, undefined, new Date(at));
      expectRefused(result, 'chain_valid_at_time', 'ATTESTATION_CERT_NOT_YET_VALID');
    }
  });

  it('a clock after 9999-12-31T23:59:59Z → ATTESTATION_CERT_EXPIRED', async () => {
    const result = await verify(evidence, undefined, new Date('+010000-01-01T00:00:00Z'));
    expectRefused(result, 'chain_valid_at_time', 'ATTESTATION_CERT_EXPIRED');
  });

  it('an expected nonce other than the signed one → GPU_NONCE_MISMATCH', async () => {
    const result = await verify(evidence, { certChain: pem(chainDer), expectedNonce: '00'.repeat(32) });
    expectRefused(result, 'nonce_matches_expected_nonce', 'GPU_NONCE_MISMATCH');
    expect(result.checks.spdm_signature).toEqual({ ok: true });
  });

  it('a reference manifest the measurements do not match → GPU_MEASUREMENT_MISMATCH', async () => {
    const measured = report.response.blocks.filter((b) => b.value.some((x) => x !== 0));
    const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    const exact = Object.fromEntries(measured.map((b) => [String(b.index), [hex(b.value)]]));
    const cases: Record<string, Record<string, string[]>> = {
      'a wrong value': { ...exact, '2': ['00'.repeat(48)] },
      'an index the GPU did not report': { ...exact, '200': ['00'.repeat(48)] },
      'a measured index left out': Object.fromEntries(
        Object.entries(exact).filter(([index]) => index !== '2'),
      ),
    };
    for (const [what, measurements] of Object.entries(cases)) {
      const result = await verify(evidence, {
        certChain: pem(chainDer),
        referenceManifest: { measurements },
      });
      expect({ what, error: result.error }).toEqual({ what, error: 'GPU_MEASUREMENT_MISMATCH' });
      expectRefused(result, 'measurements_match_reference_manifest', 'GPU_MEASUREMENT_MISMATCH');
    }
    const allowed = await verify(evidence, {
      certChain: pem(chainDer),
      referenceManifest: {
        measurements: { ...exact, '2': ['00'.repeat(48), hex(report.response.blocks[1]!.value)] },
      },
    });
    expect(allowed.valid).toBe(true);
  });

  it('missing or wrong endorsements are input errors (exit 2), not verification results', async () => {
    const parsed = nvidiaVerifier.parse(evidence);
    const cases: [NvidiaEndorsements, ErrorCode][] = [
      [{}, 'USAGE_INVALID'],
      [{ certChain: new Uint8Array([1, 2, 3]) }, 'INPUT_MALFORMED'],
      [{ certChain: pem(chainDer), deviceRoot: new Uint8Array([0x30, 0x00]) }, 'INPUT_MALFORMED'],
      [{ certChain: pem(chainDer), deviceRoot: pem(chainDer.slice(3)) }, 'INPUT_MALFORMED'],
      [{ certChain: pem(chainDer), expectedNonce: 'not hex' }, 'INPUT_MALFORMED'],
    ];
    for (const [endorsements, code] of cases) {
      await expect(nvidiaVerifier.verify(parsed, endorsements, { now: AT })).rejects.toMatchObject({ code });
    }
  });
});

describe('NVIDIA negative matrix (JSON list of 8 GPUs)', () => {
  const entries = JSON.parse(listJson) as Record<string, string>[];
  const encode = (list: readonly Record<string, string>[]): Uint8Array =>
    new TextEncoder().encode(JSON.stringify(list));

  it('a published nonce that differs from the signed one → gpu<i>_nonce_matches_published_nonce', async () => {
    const tampered = entries.map((e, i) => (i === 3 ? { ...e, nonce: 'ff'.repeat(32) } : e));
    const result = await verify(encode(tampered), {});
    expectRefused(result, 'gpu3_nonce_matches_published_nonce', 'GPU_NONCE_MISMATCH');
    expect(result.checks.gpu2_nonce_matches_published_nonce).toEqual({ ok: true });
  });

  it("one flipped bit in one GPU's evidence fails that GPU only", async () => {
    const tampered = entries.map((e, i) => {
      if (i !== 5) return e;
      const bytes = Uint8Array.from(atob(e.evidence!), (c) => c.charCodeAt(0));
      // Byte 60 lies in the first measurement value (request 37 + response header 8 + block header 7).
      return { ...e, evidence: bytesToBase64(flipBit(bytes, 60)) };
    });
    const result = await verify(encode(tampered), {});
    expectRefused(result, 'gpu5_spdm_signature', 'ATTESTATION_SIGNATURE_INVALID');
    const failedChecks = Object.entries(result.checks).filter(([, c]) => !c.ok);
    expect(failedChecks.map(([name]) => name)).toEqual(['gpu5_spdm_signature']);
  });

  it('an expected nonce is checked on every GPU; a separate chain is refused', async () => {
    const result = await verify(encode(entries), { expectedNonce: '11'.repeat(32) });
    for (let i = 0; i < 8; i++) {
      expect(result.checks[`gpu${i}_nonce_matches_expected_nonce`]).toMatchObject({
        code: 'GPU_NONCE_MISMATCH',
      });
    }
    expect(result.error).toBe('GPU_NONCE_MISMATCH');
    await expect(verify(encode(entries), { certChain: pem(chainDer) })).rejects.toMatchObject({
      code: 'USAGE_INVALID',
    });
  });
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('needle not found');
}
