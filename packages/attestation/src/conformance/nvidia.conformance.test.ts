import { bytesToHex, hexToBytes, utf8Decode, utf8Encode } from '@tresor/crypto';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { createNvidiaVerifier, type NvidiaEndorsements } from '../nvidia/index.js';
import { webCryptoSignatureVerifier } from '../signatures/index.js';
import { nvidiaEndorsementsFrom } from '../verify-attestation.js';
import { testdataVector } from './testdata-vectors.js';
import { flipBit, runVerifierConformance, variant, vectorFixtures } from './verifier-conformance.js';

const vectors = vectorDirs('nvidia').map((dir) =>
  testdataVector(readTestdataJson(`${dir}/expected.json`), (file) => readTestdata(`${dir}/${file}`)),
);
// Verifying the 8-GPU list costs eight signature and chain checks: fewer runs keep the file fast.
const valid = vectorFixtures<NvidiaEndorsements>(vectors, (files) => nvidiaEndorsementsFrom(files)).map(
  (f) => (f.name === 'nvidia/nvtrust-ppcie-8gpu' ? { ...f, runs: 25 } : f),
);
const hex = valid.find((f) => f.name === 'nvidia/nvtrust-hopper-sample')!;
const list = valid.find((f) => f.name === 'nvidia/nvtrust-ppcie-8gpu')!;
// The hex report decoded: a 37-byte request (nonce at 4), then the response (blocks from 37 + 8).
const binary = hexToBytes(utf8Decode(hex.evidence).trim());
const asHex = (bytes: Uint8Array): Uint8Array => utf8Encode(bytesToHex(bytes));

// Once per signature verifier: WebCrypto (browsers) and node:crypto (servers, CLI).
for (const signatures of [webCryptoSignatureVerifier, nodeSignatureVerifier]) {
  runVerifierConformance(`nvidia (${signatures.name})`, createNvidiaVerifier({ signatures }), {
    valid,
    tampered: [
      variant(hex, 'measurement block bit flipped (signed)', {
        evidence: asHex(flipBit(binary, 37 + 8 + 100)),
      }),
      variant(hex, 'requester nonce bit flipped (signed)', { evidence: asHex(flipBit(binary, 4)) }),
      variant(hex, 'SPDM signature bit flipped', { evidence: asHex(flipBit(binary, binary.length - 10)) }),
      variant(hex, 'expected nonce differs', {
        endorsements: { ...hex.endorsements, expectedNonce: '00'.repeat(32) },
      }),
      // A bit in GPU 4's base64 certificate chain: its SubjectKeyIdentifier extension no longer decodes
      // (x509 decodes extensions lazily, so this surfaces inside verify unless the parser reads them).
      variant(list, 'a certificate extension of one GPU corrupted (JSON list)', {
        evidence: flipBit(list.evidence, 318096 >> 3, 318096 & 7),
      }),
    ],
    runs: 120,
  });
}
