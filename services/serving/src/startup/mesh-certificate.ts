import { TresorError } from '@tresor/protocol';
import {
  additionalDeviceNonce,
  expectedReportData,
  KBS_PREFIX,
  KBS_PROTOCOL_VERSION,
  KBS_SESSION_COOKIE,
  MESH_PREFIX,
  primaryRuntimeData,
  type KbsAttester,
  type KbsTransport,
  type TeePublicKeyJwk,
} from '@tresor/trust';
import { certificationRequest } from './replica-keys.js';
import { jsonObject, refusalCode } from './trust-http.js';

/** What the mesh CA answers for an attested key. */
export interface MeshCertificate {
  readonly certificatePem: string;
  readonly caCertificatePem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function refused(what: string, status: number, code: TresorError['code'] | undefined): TresorError {
  return new TresorError(
    code ?? 'KBS_RESPONSE_INVALID',
    `the trust service refused ${what} (HTTP ${status})`,
    {
      details: { status },
    },
  );
}

/**
 * Obtains a mesh certificate for the replica's TLS key (docs/trust.md, "Mesh CA"): runs the KBS
 * RCAR handshake with the TLS key's public point as `tee-pubkey` — so the attestation token
 * names exactly that key — then sends a CSR for it with the token as bearer proof. KbsClient
 * cannot be used here: it attests a fresh ECDH key of its own.
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
  if (auth.status !== 200) throw refused('the KBS /auth request', auth.status, refusalCode(auth));
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
  if (attest.status !== 200)
    throw refused('the attestation of the TLS key', attest.status, refusalCode(attest));
  const { token } = jsonObject(attest, '/attest');
  if (typeof token !== 'string')
    throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS attest answer has no token');

  const issued = await transport.request(
    'POST',
    `${MESH_PREFIX}/certificates`,
    { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    json({ csr: await certificationRequest(options.tlsKeys), component: options.component }),
  );
  if (issued.status !== 200) {
    throw refused('the mesh certificate', issued.status, refusalCode(issued));
  }
  const body = jsonObject(issued, 'the certificate request');
  const { certificate, caCertificate, spiffeId, notAfter } = body;
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
