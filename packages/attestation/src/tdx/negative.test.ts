import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { bytesToBase64, bytesToHex, hexToBytes, utf8Encode } from '@tresor/crypto';
import { readTestdata, readTestdataText } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import type { VerificationResult } from '../types.js';
import type { TdxClaims } from './claims.js';
import { createTdxVerifier, tdxVerifier, type TdxEndorsements } from './verifier.js';

/**
 * The negative matrix, derived at test time from the real vectors: one change at a time, each
 * refused by the check that guards it with its own catalogue code, and nothing else disturbed.
 */

const AZURE = 'attestation/tdx/azure-v4';
const UPTODATE = 'attestation/tdx/dcap-qvl-v4-uptodate';
const OUTDATED = 'attestation/tdx/dcap-qvl-v5-outdated';

const azureQuote = readTestdata(`${AZURE}/quote.bin`);
const azureAt = new Date('2025-06-01T00:00:00Z');
const quote = readTestdata(`${UPTODATE}/quote.bin`);
const collateralText = readTestdataText(`${UPTODATE}/collateral.json`);
const collateral = utf8Encode(collateralText);
const at = new Date('2025-07-01T00:00:00Z');

type Result = VerificationResult<TdxClaims>;

async function verifyBytes(bytes: Uint8Array, endorsements: TdxEndorsements, now: Date): Promise<Result> {
  return tdxVerifier.verify(tdxVerifier.parse(bytes), endorsements, { now });
}

/** The names of the failed checks and the result's error code. */
function failures(result: Result): { failed: string[]; error: string | null } {
  const failed = Object.entries(result.checks)
    .filter(([, c]) => !c.ok)
    .map(([name]) => name);
  return { failed, error: result.error };
}

function flipBit(bytes: Uint8Array, offset: number, bit = 0): Uint8Array {
  const out = new Uint8Array(bytes);
  out[offset]! ^= 1 << bit;
  return out;
}

/** Where each part of a v4 quote sits (offsets from the quote's own declared lengths). */
function layoutOf(bytes: Uint8Array) {
  const q = tdxVerifier.parse(bytes);
  const offset = (view: Uint8Array): number => view.byteOffset - q.raw.byteOffset;
  return {
    body: offset(q.body.mrTd),
    header: offset(q.header.userData),
    quoteSignature: offset(q.quoteSignature),
    attestationKey: offset(q.attestationKey),
    qeReport: offset(q.qeReport.raw),
    qeReportSignature: offset(q.qeReportSignature),
    qeAuthData: offset(q.qeAuthData),
    pem: offset(q.pckChainPem),
    pemLength: q.pckChainPem.length,
    signedLength: q.layout.signedLength,
  };
}

/** The quote with certificate `index` of its PEM chain replaced by `der` (same length, same wrapping). */
function withChainCertificate(bytes: Uint8Array, index: number, der: Uint8Array): Uint8Array {
  const { pem, pemLength } = layoutOf(bytes);
  const text = new TextDecoder().decode(bytes.subarray(pem, pem + pemLength));
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----\n([^-]+)-----END CERTIFICATE-----/g)];
  const block = blocks[index]!;
  const body = `${bytesToBase64(der).replace(/(.{64})/g, '$1\n')}\n`.replace(/\n\n$/, '\n');
  expect(body.length).toBe(block[1]!.length);
  const replaced = text.slice(0, block.index + 28) + body + text.slice(block.index + 28 + block[1]!.length);
  const out = new Uint8Array(bytes);
  out.set(utf8Encode(replaced), pem);
  return out;
}

function chainDers(bytes: Uint8Array): Uint8Array[] {
  const { pem, pemLength } = layoutOf(bytes);
  return parseCertificates(bytes.subarray(pem, pem + pemLength)).map((c) => new Uint8Array(c.rawData));
}

/** TBSCertificate bytes and signature value of a certificate (RFC 5280 §4.1), or '' if unreadable. */
function signedParts(der: Uint8Array): string {
  try {
    const { result } = asn1js.fromBER(new Uint8Array(der).buffer);
    if (!(result instanceof asn1js.Sequence)) return '';
    const [tbs, , signature] = result.valueBlock.value;
    if (tbs === undefined || !(signature instanceof asn1js.BitString)) return '';
    return `${bytesToHex(tbs.valueBeforeDecodeView)}/${bytesToHex(signature.valueBlock.valueHexView)}`;
  } catch {
    return '';
  }
}

