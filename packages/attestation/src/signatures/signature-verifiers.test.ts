import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hexToBytes } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import { nodeSignatureVerifier } from '../node/index.js';
import { signatureP1363 } from '../snp/report-signature.js';
import { parseSnpReportBytes } from '../snp/report.js';
import { parseTdxCollateral } from '../tdx/collateral.js';
import { parseTdxQuote } from '../tdx/quote.js';
import { ecPublicKeySpki } from './ec-public-key.js';
import { ecdsaDerToP1363 } from './ecdsa-signature.js';
import type { EcdsaCurve, SignatureVerifier, VerificationKey } from './signature-verifier.js';
import { webCryptoSignatureVerifier } from './webcrypto-signature-verifier.js';
import { signedParts, verifyX509Signature } from './x509-signature.js';

/**
 * The conformance suite every SignatureVerifier runs (STYLE.md: one interface, one suite): the real
 * signatures of every TEE vendor verify, every kind of tampering fails, nothing ever throws, and
 * (given a reference implementation) the two agree on arbitrary malformed signatures, so swapping
 * the implementation can never turn a refusal into an acceptance.
 */

const T = 'attestation';
const snpReport = parseSnpReportBytes(readTestdata(`${T}/snp/azure-genoa-v3/report.bin`));
const [vcek] = parseCertificates(readTestdata(`${T}/snp/azure-genoa-v3/vcek.pem`));
const [ask, ark] = parseCertificates(readTestdata(`${T}/snp/azure-genoa-v3/ask_ark.pem`));
const quote = parseTdxQuote(readTestdata(`${T}/tdx/dcap-qvl-v4-uptodate/quote.bin`));
const pckChain = parseCertificates(quote.pckChainPem);
const collateral = parseTdxCollateral(readTestdata(`${T}/tdx/dcap-qvl-v4-uptodate/collateral.json`));
const [intelRoot] = parseCertificates(readTestdata(`${T}/tdx/dcap-qvl-v4-uptodate/intel_sgx_root_ca.der`));
const gpuChain = parseCertificates(readTestdata(`${T}/nvidia/nvtrust-hopper-sample/cert_chain.pem`));

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const P384 = { name: 'ECDSA', namedCurve: 'P-384' } as const;
const ES256_RAW = { name: 'ECDSA', hash: 'SHA-256', encoding: 'ieee-p1363' } as const;
const ES384_RAW = { name: 'ECDSA', hash: 'SHA-384', encoding: 'ieee-p1363' } as const;
const ES256_DER = { name: 'ECDSA', hash: 'SHA-256', encoding: 'der' } as const;

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/** A fresh key pair on `curve` (WebCrypto, available everywhere the suite runs). */
async function keyPair(curve: EcdsaCurve): Promise<{ spki: Uint8Array; privateKey: CryptoKey }> {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, [
    'sign',
    'verify',
  ]);
  return {
    spki: new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey)),
    privateKey: keys.privateKey,
  };
}

/** DER ECDSA-Sig-Value of a raw r || s, minimal INTEGERs (the canonical encoding). */
function ecdsaP1363ToDer(raw: Uint8Array): Uint8Array {
  const integer = (value: Uint8Array): number[] => {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start++;
    const magnitude = [...value.subarray(start)];
    const body = magnitude[0]! >= 0x80 ? [0, ...magnitude] : magnitude;
    return [0x02, body.length, ...body];
  };
  const half = raw.length / 2;
  const content = [...integer(raw.subarray(0, half)), ...integer(raw.subarray(half))];
  return Uint8Array.from([0x30, content.length, ...content]);
}

