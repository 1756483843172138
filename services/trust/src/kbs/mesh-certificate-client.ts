import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { isErrorCode, TresorError, type ErrorCode } from '@tresor/protocol';
import { MESH_PREFIX } from '../mesh-ca/mesh-routes.js';
import type { KbsAttester } from './attester.js';
import type { KbsTransport, TransportResponse } from './client-transport.js';
import { KBS_PREFIX, KBS_PROTOCOL_VERSION, KBS_SESSION_COOKIE } from './protocol.js';
import { additionalDeviceNonce, expectedReportData, primaryRuntimeData } from './runtime-data.js';
import type { TeePublicKeyJwk } from './tee-public-key.js';

x509.cryptoProvider.set(globalThis.crypto);

/**
 * The workload side of the mesh CA (docs/trust.md, "Mesh CA"), shared by every attested workload
 * that needs a mesh certificate — serving for its listener, the gateway for its mTLS client
 * identity — so there is one implementation of the handshake.
 */

/** ECDSA P-256: the mesh CA certifies it, and its point doubles as the KBS `tee-pubkey`. */
export const MESH_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** What the mesh CA answers for an attested key. */
export interface MeshCertificate {
  readonly certificatePem: string;
  readonly caCertificatePem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function header(response: TransportResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string'
    ? value
    : Array.isArray(value)
      ? (value[0] as string | undefined)
      : undefined;
}

function refused(what: string, response: TransportResponse): TresorError {
  const named = header(response, 'tresor-error-code');
  const code: ErrorCode = named !== undefined && isErrorCode(named) ? named : 'KBS_RESPONSE_INVALID';
  return new TresorError(code, `the trust service refused ${what} (HTTP ${response.status})`, {
    details: { status: response.status },
  });
}

function jsonObject(response: TransportResponse, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(new TextDecoder().decode(response.body)) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw new TresorError('KBS_RESPONSE_INVALID', `the trust service's answer to ${what} is not a JSON object`);
}

/** A PKCS#10 request for a mesh key (the mesh CA ignores the subject and names the workload itself). */
export async function meshCertificationRequest(keys: CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=mesh-workload',
    keys,
    signingAlgorithm: MESH_KEY_ALGORITHM,
  });
  return csr.toString('pem');
}

/**
 * Obtains a mesh certificate for `keys` (ECDSA P-256): runs the KBS RCAR handshake with the key's
 * public point as `tee-pubkey` — so the attestation token names exactly that key — then sends a CSR
 * for it with the token as bearer proof. KbsClient cannot be used here: it attests a fresh ECDH key
 * of its own.
 *
 * @throws TresorError with the trust service's code (e.g. MEASUREMENT_NOT_ALLOWED) or KBS_RESPONSE_INVALID
 */
export async function requestMeshCertificate(options: {
  readonly transport: KbsTransport;
  readonly attester: KbsAttester;
  readonly tlsKeys: CryptoKeyPair;
  readonly component: string;
}): Promise<MeshCertificate> {
  const { transport, attester } = options;
  const auth = await transport.request(
    'POST',
    `${KBS_PREFIX}/auth`,
    { 'content-type': 'application/json' },
    json({
      version: KBS_PROTOCOL_VERSION,
      tee: attester.tee,
      'extra-params': { 'supported-hash-algorithms': ['sha384'] },
    }),
  );
  if (auth.status !== 200) throw refused('the KBS /auth request', auth);
  const cookie = (() => {
    const raw = auth.headers['set-cookie'];
    const cookies = typeof raw === 'string' ? [raw] : (raw ?? []);
    for (const entry of cookies) {
      const pair = entry.split(';')[0] ?? '';
      if (pair.startsWith(`${KBS_SESSION_COOKIE}=`)) return pair;
    }
    throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS answer to /auth sets no session cookie');
  })();
  const { nonce } = jsonObject(auth, '/auth');
  if (typeof nonce !== 'string')
    throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS challenge has no nonce');

  const exported = await crypto.subtle.exportKey('jwk', options.tlsKeys.publicKey);
  const teePubkey: TeePublicKeyJwk = {
    kty: 'EC',
    crv: 'P-256',
    alg: 'ECDH-ES+A256KW',
    x: exported.x ?? '',
    y: exported.y ?? '',
  };
  const additional =
    attester.additionalEvidence === undefined
      ? ''
      : await attester
          .additionalEvidence({ gpuNonce: additionalDeviceNonce(teePubkey, nonce) })
          .then((evidence) => (Object.keys(evidence).length === 0 ? '' : JSON.stringify(evidence)));
  const reportData = await expectedReportData(primaryRuntimeData(teePubkey, nonce, additional));
  const primary = await attester.primaryEvidence({ reportData, nonce });
  const attest = await transport.request(
    'POST',
    `${KBS_PREFIX}/attest`,
    { 'content-type': 'application/json', cookie },
    json({
      'runtime-data': { nonce, 'tee-pubkey': teePubkey },
      'tee-evidence': { primary_evidence: primary, additional_evidence: additional },
    }),
  );
  if (attest.status !== 200) throw refused('the attestation of the mesh key', attest);
  const { token } = jsonObject(attest, '/attest');
  if (typeof token !== 'string')
    throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS attest answer has no token');

  const issued = await transport.request(
    'POST',
    `${MESH_PREFIX}/certificates`,
    { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    json({ csr: await meshCertificationRequest(options.tlsKeys), component: options.component }),
  );
  if (issued.status !== 200) throw refused('the mesh certificate', issued);
  const { certificate, caCertificate, spiffeId, notAfter } = jsonObject(issued, 'the certificate request');
  if (
    typeof certificate !== 'string' ||
    typeof caCertificate !== 'string' ||
    typeof spiffeId !== 'string' ||
    typeof notAfter !== 'string'
  ) {
    throw new TresorError(
      'KBS_RESPONSE_INVALID',
      'the mesh CA answer lacks certificate, caCertificate, spiffeId or notAfter',
    );
  }
  return {
    certificatePem: certificate,
    caCertificatePem: caCertificate,
    spiffeId,
    notAfter: new Date(notAfter),
  };
}
