import { describe, expect, it } from 'vitest';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import type { SnpClaims } from './claims.js';
import { createSnpVerifier, snpVerifier } from './verifier.js';
import type { SnpEndorsements } from './endorsements.js';

/**
 * Every SEV-SNP vector in the shared test data, every case at its verify_at: outcome, each check
 * named in expected.json's `computed.checks`, the error code of the first failure, and the claims
 * field by field. A new vector folder needs no code here.
 */

interface Expected {
  inputs: {
    report: string;
    signer_cert: string;
    ca_chain?: string;
    crl?: string;
    product?: 'Milan' | 'Genoa' | 'Turin';
    report_source?: { file: string; json_field?: string; offset: number };
  };
  cases: {
    verify_at: string;
    expected_outcome: 'valid' | 'invalid';
    computed: { failed_checks: string[]; checks: Record<string, boolean> };
  }[];
  claims: ExpectedClaims;
}

/** The claims this file reads by name; every other claim is compared generically. */
interface ExpectedClaims extends Record<string, unknown> {
  signer: 'vcek' | 'vlek';
  version: number;
  policy: { debug: boolean };
  measurement: string;
  host_data: string;
  report_data: string;
  chip_id: string;
  vmpl: number;
  product: string;
  reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number };
}

/** Checks only the test data's own tool ran (openssl cross-checks, container cut). */
const TOOL_ONLY = /^(openssl_|report_matches_published_container$)/;

/** The code each expected.json check name fails with, for the first-failure assertion. */
const CODE_BY_CHECK: Record<string, string[]> = {
  ark_self_signed: ['ATTESTATION_CERT_CHAIN_INVALID'],
  ask_signed_by_ark: ['ATTESTATION_CERT_CHAIN_INVALID'],
  leaf_signed_by_ask: ['ATTESTATION_CERT_CHAIN_INVALID'],
  certs_valid_at_time: ['ATTESTATION_CERT_NOT_YET_VALID', 'ATTESTATION_CERT_EXPIRED'],
  signer_matches_cert: ['ATTESTATION_CERT_CHAIN_INVALID', 'ATTESTATION_SIGNATURE_INVALID'],
  product_matches_chain: ['ATTESTATION_ROOT_UNTRUSTED'],
  cert_tcb_equals_reported_tcb: ['ATTESTATION_TCB_MISMATCH'],
  cert_hwid_equals_chip_id: ['ATTESTATION_CHIP_ID_MISMATCH'],
  report_signature: ['ATTESTATION_SIGNATURE_INVALID'],
};

const vectors = vectorDirs('snp').map((dir) => ({
  dir,
  expected: readTestdataJson(`${dir}/expected.json`) as Expected,
}));

/** The endorsements from expected.json's `inputs` roles (signer_cert, ca_chain, crl, product). */
function endorsementsOf(dir: string, expected: Expected): SnpEndorsements {
  const { signer_cert: signerCert, ca_chain: caChain, crl, product } = expected.inputs;
  return {
    signerCert: readTestdata(`${dir}/${signerCert}`),
    ...(caChain === undefined ? {} : { caChain: readTestdata(`${dir}/${caChain}`) }),
    ...(crl === undefined ? {} : { crl: readTestdata(`${dir}/${crl}`) }),
    ...(product === undefined ? {} : { product }),
  };
}