/** The collateral JSON with `field` replaced (the other fields keep their exact text). */
function collateralWith(field: string, value: unknown): Uint8Array {
  const json = JSON.parse(collateralText) as Record<string, unknown>;
  json[field] = value;
  return utf8Encode(JSON.stringify(json));
}

function collateralField(field: string): string {
  const json = JSON.parse(collateralText) as Record<string, unknown>;
  return json[field] as string;
}

/** A CRL signed by a throwaway key, listing `serials`: right shape, wrong signer. */
async function crlListing(serials: string[], issuer: string): Promise<string> {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  const crl = await x509.X509CrlGenerator.create({
    issuer,
    thisUpdate: new Date('2025-06-01T00:00:00Z'),
    nextUpdate: new Date('2025-08-01T00:00:00Z'),
    entries: serials.map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date('2025-06-02T00:00:00Z'),
    })),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey: keys.privateKey,
  });
  return bytesToHex(new Uint8Array(crl.rawData));
}

describe('TDX negative matrix: the quote', () => {
  const parts = layoutOf(quote);

  it('a flipped bit in the TD report or header fails the quote signature only', async () => {
    for (const offset of [parts.body, parts.body + 200, parts.header, parts.signedLength - 1]) {
      const result = await verifyBytes(flipBit(quote, offset), { collateral }, at);
      expect(failures(result)).toEqual({
        failed: ['quote_signature'],
        error: 'ATTESTATION_SIGNATURE_INVALID',
      });
    }
  });

  it('a flipped bit in the quote signature fails the quote signature only', async () => {
    for (const offset of [parts.quoteSignature, parts.quoteSignature + 63]) {
      const result = await verifyBytes(flipBit(quote, offset), { collateral }, at);
      expect(failures(result)).toEqual({
        failed: ['quote_signature'],
        error: 'ATTESTATION_SIGNATURE_INVALID',
      });
    }
  });

  it('another attestation key breaks both the quote signature and the QE binding', async () => {
    const result = await verifyBytes(flipBit(quote, parts.attestationKey + 10), { collateral }, at);
    expect(failures(result)).toEqual({
      failed: ['quote_signature', 'qe_report_data_binds_attestation_key'],
      error: 'ATTESTATION_SIGNATURE_INVALID',
    });
  });

  it('a flipped bit in the QE report or its signature fails the PCK signature over it', async () => {
    for (const offset of [parts.qeReport + 64, parts.qeReportSignature + 5]) {
      const result = await verifyBytes(flipBit(quote, offset), {}, azureAt);
      expect(failures(result)).toEqual({
        failed: ['qe_report_signature_by_pck'],
        error: 'ATTESTATION_QE_REPORT_INVALID',
      });
    }
  });

  it('a flipped bit in the QE auth data breaks the attestation key binding', async () => {
    const result = await verifyBytes(flipBit(quote, parts.qeAuthData + 3), {}, azureAt);
    expect(failures(result)).toEqual({
      failed: ['qe_report_data_binds_attestation_key'],
      error: 'ATTESTATION_QE_REPORT_INVALID',
    });
  });

  it('a flipped bit in the signature of each PCK chain certificate breaks the chain', async () => {
    const ders = chainDers(quote);
    expect(ders).toHaveLength(3);
    for (const [index, der] of ders.entries()) {
      const tampered = withChainCertificate(quote, index, flipBit(der, der.length - 1));
      const result = await createTdxVerifier({ cache: null }).verify(
        tdxVerifier.parse(tampered),
        {},
        { now: at },
      );
      expect(result.error, `certificate ${index}`).toBe('ATTESTATION_CERT_CHAIN_INVALID');
      expect(result.checks.pck_chain_signatures?.ok).toBe(false);
      expect(result.checks.quote_signature?.ok).toBe(true);
    }
  });

  it('a chain ending in another root is refused', async () => {
    const [, , intelRoot] = chainDers(quote);
    const amdRoot = parseCertificates(readTestdata('attestation/snp/gsg-milan-v2/ask_ark.pem'))[1]!;
    expect(amdRoot.subject).toContain('ARK-Milan');
    // Same-length stand-in is impossible (RSA-4096 vs P-256), so rebuild the quote's PEM region.
    const result = await verifyWithChain(quote, [
      ...chainDers(quote).slice(0, 2),
      new Uint8Array(amdRoot.rawData),
    ]);
    expect(intelRoot).toBeDefined();
    expect(result.checks.pck_chain_signatures).toMatchObject({
      ok: false,
      code: 'ATTESTATION_CERT_CHAIN_INVALID',
    });
    expect(result.checks.pck_chain_anchored_to_intel_root).toMatchObject({
      ok: false,
      code: 'ATTESTATION_ROOT_UNTRUSTED',
    });
  });

  it('a supplied root that is not the pinned Intel root is refused; a non-certificate is unreadable', async () => {
    const amdChain = readTestdata('attestation/snp/gsg-milan-v2/ask_ark.pem');
    const result = await verifyBytes(azureQuote, { intelRootCa: amdChain }, azureAt);
    expect(failures(result)).toEqual({
      failed: ['pck_chain_anchored_to_intel_root'],
      error: 'ATTESTATION_ROOT_UNTRUSTED',
    });
    await expect(
      verifyBytes(azureQuote, { intelRootCa: utf8Encode('not a cert') }, azureAt),
    ).rejects.toMatchObject({
      code: 'INPUT_MALFORMED',
    });
  });

  it('the clock after the PCK certificate notAfter makes it expired', async () => {
    const result = await verifyBytes(azureQuote, {}, new Date('2030-09-14T00:00:00Z'));
    expect(failures(result)).toEqual({
      failed: ['pck_chain_valid_at_time'],
      error: 'ATTESTATION_CERT_EXPIRED',
    });
    expect(result.checks.pck_chain_valid_at_time?.detail).toContain('Intel SGX PCK Certificate expired');
  });

  it('a debug TD is refused by the hardware check td_not_debug', async () => {
    const result = await verifyBytes(readTestdata('attestation/tdx/trustee-v4-debug/quote.bin'), {}, azureAt);
    expect(failures(result)).toEqual({ failed: ['td_not_debug'], error: 'ATTESTATION_DEBUG_ENABLED' });
    expect(result.appraisal.debug).toBe(true);
  });

  it('an attestation key that is not a P-256 point fails closed', async () => {
    const bytes = new Uint8Array(quote);
    bytes.fill(0, parts.attestationKey, parts.attestationKey + 64);
    const result = await verifyBytes(bytes, {}, at);
    expect(result.error).toBe('ATTESTATION_SIGNATURE_INVALID');
    expect(result.valid).toBe(false);
  });
});

