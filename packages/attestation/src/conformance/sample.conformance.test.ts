import { utf8Decode, utf8Encode } from '@tresor/crypto';
import {
  createSampleEvidence,
  SampleSigningKey,
  sampleVerifier,
  type SampleEndorsements,
} from '../sample/index.js';
import { runVerifierConformance, variant, type ConformanceFixture } from './verifier-conformance.js';

// Sample evidence is generated at run time, with fixed keys.
const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(9));
const evidence = createSampleEvidence({ reportData: new Uint8Array(64).fill(1), svn: 2, signingKey: key });
const fixture: ConformanceFixture<SampleEndorsements> = {
  name: 'signed sample evidence',
  evidence,
  endorsements: { verifyKey: key.verifyKey },
  now: new Date('2025-06-01T00:00:00Z'),
};

runVerifierConformance('sample', sampleVerifier, {
  valid: [fixture],
  tampered: [
    variant(fixture, 'svn changed', {
      evidence: utf8Encode(utf8Decode(evidence).replace('"svn":"2"', '"svn":"3"')),
    }),
    variant(fixture, 'another installation key', {
      endorsements: { verifyKey: SampleSigningKey.generate(() => new Uint8Array(32).fill(8)).verifyKey },
    }),
    variant(fixture, 'no key configured', { endorsements: {} }),
  ],
  runs: 1000,
});
