import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import type { VerificationResult, Verifier } from '../types.js';
import type { AttestationFiles } from '../verify-attestation.js';
import type { TestdataVector } from './testdata-vectors.js';

/**
 * The conformance suite every `Verifier` runs (STYLE.md: one interface, one suite, every
 * implementation runs it). It registers vitest tests for the contract the framework relies on:
 * parsing refuses anything that is not evidence with a clean code, verification is deterministic,
 * never throws for a verification failure, reports the first failed check's code, and hands the
 * policy engine a well-formed, JSON-serialisable result.
 */

export interface ConformanceFixture<E> {
  readonly name: string;
  readonly evidence: Uint8Array;
  readonly endorsements: E;
  readonly now: Date;
  /** fast-check runs per property for this fixture (default: the suite's `runs`); lower for slow evidence. */
  readonly runs?: number;
}

export interface ConformanceFixtures<E> {
  /** Real evidence that must verify. */
  readonly valid: readonly ConformanceFixture<E>[];
  /** Evidence or endorsements altered so that verification must fail. */
  readonly tampered: readonly ConformanceFixture<E>[];
  /** fast-check runs per property (default 300; keep the file under ~20 s). */
  readonly runs?: number;
}

/** A copy of `bytes` with one bit flipped. */
export function flipBit(bytes: Uint8Array, byte: number, bit = 0): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[byte]! ^= 1 << bit;
  return out;
}

/** A fixture derived from another, renamed. */
export function variant<E>(
  fixture: ConformanceFixture<E>,
  name: string,
  change: Partial<ConformanceFixture<E>>,
): ConformanceFixture<E> {
  return { ...fixture, ...change, name };
}

/** One valid fixture per test-data vector, at its first valid case. */
export function vectorFixtures<E>(
  vectors: readonly TestdataVector[],
  endorse: (files: AttestationFiles, evidence: Uint8Array) => E,
): ConformanceFixture<E>[] {
  return vectors.flatMap((v) => {
    const valid = v.cases.find((c) => c.valid);
    const evidence = v.files[v.evidenceRole]!;
    return valid === undefined
      ? []
      : [{ name: v.id, evidence, endorsements: endorse(v.files, evidence), now: valid.verifyAt }];
  });
}

/** The only codes a parser may throw: the evidence, or a file it embeds, is not well formed. */
const PARSE_CODES: readonly ErrorCode[] = ['ATTESTATION_EVIDENCE_MALFORMED', 'INPUT_MALFORMED'];
/** What verify() may throw: unusable endorsements (never a verification failure). */
const ENDORSEMENT_CODES: readonly ErrorCode[] = ['INPUT_MALFORMED', 'USAGE_INVALID'];

const lowerHex = z.string().regex(/^(?:[0-9a-f]{2})*$/, 'lowercase hex');
const appraisalInputSchema = z.strictObject({
  tee: z.enum(['snp', 'tdx', 'nvidia', 'sample']),
  insecure: z.boolean(),
  debug: z.boolean(),
  measurements: z.record(z.string().min(1), lowerHex),
  reportData: lowerHex.length(128).nullable(),
  hardwareIds: z.array(lowerHex.min(2)),
  tcb: z.record(z.string().min(1), z.union([z.number().int(), z.string(), z.array(z.string())])),
  vmpl: z.number().int().min(0).max(3).nullable(),
  nonce: lowerHex.min(2).nullable(),
  flags: z.record(z.string().min(1), z.boolean()),
});

type Outcome =
  { parsed: false; code: string } | { parsed: true; result: VerificationResult | { threw: string } };

function codeOf(err: unknown): string {
  return isTresorError(err)
    ? err.code
    : `non-TresorError ${err instanceof Error ? err.name : typeof err}: ${String(err)}`;
}

/** Parses and verifies, catching what each step throws. */
async function attempt<R, E>(
  verifier: Verifier<R, E>,
  evidence: Uint8Array,
  endorsements: E,
  now: Date,
): Promise<Outcome> {
  let report: R;
  try {
    report = verifier.parse(evidence);
  } catch (err) {
    return { parsed: false, code: codeOf(err) };
  }
  try {
    return { parsed: true, result: await verifier.verify(report, endorsements, { now }) };
  } catch (err) {
    return { parsed: true, result: { threw: codeOf(err) } };
  }
}

/** Why the outcome breaks the contract for arbitrary input, or null when it is clean. */
function contractBreach(outcome: Outcome): string | null {
  if (!outcome.parsed) {
    return PARSE_CODES.includes(outcome.code as ErrorCode) ? null : `parse threw ${outcome.code}`;
  }
  if ('threw' in outcome.result) {
    return ENDORSEMENT_CODES.includes(outcome.result.threw as ErrorCode)
      ? null
      : `verify threw ${outcome.result.threw}`;
  }
  return consistent(outcome.result) ? null : `inconsistent result: ${JSON.stringify(outcome.result.checks)}`;
}

/** A fast-check predicate: throws (so the counterexample is reported with the reason) on a breach. */
function clean(outcome: Outcome): true {
  const breach = contractBreach(outcome);
  if (breach !== null) throw new Error(breach);
  return true;
}

/** valid ⇔ no failed check ⇔ error null; error = first failed check's code; failures carry codes. */
function consistent(result: VerificationResult): boolean {
  const checks = Object.values(result.checks);
  const firstFailure = checks.find((c) => !c.ok);
  return (
    checks.length > 0 &&
    result.valid === (firstFailure === undefined) &&
    result.error === (firstFailure?.code ?? null) &&
    checks.every((c) => c.ok || c.code !== undefined)
  );
}