function runSignatureVerifierConformance(verifier: SignatureVerifier, reference?: SignatureVerifier): void {
  const importKey = async (spki: Uint8Array, curve: EcdsaCurve): Promise<VerificationKey> => {
    const key = await verifier.importPublicKey(spki, curve === 'P-256' ? P256 : P384);
    if (key === undefined) throw new Error(`the ${curve} key does not import`);
    return key;
  };

  describe(`SignatureVerifier conformance: ${verifier.name}`, () => {
    describe('real signatures of every TEE vendor', () => {
      it('AMD: the RSA-PSS (SHA-384, salt 48) chain ARK → ASK → VCEK, and nothing else', async () => {
        expect(await verifyX509Signature(vcek!, ask!, verifier)).toBe(true);
        expect(await verifyX509Signature(ask!, ark!, verifier)).toBe(true);
        expect(await verifyX509Signature(ark!, ark!, verifier)).toBe(true);
        expect(await verifyX509Signature(vcek!, ark!, verifier)).toBe(false);
        expect(await verifyX509Signature(ark!, ask!, verifier)).toBe(false);
      });

      it('AMD: the SEV-SNP report signature (ECDSA P-384, raw r || s) under the VCEK', async () => {
        const key = await importKey(new Uint8Array(vcek!.publicKey.rawData), 'P-384');
        const signature = signatureP1363(snpReport) as Uint8Array;
        const signed = snpReport.bytes.subarray(0, 0x2a0);
        expect(await verifier.verify(key, ES384_RAW, signature, signed)).toBe(true);
        expect(await verifier.verify(key, ES384_RAW, signature, flipBit(signed, 0x90 * 8))).toBe(false);
      });

      it('Intel: the PCK chain (ECDSA P-256, DER) up to the Intel SGX Root CA, and both CRLs', async () => {
        const [pck, pckCa, root] = pckChain;
        expect(await verifyX509Signature(pck!, pckCa!, verifier)).toBe(true);
        expect(await verifyX509Signature(pckCa!, root!, verifier)).toBe(true);
        expect(await verifyX509Signature(pckCa!, intelRoot!, verifier)).toBe(true);
        expect(await verifyX509Signature(pck!, root!, verifier)).toBe(false);
        expect(await verifyX509Signature(collateral.rootCaCrl, intelRoot!, verifier)).toBe(true);
        expect(await verifyX509Signature(collateral.pckCrl, pckCa!, verifier)).toBe(true);
        expect(await verifyX509Signature(collateral.pckCrl, intelRoot!, verifier)).toBe(false);
      });

      it('Intel: the quote (attestation key, raw x || y) and QE report (PCK key) signatures', async () => {
        const spki = ecPublicKeySpki('P-256', quote.attestationKey);
        const attestationKey = await importKey(spki!, 'P-256');
        expect(
          await verifier.verify(attestationKey, ES256_RAW, quote.quoteSignature, quote.signedRegion),
        ).toBe(true);
        const pckKey = await importKey(new Uint8Array(pckChain[0]!.publicKey.rawData), 'P-256');
        expect(await verifier.verify(pckKey, ES256_RAW, quote.qeReportSignature, quote.qeReport.raw)).toBe(
          true,
        );
        expect(await verifier.verify(pckKey, ES256_RAW, quote.quoteSignature, quote.signedRegion)).toBe(
          false,
        );
      });

      it('Intel: the collateral signature over the exact served TCB info text', async () => {
        const signer = collateral.tcbInfo.issuerChain[0]!;
        const key = await importKey(new Uint8Array(signer.publicKey.rawData), 'P-256');
        const { bytes, signature } = collateral.tcbInfo;
        expect(await verifier.verify(key, ES256_RAW, signature, bytes)).toBe(true);
        const reserialised = new TextEncoder().encode(JSON.stringify(JSON.parse(collateral.tcbInfo.text)));
        expect(await verifier.verify(key, ES256_RAW, signature, reserialised)).toBe(
          reserialised.length === bytes.length && reserialised.every((b, i) => b === bytes[i]),
        );
      });

      it('NVIDIA: the device chain (ECDSA P-384 with SHA-384, DER)', async () => {
        for (let i = 0; i + 1 < gpuChain.length; i++) {
          expect(await verifyX509Signature(gpuChain[i]!, gpuChain[i + 1]!, verifier)).toBe(true);
        }
        expect(await verifyX509Signature(gpuChain[1]!, gpuChain[0]!, verifier)).toBe(false);
      });
    });

    describe('refusals', () => {
      it('imports only keys of the algorithm asked for', async () => {
        const p256 = new Uint8Array(pckChain[0]!.publicKey.rawData);
        const p384 = new Uint8Array(vcek!.publicKey.rawData);
        const rsa = new Uint8Array(ark!.publicKey.rawData);
        expect(await verifier.importPublicKey(p256, P256)).toBeDefined();
        expect(await verifier.importPublicKey(p256, P384)).toBeUndefined();
        expect(await verifier.importPublicKey(p384, P256)).toBeUndefined();
        expect(await verifier.importPublicKey(rsa, P384)).toBeUndefined();
        expect(await verifier.importPublicKey(p384, { name: 'RSA-PSS', hash: 'SHA-384' })).toBeUndefined();
        expect(await verifier.importPublicKey(rsa, { name: 'RSA-PSS', hash: 'SHA-384' })).toBeDefined();
        // A point off the curve: x || y with y changed.
        expect(ecPublicKeySpki('P-256', flipBit(quote.attestationKey, 63 * 8))).toBeDefined();
        const offCurve = ecPublicKeySpki('P-256', flipBit(quote.attestationKey, 63 * 8))!;
        expect(await verifier.importPublicKey(offCurve, P256)).toBeUndefined();
      });

      it('refuses algorithms that do not fit the key, wrong lengths, and keys of another implementation', async () => {
        const key = await importKey(ecPublicKeySpki('P-256', quote.attestationKey)!, 'P-256');
        const { quoteSignature: signature, signedRegion: message } = quote;
        expect(await verifier.verify(key, ES256_RAW, signature.subarray(0, 63), message)).toBe(false);
        expect(await verifier.verify(key, ES256_RAW, Uint8Array.of(...signature, 0), message)).toBe(false);
        expect(await verifier.verify(key, ES256_DER, signature, message)).toBe(false);
        expect(await verifier.verify(key, { ...ES256_RAW, hash: 'SHA-384' }, signature, message)).toBe(false);
        expect(
          await verifier.verify(
            key,
            { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 },
            signature,
            message,
          ),
        ).toBe(false);
        const foreign: VerificationKey = { algorithm: P256 };
        expect(await verifier.verify(foreign, ES256_RAW, signature, message)).toBe(false);
        if (reference !== undefined) {
          const theirs = await reference.importPublicKey(
            ecPublicKeySpki('P-256', quote.attestationKey)!,
            P256,
          );
          expect(await verifier.verify(theirs!, ES256_RAW, signature, message)).toBe(false);
        }
      });

      it('refuses an RSA-PSS signature with the wrong salt length or hash', async () => {
        const parts = signedParts(new Uint8Array(ask!.rawData))!;
        const key = await verifier.importPublicKey(new Uint8Array(ark!.publicKey.rawData), {
          name: 'RSA-PSS',
          hash: 'SHA-384',
        });
        const pss = (hash: 'SHA-256' | 'SHA-384', saltLength: number) =>
          verifier.verify(key!, { name: 'RSA-PSS', hash, saltLength }, parts.signature, parts.tbs);
        expect(await pss('SHA-384', 48)).toBe(true);
        for (const saltLength of [0, 32, 64]) expect(await pss('SHA-384', saltLength)).toBe(false);
        expect(await pss('SHA-256', 48)).toBe(false);
      });

      it('never throws, whatever the key bytes, signature and message', async () => {
        const key = await importKey(ecPublicKeySpki('P-256', quote.attestationKey)!, 'P-256');
        await fc.assert(
          fc.asyncProperty(
            fc.uint8Array({ maxLength: 200 }),
            fc.uint8Array({ maxLength: 120 }),
            fc.constantFrom('ieee-p1363' as const, 'der' as const),
            async (bytes, signature, encoding) => {
              expect(await verifier.importPublicKey(bytes, P256)).toBeUndefined();
              const ok = await verifier.verify(key, { ...ES256_RAW, encoding }, signature, bytes);
              return !ok;
            },
          ),
          { numRuns: 1000 },
        );
      });
    });

    describe('properties', () => {
      it('a signature verifies for its message and fails for any one-bit change of message or signature (P-256)', async () => {
        const { spki, privateKey } = await keyPair('P-256');
        const key = await importKey(spki, 'P-256');
        await fc.assert(
          fc.asyncProperty(
            fc.uint8Array({ minLength: 1, maxLength: 700 }),
            fc.nat(),
            async (message, bit) => {
              const signature = new Uint8Array(
                await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, message),
              );
              const der = ecdsaP1363ToDer(signature);
              return (
                (await verifier.verify(key, ES256_RAW, signature, message)) &&
                (await verifier.verify(key, ES256_DER, der, message)) &&
                !(await verifier.verify(key, ES256_RAW, flipBit(signature, bit % 512), message)) &&
                !(await verifier.verify(
                  key,
                  ES256_RAW,
                  signature,
                  flipBit(message, bit % (message.length * 8)),
                ))
              );
            },
          ),
          { numRuns: 1000 },
        );
      });

      it('a P-384 SHA-384 signature verifies, raw and DER, and fails for any one-bit change of message or signature', async () => {
        // A P-384 signature costs a millisecond: a few fresh signatures, each against many changes.
        const { spki, privateKey } = await keyPair('P-384');
        const key = await importKey(spki, 'P-384');
        for (const length of [1, 100, 672]) {
          const message = crypto.getRandomValues(new Uint8Array(length));
          const signature = new Uint8Array(
            await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, privateKey, message),
          );
          expect(await verifier.verify(key, ES384_RAW, signature, message)).toBe(true);
          expect(
            await verifier.verify(
              key,
              { ...ES384_RAW, encoding: 'der' },
              ecdsaP1363ToDer(signature),
              message,
            ),
          ).toBe(true);
          await fc.assert(
            fc.asyncProperty(fc.nat(), async (bit) => {
              const inSignature = await verifier.verify(
                key,
                ES384_RAW,
                flipBit(signature, bit % 768),
                message,
              );
              const inMessage = await verifier.verify(
                key,
                ES384_RAW,
                signature,
                flipBit(message, bit % (8 * length)),
              );
              return !inSignature && !inMessage;
            }),
            { numRuns: 350 },
          );
        }
      });

      if (reference !== undefined) {
        it(`agrees with ${reference.name} on every mangled DER signature (no malleable encoding accepted by one only)`, async () => {
          const { spki, privateKey } = await keyPair('P-256');
          const [mine, theirs] = [
            await importKey(spki, 'P-256'),
            await reference.importPublicKey(spki, P256),
          ];
          const message = new Uint8Array(100).fill(7);
          const raw = new Uint8Array(
            await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, message),
          );
          const der = ecdsaP1363ToDer(raw);
          const mangled = fc.oneof(
            fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }).map(({ at, value }) => {
              const out = Uint8Array.from(der);
              out[at % out.length] = value;
              return out;
            }),
            fc.nat({ max: der.length }).map((cut) => der.subarray(0, cut)),
            fc.uint8Array({ minLength: 1, maxLength: 4 }).map((extra) => Uint8Array.of(...der, ...extra)),
            // A non-minimal INTEGER: r with an extra leading zero (lengths adjusted).
            fc.constant(Uint8Array.of(0x30, der[1]! + 1, 0x02, der[3]! + 1, 0, ...der.subarray(4))),
          );
          await fc.assert(
            fc.asyncProperty(mangled, async (signature) => {
              const a = await verifier.verify(mine, ES256_DER, signature, message);
              const b = await reference.verify(theirs!, ES256_DER, signature, message);
              return a === b;
            }),
            { numRuns: 1000 },
          );
        });
      }
    });
  });
}

