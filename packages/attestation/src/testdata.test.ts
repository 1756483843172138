import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readTestdata, readTestdataJson, testdataPath } from '../../../test/support/testdata.js';
import { isTcbStatus } from './tdx/tcb-status.js';
import {
  claimAt,
  leafClaimPaths,
  requiredClaimPaths,
  testdataVector,
  type TestdataVector,
} from './conformance/testdata-vectors.js';
import { createNodeVerifiers } from './node/index.js';
import { DEFAULT_VERIFIERS, verifyAttestation, type VerifierSet } from './verify-attestation.js';

/**
 * Table-driven over every vector in testdata/attestation/*\/*: each case's outcome at its
 * `verify_at`, its TDX TCB status where pinned, the tool's individual checks under the same names,
 * and the claims issue #4 lists, exactly as expected.json spells them. A new vector folder is
 * picked up without code. Everything runs twice: with the WebCrypto signature verifier (browsers)
 * and with the node:crypto one (servers, CLI), which must give the same verdicts.
 */
const vectors: TestdataVector[] = readdirSync(testdataPath('attestation'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && ['snp', 'tdx', 'nvidia'].includes(d.name))
  .flatMap((tee) =>
    readdirSync(testdataPath(`attestation/${tee.name}`))
      .sort()
      .map((name) => {
        const dir = `attestation/${tee.name}/${name}`;
        return testdataVector(readTestdataJson(`${dir}/expected.json`), (file) =>
          readTestdata(`${dir}/${file}`),
        );
      }),
  );

const verifierSets: [string, VerifierSet][] = [
  ['WebCrypto', DEFAULT_VERIFIERS],
  ['node:crypto', createNodeVerifiers()],
];

describe.each(verifierSets)('attestation test data (%s signatures)', (_, verifiers) => {
  it('covers every TEE with at least one vector', () => {
    expect(new Set(vectors.map((v) => v.tee))).toEqual(new Set(['snp', 'tdx', 'nvidia']));
    expect(vectors.length).toBeGreaterThanOrEqual(14);
  });

  for (const vector of vectors) {
    describe(vector.id, () => {
      for (const c of vector.cases) {
        it(`at ${c.verifyAt.toISOString()} is ${c.valid ? 'valid' : 'invalid'} (${c.reason})`, async () => {
          const { tee, result } = await verifyAttestation({
            files: vector.files,
            now: c.verifyAt,
            verifiers,
          });
          expect(tee).toBe(vector.tee);
          expect(result.valid).toBe(c.valid);
          // The result's code is the first failed check's, and only failed checks carry codes.
          const failed = Object.entries(result.checks).filter(([, check]) => !check.ok);
          expect(result.error).toBe(failed[0]?.[1].code ?? null);
          for (const [, check] of failed) expect(check.code).toBeDefined();
          // Every check the testdata tool ran exists under the same name with the same verdict.
          const ours = Object.fromEntries(
            Object.keys(c.checks).map((name) => [name, result.checks[name]?.ok]),
          );
          expect(ours).toEqual(c.checks);

          if (c.expectedTcbStatus !== undefined) {
            const status = claimAt(result.claims, 'tcb.status');
            if (c.expectedTcbStatus === null) {
              expect(typeof status === 'string' && isTcbStatus(status)).toBe(false);
            } else {
              expect(status).toBe(c.expectedTcbStatus);
            }
          }

          const required = requiredClaimPaths(vector);
          const pick = (claims: unknown): Record<string, unknown> =>
            Object.fromEntries(required.map((path) => [path, claimAt(claims, path)]));
          expect(pick(result.claims)).toEqual(pick(vector.claims));
          for (const path of required) expect(claimAt(vector.claims, path), path).toBeDefined();
        });
      }

      it('reproduces the other claims of expected.json, with the same names and encodings', async () => {
        const { result } = await verifyAttestation({
          files: vector.files,
          now: vector.cases[0]!.verifyAt,
          verifiers,
        });
        const stated = leafClaimPaths(vector.claims).filter(
          (path) => claimAt(result.claims, path) !== undefined,
        );
        const pick = (claims: unknown): Record<string, unknown> =>
          Object.fromEntries(stated.map((path) => [path.join('/'), claimAt(claims, path)]));
        expect(pick(result.claims)).toEqual(pick(vector.claims));
        // Stating most of them: a verifier that dropped its claims would pass the filter above.
        expect(stated.length / leafClaimPaths(vector.claims).length).toBeGreaterThan(0.9);
      });
    });
  }
});