/** Verifies `bytes` with its PEM chain replaced by `ders` (the quote's length fields rewritten). */
async function verifyWithChain(bytes: Uint8Array, ders: Uint8Array[]): Promise<Result> {
  const parts = layoutOf(bytes);
  const pem = utf8Encode(
    ders
      .map(
        (d) =>
          `-----BEGIN CERTIFICATE-----\n${bytesToBase64(d).replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`,
      )
      .join(''),
  );
  const head = bytes.slice(0, parts.pem);
  const view = new DataView(head.buffer);
  const grow = pem.length - parts.pemLength;
  view.setUint32(parts.pem - 4, pem.length, true);
  view.setUint32(parts.signedLength, view.getUint32(parts.signedLength, true) + grow, true);
  view.setUint32(
    parts.signedLength + 4 + 130,
    view.getUint32(parts.signedLength + 4 + 130, true) + grow,
    true,
  );
  const rebuilt = new Uint8Array(head.length + pem.length);
  rebuilt.set(head);
  rebuilt.set(pem, head.length);
  return createTdxVerifier({ cache: null }).verify(tdxVerifier.parse(rebuilt), {}, { now: at });
}

describe('TDX negative matrix: the collateral', () => {
  it('a flipped bit in the TCB info text fails its signature (Intel signs the exact served bytes)', async () => {
    const text = collateralField('tcb_info');
    const at17 = text.indexOf('"tcbEvaluationDataNumber":17') + '"tcbEvaluationDataNumber":1'.length;
    const flipped = text.slice(0, at17) + '6' + text.slice(at17 + 1);
    const result = await verifyBytes(quote, { collateral: collateralWith('tcb_info', flipped) }, at);
    expect(failures(result)).toEqual({
      failed: ['tcb_info_signature'],
      error: 'ATTESTATION_COLLATERAL_INVALID',
    });
  });

  it('the same TCB info re-serialised (same JSON value, other bytes) fails its signature too', async () => {
    const pretty = JSON.stringify(JSON.parse(collateralField('tcb_info')), null, 1);
    const result = await verifyBytes(quote, { collateral: collateralWith('tcb_info', pretty) }, at);
    expect(failures(result)).toEqual({
      failed: ['tcb_info_signature'],
      error: 'ATTESTATION_COLLATERAL_INVALID',
    });
  });

  it('a flipped bit in the QE identity text or a signature fails that signature', async () => {
    const qe = collateralField('qe_identity').replace('"isvprodid":2', '"isvprodid":3');
    let result = await verifyBytes(quote, { collateral: collateralWith('qe_identity', qe) }, at);
    expect(failures(result).failed).toEqual(['qe_identity_signature', 'tcb_level_found']);
    expect(result.error).toBe('ATTESTATION_COLLATERAL_INVALID');

    const signature = bytesToHex(flipBit(hexToBytes(collateralField('tcb_info_signature')), 40));
    result = await verifyBytes(quote, { collateral: collateralWith('tcb_info_signature', signature) }, at);
    expect(failures(result)).toEqual({
      failed: ['tcb_info_signature'],
      error: 'ATTESTATION_COLLATERAL_INVALID',
    });
  });

  it('a flipped bit in the TCB signing certificate breaks the collateral chain', async () => {
    const [signer, root] = parseCertificates(utf8Encode(collateralField('tcb_info_issuer_chain')));
    const der = new Uint8Array(signer!.rawData);
    const pem = [flipBit(der, der.length - 1), new Uint8Array(root!.rawData)]
      .map((d) => `-----BEGIN CERTIFICATE-----\n${bytesToBase64(d)}\n-----END CERTIFICATE-----\n`)
      .join('');
    const result = await verifyBytes(quote, { collateral: collateralWith('tcb_info_issuer_chain', pem) }, at);
    expect(failures(result)).toEqual({ failed: ['tcb_info_chain'], error: 'ATTESTATION_COLLATERAL_INVALID' });
  });

  it('a flipped bit in either CRL fails that CRL signature', async () => {
    for (const [field, check] of [
      ['root_ca_crl', 'root_crl_signature'],
      ['pck_crl', 'pck_crl_signature'],
    ] as const) {
      const der = hexToBytes(collateralField(field));
      const result = await verifyBytes(
        quote,
        { collateral: collateralWith(field, bytesToHex(flipBit(der, der.length - 2))) },
        at,
      );
      expect(failures(result)).toEqual({ failed: [check], error: 'ATTESTATION_CRL_INVALID' });
    }
  });

  it('a CRL listing the PCK certificate, or its CA, revokes it', async () => {
    const [pck, pckCa] = parseCertificates(tdxVerifier.parse(quote).pckChainPem);
    let result = await verifyBytes(
      quote,
      {
        collateral: collateralWith(
          'pck_crl',
          await crlListing([pck!.serialNumber], 'CN=Intel SGX PCK Platform CA'),
        ),
      },
      at,
    );
    expect(result.checks.pck_not_revoked).toMatchObject({ ok: false, code: 'ATTESTATION_CERT_REVOKED' });
    expect(result.checks.pck_crl_signature).toMatchObject({ ok: false, code: 'ATTESTATION_CRL_INVALID' });

    result = await verifyBytes(
      quote,
      {
        collateral: collateralWith(
          'root_ca_crl',
          await crlListing([pckCa!.serialNumber], 'CN=Intel SGX Root CA'),
        ),
      },
      at,
    );
    expect(result.checks.pck_ca_not_revoked).toMatchObject({ ok: false, code: 'ATTESTATION_CERT_REVOKED' });
    expect(result.checks.pck_not_revoked?.ok).toBe(true);
  });

  it('the clock after nextUpdate makes the TCB info stale; before issueDate it is not yet issued', async () => {
    let result = await verifyBytes(quote, { collateral }, new Date('2025-07-19T10:20:00Z'));
    expect(result.checks.tcb_info_current).toMatchObject({
      ok: false,
      code: 'ATTESTATION_COLLATERAL_EXPIRED',
    });
    expect(result.checks.qe_identity_current?.ok).toBe(true);
    expect(result.error).toBe('ATTESTATION_COLLATERAL_EXPIRED');

    result = await verifyBytes(quote, { collateral }, new Date('2025-06-19T10:20:00Z'));
    expect(result.checks.tcb_info_current?.ok).toBe(true);
    expect(result.checks.qe_identity_current).toMatchObject({
      ok: false,
      code: 'ATTESTATION_COLLATERAL_INVALID',
    });
  });

  it('collateral for another FMSPC does not rate this platform', async () => {
    const other = readTestdata(`${OUTDATED}/collateral.json`);
    const result = await verifyBytes(quote, { collateral: other }, new Date('2026-03-01T00:00:00Z'));
    expect(failures(result)).toEqual({
      failed: ['tcb_level_found'],
      error: 'ATTESTATION_COLLATERAL_INVALID',
    });
    expect(result.claims.tcb?.status).toBe('NoMatchingTcbLevel(FMSPC mismatch)');
  });

  it('refuses collateral that is not in its format with INPUT_MALFORMED', async () => {
    for (const bad of [
      utf8Encode('not json'),
      utf8Encode('{}'),
      collateralWith('pck_crl', 'zz'),
      collateralWith('tcb_info_signature', 'abcd'),
      collateralWith('tcb_info_issuer_chain', 'no pem here'),
      collateralWith('root_ca_crl', '3000'),
    ]) {
      await expect(verifyBytes(quote, { collateral: bad }, at)).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
      });
    }
  });

  it('a signed TCB info that is not TDX TCB info v3 fails closed', async () => {
    // Unsigned by Intel, so the signature fails first; the content check still refuses the level.
    const sgx = JSON.stringify({ ...JSON.parse(collateralField('tcb_info')), id: 'SGX', version: 2 });
    const result = await verifyBytes(quote, { collateral: collateralWith('tcb_info', sgx) }, at);
    expect(result.checks.tcb_level_found).toMatchObject({
      ok: false,
      code: 'ATTESTATION_COLLATERAL_INVALID',
    });
    expect(result.checks.tcb_info_current).toMatchObject({
      ok: false,
      code: 'ATTESTATION_COLLATERAL_INVALID',
    });
    expect(result.claims.tcb).toBeUndefined();
  });
});

