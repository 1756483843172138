import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { webCryptoSignatureVerifier } from '../signatures/index.js';
import { createTdxVerifier, type TdxEndorsements } from '../tdx/index.js';
import { tdxEndorsementsFrom } from '../verify-attestation.js';
import { testdataVector } from './testdata-vectors.js';
import { flipBit, runVerifierConformance, variant, vectorFixtures } from './verifier-conformance.js';

const vectors = vectorDirs('tdx').map((dir) =>
  testdataVector(readTestdataJson(`${dir}/expected.json`), (file) => readTestdata(`${dir}/${file}`)),
);
const valid = vectorFixtures<TdxEndorsements>(vectors, (files) => tdxEndorsementsFrom(files));
// Quote v4 with collateral: the TD report starts at 48 (MRTD at 48 + 136), the signature data at 632.
const quote = valid.find((f) => f.name === 'tdx/dcap-qvl-v4-uptodate')!;

// Once per signature verifier: WebCrypto (browsers) and node:crypto (servers, CLI).
for (const signatures of [webCryptoSignatureVerifier, nodeSignatureVerifier]) {
  runVerifierConformance(`tdx (${signatures.name})`, createTdxVerifier({ signatures }), {
    valid,
    tampered: [
      variant(quote, 'MRTD bit flipped (signed body)', { evidence: flipBit(quote.evidence, 48 + 136) }),
      variant(quote, 'quote signature bit flipped', { evidence: flipBit(quote.evidence, 632 + 4 + 10) }),
      variant(quote, 'collateral past its nextUpdate', { now: new Date('2025-08-01T00:00:00Z') }),
    ],
    runs: 150,
  });
}
