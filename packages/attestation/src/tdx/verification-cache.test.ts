import { describe, expect, it } from 'vitest';
import { readTestdata } from '../../../../test/support/testdata.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { webCryptoSignatureVerifier } from '../signatures/index.js';
import { TdxVerificationCache } from './verification-cache.js';
import { createTdxVerifier } from './verifier.js';

/**
 * What a warm cache may and may not remember: everything it serves was made from the exact bytes
 * now given, so a quote whose QE report, its signature or the QE auth data differ from the cached
 * ones, or collateral changed in place in a reused buffer, is checked afresh and refused.
 */

const DIR = 'attestation/tdx/dcap-qvl-v4-uptodate';
const quote = readTestdata(`${DIR}/quote.bin`);
const at = new Date('2025-07-01T00:00:00Z');

function flipBit(bytes: Uint8Array, offset: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[offset]! ^= 1;
  return out;
}

describe.each([webCryptoSignatureVerifier, nodeSignatureVerifier])(
  'TDX verification cache ($name)',
  (signatures) => {
    const offsets = (() => {
      const q = createTdxVerifier().parse(quote);
      const offset = (view: Uint8Array): number => view.byteOffset - q.raw.byteOffset;
      return {
        qeReport: offset(q.qeReport.raw),
        qeReportSignature: offset(q.qeReportSignature),
        qeAuthData: offset(q.qeAuthData),
      };
    })();

    it('checks the QE report signature afresh for a QE report or signature it has not seen', async () => {
      const verifier = createTdxVerifier({ signatures });
      const collateral = readTestdata(`${DIR}/collateral.json`);
      const verify = (bytes: Uint8Array) =>
        verifier.verify(verifier.parse(bytes), { collateral }, { now: at });
      expect((await verify(quote)).valid).toBe(true);
      // CPUSVN (QE report byte 0) and the signature's r: both covered by the PCK's signature.
      for (const tampered of [
        flipBit(quote, offsets.qeReport),
        flipBit(quote, offsets.qeReportSignature + 5),
      ]) {
        const result = await verify(tampered);
        expect(result.checks.qe_report_signature_by_pck?.ok).toBe(false);
        expect(result.valid).toBe(false);
      }
      const authData = await verify(flipBit(quote, offsets.qeAuthData));
      expect(authData.checks.qe_report_data_binds_attestation_key?.ok).toBe(false);
      expect((await verify(quote)).valid).toBe(true);
    });

    it('notices collateral changed in place in a buffer it has seen', async () => {
      const verifier = createTdxVerifier({ signatures });
      const collateral = readTestdata(`${DIR}/collateral.json`);
      const verify = () => verifier.verify(verifier.parse(quote), { collateral }, { now: at });
      expect((await verify()).valid).toBe(true);
      // A digit of the signed TCB info text: still JSON, no longer what Intel signed.
      const text = new TextDecoder().decode(collateral);
      const digit = text.indexOf('"tcbEvaluationDataNumber\\":') + '"tcbEvaluationDataNumber\\":'.length;
      expect(digit).toBeGreaterThan(100);
      const original = collateral[digit]!;
      collateral[digit] = original === 0x39 ? 0x38 : original + 1;
      const changed = await verify();
      expect(changed.checks.tcb_info_signature?.ok).toBe(false);
      collateral[digit] = original;
      expect((await verify()).valid).toBe(true);
    });

    it('keeps the work of different signature verifiers apart when one cache is shared', async () => {
      const cache = new TdxVerificationCache();
      const collateral = readTestdata(`${DIR}/collateral.json`);
      for (const other of [webCryptoSignatureVerifier, nodeSignatureVerifier, signatures]) {
        const verifier = createTdxVerifier({ cache, signatures: other });
        const result = await verifier.verify(verifier.parse(quote), { collateral }, { now: at });
        expect({ verifier: other.name, error: result.error }).toEqual({ verifier: other.name, error: null });
      }
    });
  },
);