/** JSON data only: no undefined, BigInt, NaN, typed arrays, dates or class instances. */
function isJsonData(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJsonData);
  if (typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && Object.values(value).every(isJsonData);
}

function describeOutcome(outcome: Outcome): string {
  if (!outcome.parsed) return `parse threw ${outcome.code}`;
  if ('threw' in outcome.result) return `verify threw ${outcome.result.threw}`;
  return `verify: valid=${outcome.result.valid} error=${outcome.result.error}`;
}

export function runVerifierConformance<R, E>(
  name: string,
  verifier: Verifier<R, E>,
  fixtures: ConformanceFixtures<E>,
): void {
  const runs = fixtures.runs ?? 300;
  const base = fixtures.valid[0];
  describe(`Verifier conformance: ${name}`, () => {
    it('has fixtures to run on', () => {
      expect(fixtures.valid.length).toBeGreaterThan(0);
      expect(fixtures.tampered.length).toBeGreaterThan(0);
    });

    it('refuses empty, garbage and oversized input at parse with ATTESTATION_EVIDENCE_MALFORMED or INPUT_MALFORMED', () => {
      const inputs = [
        new Uint8Array(0),
        new Uint8Array(1),
        new Uint8Array(5 << 20),
        new TextEncoder().encode('{}'),
        new TextEncoder().encode('[]'),
      ];
      for (const input of inputs) {
        let code: string | undefined;
        try {
          verifier.parse(input);
        } catch (err) {
          code = codeOf(err);
        }
        expect({ length: input.length, code }).toEqual({ length: input.length, code: code ?? 'parsed' });
        expect(code).toMatch(/^(ATTESTATION_EVIDENCE_MALFORMED|INPUT_MALFORMED)$/);
      }
    });

    it('parses random bytes only into a clean outcome', async () => {
      if (base === undefined) return;
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) =>
          clean(await attempt(verifier, bytes, base.endorsements, base.now)),
        ),
        { numRuns: runs * 3 },
      );
    });

    for (const fixture of fixtures.valid) {
      const fixtureRuns = fixture.runs ?? runs;
      describe(fixture.name, () => {
        it('verifies, and the result is consistent, JSON-serialisable and carries a well-formed appraisal input', async () => {
          const result = await verifier.verify(verifier.parse(fixture.evidence), fixture.endorsements, {
            now: fixture.now,
          });
          expect({ valid: result.valid, error: result.error }).toEqual({ valid: true, error: null });
          expect(result.tee).toBe(verifier.tee);
          expect(consistent(result)).toBe(true);
          expect(isJsonData(result.claims)).toBe(true);
          expect(isJsonData(result.checks)).toBe(true);
          expect(isJsonData(result.appraisal)).toBe(true);
          expect(JSON.parse(JSON.stringify(result.claims))).toEqual(result.claims);
          const appraisal = appraisalInputSchema.safeParse(result.appraisal);
          expect(appraisal.success ? 'well-formed' : appraisal.error.issues).toBe('well-formed');
          expect(result.appraisal.tee).toBe(verifier.tee);
        });

        it('is deterministic for a fixed time, and never throws at any time', async () => {
          const a = await verifier.verify(verifier.parse(fixture.evidence), fixture.endorsements, {
            now: fixture.now,
          });
          const b = await verifier.verify(verifier.parse(fixture.evidence), fixture.endorsements, {
            now: fixture.now,
          });
          expect(JSON.stringify(b)).toBe(JSON.stringify(a));
          for (const now of [
            new Date(0),
            new Date('9999-12-31T00:00:00Z'),
            new Date(fixture.now.getTime() + 1),
          ]) {
            const outcome = await attempt(verifier, fixture.evidence, fixture.endorsements, now);
            expect(describeOutcome(outcome)).not.toMatch(/threw/);
            expect(contractBreach(outcome)).toBeNull();
          }
        });

        it('refuses every truncation and survives appended bytes with a clean outcome', async () => {
          const { evidence } = fixture;
          await fc.assert(
            fc.asyncProperty(fc.nat({ max: evidence.length - 1 }), async (length) =>
              clean(await attempt(verifier, evidence.subarray(0, length), fixture.endorsements, fixture.now)),
            ),
            { numRuns: fixtureRuns },
          );
          await fc.assert(
            fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), async (extra) => {
              const longer = new Uint8Array(evidence.length + extra.length);
              longer.set(evidence);
              longer.set(extra, evidence.length);
              return clean(await attempt(verifier, longer, fixture.endorsements, fixture.now));
            }),
            { numRuns: fixtureRuns },
          );
        });

        it('survives any flipped bit with a clean outcome', async () => {
          const { evidence } = fixture;
          await fc.assert(
            fc.asyncProperty(fc.nat({ max: evidence.length * 8 - 1 }), async (bit) => {
              const flipped = Uint8Array.from(evidence);
              flipped[bit >> 3]! ^= 1 << (bit & 7);
              return clean(await attempt(verifier, flipped, fixture.endorsements, fixture.now));
            }),
            { numRuns: fixtureRuns },
          );
        });
      });
    }

    for (const fixture of fixtures.tampered) {
      it(`refuses tampered evidence, never accepting it and never with an exception: ${fixture.name}`, async () => {
        const outcome = await attempt(verifier, fixture.evidence, fixture.endorsements, fixture.now);
        // Refused at parse with a clean code, or verified into a failed result with a code.
        expect(describeOutcome(outcome)).toMatch(
          /^(parse threw (ATTESTATION_EVIDENCE_MALFORMED|INPUT_MALFORMED)|verify: valid=false error=[A-Z_]+)$/,
        );
        expect(contractBreach(outcome)).toBeNull();
      });
    }
  });
}