describe('SEV-SNP test vectors', () => {
  it('covers every vector folder, VCEK and VLEK, versions 2 and 3', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(6);
    const signers = new Set(vectors.map((v) => v.expected.claims.signer));
    const versions = new Set(vectors.map((v) => v.expected.claims.version));
    expect([...signers]).toEqual(expect.arrayContaining(['vcek', 'vlek']));
    expect([...versions]).toEqual(expect.arrayContaining([2, 3]));
  });

  describe.each(vectors)('$dir', ({ dir, expected }) => {
    const report = snpVerifier.parse(readTestdata(`${dir}/${expected.inputs.report}`));

    it.each(expected.cases)('gives $expected_outcome at $verify_at', async (c) => {
      const result = await snpVerifier.verify(report, endorsementsOf(dir, expected), {
        now: new Date(c.verify_at),
      });
      expect(result.tee).toBe('snp');
      expect(result.valid).toBe(c.expected_outcome === 'valid');

      const wanted = Object.entries(c.computed.checks).filter(([name]) => !TOOL_ONLY.test(name));
      for (const [name, ok] of wanted) {
        expect({ name, ok: result.checks[name]?.ok }).toEqual({ name, ok });
      }
      // Exactly expected.json's checks, plus the ARK pin (and CRL check) this verifier adds.
      const added = ['ark_pinned', ...(expected.inputs.crl === undefined ? [] : ['crl'])];
      expect(Object.keys(result.checks).sort()).toEqual([...wanted.map(([n]) => n), ...added].sort());
      expect(result.checks.ark_pinned?.ok).toBe(true);

      const firstFailed = c.computed.failed_checks.find((name) => !TOOL_ONLY.test(name));
      if (firstFailed === undefined) {
        expect(result.error).toBeNull();
      } else {
        expect(CODE_BY_CHECK[firstFailed]).toContain(result.error);
        expect(result.checks[firstFailed]?.code).toBe(result.error);
      }
    });

    it('reproduces every claim of expected.json', async () => {
      const at = new Date(expected.cases[0]!.verify_at);
      const { claims } = await snpVerifier.verify(report, endorsementsOf(dir, expected), { now: at });
      const actual = claims as Record<string, unknown>;
      for (const [name, value] of Object.entries(expected.claims)) {
        if (name === 'policy') {
          // The claims add the policy bits newer than expected.json's tool; those must be 0 here.
          expect(actual[name]).toMatchObject(value as object);
        } else {
          expect({ name, value: actual[name] }).toEqual({ name, value });
        }
      }
      // Version-2 reports have no CPUID fields: the claim is absent, not zeros.
      expect('cpuid' in actual).toBe('cpuid' in expected.claims);
    });

    it('decodes the newer policy bits and platform info consistently with the policy hex', async () => {
      const { claims } = (await snpVerifier.verify(report, endorsementsOf(dir, expected), {
        now: new Date(expected.cases[0]!.verify_at),
      })) as { claims: SnpClaims };
      const policy = BigInt(claims.policy.hex);
      const bit = (n: number): boolean => ((policy >> BigInt(n)) & 1n) === 1n;
      expect(claims.policy.cxl_allowed).toBe(bit(21));
      expect(claims.policy.mem_aes_256_xts).toBe(bit(22));
      expect(claims.policy.rapl_dis).toBe(bit(23));
      expect(claims.policy.ciphertext_hiding).toBe(bit(24));
      expect(claims.policy.page_swap_disable).toBe(bit(25));
      const info = BigInt(claims.platform_info);
      expect(claims.platform_info_decoded.smt_enabled).toBe((info & 1n) === 1n);
      expect(claims.platform_info_decoded.alias_check_complete).toBe(((info >> 5n) & 1n) === 1n);
    });

    if (expected.inputs.report_source !== undefined) {
      const source = expected.inputs.report_source;
      it(`parses the published container ${source.file} to the same report`, () => {
        const container = readTestdata(`${dir}/${source.file}`);
        expect(snpVerifier.parse(container).bytes).toEqual(report.bytes);
      });
    }

    it('fills the appraisal input from the report', async () => {
      const result = await snpVerifier.verify(report, endorsementsOf(dir, expected), {
        now: new Date(expected.cases[0]!.verify_at),
      });
      const c = expected.claims;
      const a = result.appraisal;
      expect(a.tee).toBe('snp');
      expect(a.insecure).toBe(false);
      expect(a.debug).toBe(c.policy.debug);
      expect(a.measurements).toEqual({ measurement: c.measurement, host_data: c.host_data });
      expect(a.reportData).toBe(c.report_data);
      expect(a.vmpl).toBe(c.vmpl);
      expect(a.nonce).toBeNull();
      const { bootloader, tee, snp, microcode } = c.reported_tcb;
      expect(a.tcb).toEqual({ product: c.product, bootloader, tee, snp, microcode });
      // A VLEK names no chip: the residency inventory cannot place it.
      expect(a.hardwareIds).toEqual(c.signer === 'vlek' ? [] : [c.chip_id]);
      expect(a.flags.vlek_signed).toBe(c.signer === 'vlek');
    });
  });

  it('gives the same results without the chain cache', async () => {
    const uncached = createSnpVerifier({ chainCache: null });
    for (const { dir, expected } of vectors) {
      const report = uncached.parse(readTestdata(`${dir}/${expected.inputs.report}`));
      for (const c of expected.cases) {
        const result = await uncached.verify(report, endorsementsOf(dir, expected), {
          now: new Date(c.verify_at),
        });
        expect(result.valid).toBe(c.expected_outcome === 'valid');
      }
    }
  });

  it('verifies with the pinned ASK/ASVK and ARK when no CA chain is supplied', async () => {
    for (const { dir, expected } of vectors) {
      const report = snpVerifier.parse(readTestdata(`${dir}/${expected.inputs.report}`));
      const signerCert = readTestdata(`${dir}/${expected.inputs.signer_cert}`);
      for (const c of expected.cases.filter((x) => x.expected_outcome === 'valid')) {
        const result = await snpVerifier.verify(report, { signerCert }, { now: new Date(c.verify_at) });
        expect({ dir, error: result.error }).toEqual({ dir, error: null });
      }
    }
  });

  it('reads the debug guest (gsg-milan-v2) as valid hardware evidence with debug claimed for appraisal', async () => {
    const { dir, expected } = vectors.find((v) => v.dir.endsWith('gsg-milan-v2'))!;
    const report = snpVerifier.parse(readTestdata(`${dir}/report.bin`));
    const result = await snpVerifier.verify(report, endorsementsOf(dir, expected), {
      now: new Date('2025-06-01T00:00:00Z'),
    });
    expect(result.valid).toBe(true);
    expect((result.claims as SnpClaims).policy.debug).toBe(true);
    expect(result.appraisal.debug).toBe(true);
  });
});