// Each implementation runs the suite with the other as its reference, so they are held to the same
// verdicts on malformed input as well as on real signatures.
runSignatureVerifierConformance(webCryptoSignatureVerifier, nodeSignatureVerifier);
runSignatureVerifierConformance(nodeSignatureVerifier, webCryptoSignatureVerifier);

describe('ecdsaDerToP1363', () => {
  it('inverts the canonical DER encoding for any r and s, and refuses non-minimal integers and trailing bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (raw) => {
        const der = ecdsaP1363ToDer(raw);
        const back = ecdsaDerToP1363(der, 32);
        const withLeadingZero = Uint8Array.of(0x30, der[1]! + 1, 0x02, der[3]! + 1, 0, ...der.subarray(4));
        return (
          back !== undefined &&
          back.every((b, i) => b === raw[i]) &&
          ecdsaDerToP1363(Uint8Array.of(...der, 0), 32) === undefined &&
          ecdsaDerToP1363(withLeadingZero, 32) === undefined
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses negative, mis-sized, indefinite-length and oversized integers', () => {
    expect(ecdsaDerToP1363(hexToBytes('3006020101020101'), 32)?.length).toBe(64);
    expect(ecdsaDerToP1363(hexToBytes('3006020181020101'), 32)).toBeUndefined(); // r negative
    expect(ecdsaDerToP1363(hexToBytes('30070201010202000101'), 32)).toBeUndefined(); // s non-minimal
    expect(ecdsaDerToP1363(hexToBytes('3080020101020101'), 32)).toBeUndefined(); // BER indefinite length
    expect(ecdsaDerToP1363(hexToBytes(`3026022101${'00'.repeat(32)}020101`), 32)).toBeUndefined(); // r too long
    expect(ecdsaDerToP1363(hexToBytes('3003020101'), 32)).toBeUndefined(); // s missing
    expect(ecdsaDerToP1363(new Uint8Array(0), 32)).toBeUndefined();
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const out = ecdsaDerToP1363(bytes, 48);
        return out === undefined || out.length === 96;
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('signedParts', () => {
  const [vcek] = parseCertificates(readTestdata('attestation/snp/gsg-milan-v2/vcek.der'));
  const der = new Uint8Array(vcek!.rawData);

  it('cuts a certificate into its exact TBS bytes, algorithm and signature', () => {
    const parts = signedParts(der)!;
    expect(parts.signature).toEqual(new Uint8Array(vcek!.signature));
    expect(parts.algorithm).toEqual(parts.tbsAlgorithm);
    // The TBS is the first element of the outer SEQUENCE (4-byte header: 30 82 hi lo).
    expect(parts.tbs[0]).toBe(0x30);
    expect(parts.tbs.byteOffset - der.byteOffset).toBe(4);
  });

  it('refuses truncated or extended input and never throws', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: der.length - 1 }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        (cut, extra) => {
          return (
            signedParts(der.subarray(0, cut)) === undefined &&
            signedParts(Uint8Array.of(...der, ...extra)) === undefined
          );
        },
      ),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        signedParts(bytes);
        return true;
      }),
      { numRuns: 10_000 },
    );
  });
});