describe('TDX verify under random corruption', () => {
  const parts = layoutOf(quote);
  const beforePem = parts.pem;

  it('never accepts a quote with a bit flipped before its PEM chain, and never throws otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: beforePem - 1 }),
        fc.integer({ min: 0, max: 7 }),
        async (offset, bit) => {
          let result: Result;
          try {
            result = await verifyBytes(flipBit(quote, offset, bit), { collateral }, at);
          } catch (error) {
            return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
          }
          return !result.valid;
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never accepts a bit flipped in the signed part or signature of a PCK chain certificate', async () => {
    // The certificate's outer envelope (its SEQUENCE header, the unsigned copy of the signature
    // algorithm) is not authenticated and the X.509 library reads it leniently (BER); only the
    // TBSCertificate and the signature value carry meaning, and no change to those may pass.
    const ders = chainDers(quote);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: ders.length - 1 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (index, position, bit) => {
          const der = ders[index]!;
          const flipped = flipBit(der, position % der.length, bit);
          const bytes = withChainCertificate(quote, index, flipped);
          const result = await createTdxVerifier({ cache: null }).verify(
            tdxVerifier.parse(bytes),
            {},
            { now: at },
          );
          return !result.valid || signedParts(flipped) === signedParts(der);
        },
      ),
      { numRuns: 90 },
    );
  });

  it('accepts a flipped bit in the PEM text only when the certificates it decodes to are unchanged', async () => {
    const original = chainDers(quote).map(bytesToHex);
    const verifier = createTdxVerifier();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: parts.pemLength - 1 }),
        fc.integer({ min: 0, max: 7 }),
        async (i, bit) => {
          const bytes = flipBit(quote, parts.pem + i, bit);
          const result = await verifier.verify(verifier.parse(bytes), { collateral }, { now: at });
          if (!result.valid) return true;
          // Valid only if the certificates are Intel's own; losing the chain's copy of the root is
          // harmless (the root is pinned), any other change is not.
          const decoded = chainDers(bytes).map(bytesToHex);
          return decoded.length >= 2 && decoded.every((der, n) => der === original[n]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
