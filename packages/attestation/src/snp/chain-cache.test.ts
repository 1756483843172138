import { describe, expect, it } from 'vitest';
import { readTestdata } from '../../../../test/support/testdata.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { webCryptoSignatureVerifier } from '../signatures/index.js';
import { SnpChainCache } from './endorsements.js';
import { createSnpVerifier } from './verifier.js';

/**
 * The chain cache serves parsed endorsements and their signature verdicts only for the exact bytes
 * they were made from: a certificate changed in place in a buffer it has seen is examined afresh.
 */

const DIR = 'attestation/snp/gsg-milan-v2';
const report = readTestdata(`${DIR}/report.bin`);
const at = new Date('2025-06-01T00:00:00Z');

describe.each([webCryptoSignatureVerifier, nodeSignatureVerifier])(
  'SEV-SNP chain cache ($name)',
  (signatures) => {
    it('notices a VCEK changed in place after it was cached', async () => {
      const verifier = createSnpVerifier({ signatures });
      const endorsements = {
        signerCert: readTestdata(`${DIR}/vcek.der`),
        caChain: readTestdata(`${DIR}/ask_ark.pem`),
      };
      const verify = () => verifier.verify(verifier.parse(report), endorsements, { now: at });
      expect((await verify()).valid).toBe(true);
      // The last byte of the VCEK: inside the ASK's RSA-PSS signature over it.
      const last = endorsements.signerCert.length - 1;
      endorsements.signerCert[last]! ^= 1;
      const changed = await verify();
      expect(changed.checks.leaf_signed_by_ask?.ok).toBe(false);
      expect(changed.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
      endorsements.signerCert[last]! ^= 1;
      expect((await verify()).valid).toBe(true);
    });

    it('keeps the work of different signature verifiers apart when one cache is shared', async () => {
      const chainCache = new SnpChainCache(4);
      const endorsements = {
        signerCert: readTestdata(`${DIR}/vcek.der`),
        caChain: readTestdata(`${DIR}/ask_ark.pem`),
      };
      for (const other of [webCryptoSignatureVerifier, nodeSignatureVerifier, signatures]) {
        const verifier = createSnpVerifier({ chainCache, signatures: other });
        const result = await verifier.verify(verifier.parse(report), endorsements, { now: at });
        expect({ verifier: other.name, error: result.error }).toEqual({ verifier: other.name, error: null });
      }
      expect(chainCache.size).toBe(1);
    });

    it('judges the chain per product named, not once for all: a wrong product is still refused when cached', async () => {
      const verifier = createSnpVerifier({ signatures });
      const endorsements = {
        signerCert: readTestdata(`${DIR}/vcek.der`),
        caChain: readTestdata(`${DIR}/ask_ark.pem`),
      };
      const verify = (product?: 'Milan' | 'Genoa') =>
        verifier.verify(
          verifier.parse(report),
          product === undefined ? endorsements : { ...endorsements, product },
          {
            now: at,
          },
        );
      expect((await verify()).valid).toBe(true);
      expect((await verify('Genoa')).valid).toBe(false);
      expect((await verify('Milan')).valid).toBe(true);
    });
  },
);
