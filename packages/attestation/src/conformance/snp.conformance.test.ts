import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { webCryptoSignatureVerifier } from '../signatures/index.js';
import { createSnpVerifier, type SnpEndorsements } from '../snp/index.js';
import { snpEndorsementsFrom } from '../verify-attestation.js';
import { testdataVector } from './testdata-vectors.js';
import { flipBit, runVerifierConformance, variant, vectorFixtures } from './verifier-conformance.js';

const vectors = vectorDirs('snp').map((dir) =>
  testdataVector(readTestdataJson(`${dir}/expected.json`), (file) => readTestdata(`${dir}/${file}`)),
);
const valid = vectorFixtures<SnpEndorsements>(vectors, (files, evidence) =>
  snpEndorsementsFrom(files, evidence),
);
// The raw report of gsg-milan-v2: 1184 bytes, signed region 0x000..0x29F, R at 0x2A0.
const raw = valid.find((f) => f.name === 'snp/gsg-milan-v2')!;

// Once per signature verifier: WebCrypto (browsers) and node:crypto (servers, CLI).
for (const signatures of [webCryptoSignatureVerifier, nodeSignatureVerifier]) {
  runVerifierConformance(`snp (${signatures.name})`, createSnpVerifier({ signatures }), {
    valid,
    tampered: [
      variant(raw, 'measurement bit flipped (signed body)', { evidence: flipBit(raw.evidence, 0x90) }),
      variant(raw, 'signature R bit flipped', { evidence: flipBit(raw.evidence, 0x2a0) }),
      variant(raw, 'chain of the wrong product (Genoa ASK/ARK for a Milan VCEK)', {
        endorsements: {
          ...raw.endorsements,
          caChain: readTestdata('attestation/snp/azure-genoa-v3/ask_ark.pem'),
        },
      }),
      variant(raw, 'clock after the VCEK notAfter', { now: new Date('2030-01-01T00:00:00Z') }),
    ],
  });
}
