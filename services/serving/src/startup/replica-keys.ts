import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  bytesToBase64Url,
  createGatewayKey,
  encodeKeyConfig,
  gatewayKeysById,
  HpkeKeyPair,
  type OhttpGatewayKey,
  type OhttpGatewayKeys,
} from '@tresor/crypto';

x509.cryptoProvider.set(globalThis.crypto);

/** ECDSA P-256: the mesh CA certifies it, and its point doubles as the KBS `tee-pubkey`. */
export const TLS_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The Ed25519 public JWK that verifies response receipts (runtimeData.receiptKey). */
export interface ReceiptPublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
}

/**
 * The keys a replica generates at start-up and never writes anywhere: the HPKE key requests are
 * sealed to (published as one OHTTP key configuration), the TLS key (certified by the mesh CA), and
 * the Ed25519 key that signs response receipts. All three are bound into every evidence it gives.
 */
export interface ReplicaKeys {
  readonly ohttp: OhttpGatewayKey;
  readonly ohttpKeys: OhttpGatewayKeys;
  /** RFC 9458 §3 key configuration, base64url without padding (runtimeData.hpkeKeyConfig). */
  readonly hpkeKeyConfig: string;
  readonly tls: CryptoKeyPair;
  /** PKCS#8 PEM of the TLS private key, for Node's TLS stack only. */
  readonly tlsKeyPem: string;
  /** DER SubjectPublicKeyInfo of the TLS key. */
  readonly tlsSpki: Uint8Array;
  /** Lowercase hex SHA-256 of tlsSpki (runtimeData.tlsSpkiSha256). */
  readonly tlsSpkiSha256: string;
  readonly receiptSigningKey: CryptoKey;
  readonly receiptKey: ReceiptPublicJwk;
}

function pem(label: string, der: ArrayBuffer | Uint8Array): string {
  const body = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der))
    .toString('base64')
    .replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export async function generateReplicaKeys(): Promise<ReplicaKeys> {
  const hpke = await HpkeKeyPair.generate();
  // Key ids are a byte (RFC 9458 §3.1); a random one keeps a restarted replica's configs apart.
  const ohttp = createGatewayKey(randomBytes(1)[0] ?? 0, hpke);
  const tls = await crypto.subtle.generateKey(TLS_KEY_ALGORITHM, true, ['sign', 'verify']);
  const tlsSpki = new Uint8Array(await crypto.subtle.exportKey('spki', tls.publicKey));
  const tlsKeyPem = pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', tls.privateKey));
  const receipt = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const receiptJwk = await crypto.subtle.exportKey('jwk', receipt.publicKey);
  return {
    ohttp,
    ohttpKeys: gatewayKeysById([ohttp]),
    hpkeKeyConfig: bytesToBase64Url(encodeKeyConfig(ohttp.config)),
    tls,
    tlsKeyPem,
    tlsSpki,
    tlsSpkiSha256: createHash('sha256').update(tlsSpki).digest('hex'),
    receiptSigningKey: receipt.privateKey,
    receiptKey: { kty: 'OKP', crv: 'Ed25519', x: receiptJwk.x ?? '' },
  };
}

/**
 * A self-signed certificate for the TLS key, served until the mesh CA certifies the key: nobody
 * trusts it, so no peer talks to the replica before it attested, but /healthz and /readyz answer.
 */
export async function selfSignedCertificate(keys: CryptoKeyPair, name: string): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${name}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    signingAlgorithm: TLS_KEY_ALGORITHM,
    keys,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  return cert.toString('pem');
}
