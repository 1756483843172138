import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import {
  createSampleEvidence,
  defaultAppraisalPolicy,
  loadAppraisalPolicy,
  parseAppraisalPolicy,
  SampleSigningKey,
} from '@tresor/attestation';
import { utf8Encode } from '@tresor/crypto';
import {
  AdminKeySet,
  AttestationTokenService,
  encryptForTee,
  ephemeralDocumentSigner,
  expectedReportData,
  generateAdminKey,
  generateTokenSigner,
  meshSpiffeId,
  parseHardwareEntries,
  parseInitDataToml,
  parseKbsAttestation,
  parseKbsRequest,
  parseMeshSpiffeId,
  parseReferenceValueSet,
  parseResourcePath,
  parseTeePublicKey,
  parseTrustConfig,
  primaryRuntimeData,
  signAdminRequest,
  signDocument,
  verifyAdminRequest,
  verifySignedDocument,
} from '@tresor/trust';
import { ReplayGuard } from '../../../services/trust/src/admin/replay-guard.js';
import { decryptFromKbs } from '../../../services/trust/src/kbs/jwe-decrypt.js';
import { parseCertificationRequest } from '../../../services/trust/src/mesh-ca/certification-request.js';
import { readTestdataJson } from '../../support/testdata.js';
import { target, type FuzzTarget } from './harness.js';
import { mutatedBytes, mutatedJson, mutatedText } from './mutate.js';

/**
 * The trust service's decoders of untrusted input: JWE resource answers (client side), EAR tokens,
 * signed trust documents and admin requests (JWS), KBS protocol messages and TEE public keys, the
 * initdata TOML, and the files operators hand it (trust configuration, appraisal policy, reference
 * values, residency inventory). Seeds are real messages made here with fresh keys, plus the
 * testdata's KBS examples and EAR tokens.
 */

const NOW = new Date('2026-06-01T00:00:00Z');
const json = (value: unknown): string => JSON.stringify(value);

// ── JWE: what the KBS answers, opened by the attester ──────────────────────────────────────────
const attester = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
  'deriveBits',
]);
const attesterJwk = await crypto.subtle.exportKey('jwk', attester.publicKey);
const TEE_KEY = {
  kty: 'EC',
  crv: 'P-256',
  alg: 'ECDH-ES+A256KW',
  x: attesterJwk.x!,
  y: attesterJwk.y!,
};
const JWE = json(encryptForTee(parseTeePublicKey(TEE_KEY), utf8Encode('the model key, 32 bytes long....')));

// ── JWS: EAR tokens, signed documents, admin requests ──────────────────────────────────────────
const tokens = new AttestationTokenService({
  signers: [await generateTokenSigner('ES256', 'fuzz-es256')],
  issuer: 'tresor-trust',
  lifetimeSeconds: 300,
  now: () => NOW,
});
const TOKEN = (
  await tokens.issue({
    eat_profile: 'tag:github.com,2023:veraison/ear',
    submods: { cpu0: { 'ear.status': 'affirming' } },
  })
).token;
const EAR_TOKENS = (
  readTestdataJson('protocol/ear/ear-tokens.json') as { tokens: { jwt: string }[] }
).tokens.map((t) => t.jwt);

const documentSigner = await ephemeralDocumentSigner('fuzz-documents');
const DOCUMENT_KEYS = { keys: [{ ...documentSigner.publicJwk }] };
const DOCUMENT = await signDocument(documentSigner, 'reference-values', {
  iss: 'tresor-trust',
  iat: NOW.getTime() / 1000,
  version: 3,
  referenceValues: [{ component: 'serving', release: '1.0.0', tee: 'sample', measurements: {} }],
});

const admin = await generateAdminKey('alice');
const ADMIN_KEYS = await AdminKeySet.parse([{ id: admin.id, jwk: admin.publicJwk }]);
const ADMIN_PATH = '/admin/v0/reference-values/put';
const ADMIN_REQUEST = await signAdminRequest(admin, {
  audience: 'tresor-trust',
  path: ADMIN_PATH,
  request: { component: 'serving', release: '1.0.0' },
  now: NOW,
});

// ── KBS messages ────────────────────────────────────────────────────────────────────────────────
const examples = (name: string): unknown => readTestdataJson(`protocol/kbs/examples/${name}`);
const KBS_REQUESTS = [
  json({ version: '0.4.0', tee: 'sample', 'extra-params': '' }),
  json(examples('01-request.json')),
];
const sampleKey = SampleSigningKey.generate(() => new Uint8Array(32).fill(11));
const NONCE = 'q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=';
const SAMPLE_EVIDENCE = createSampleEvidence({
  reportData: await expectedReportData(primaryRuntimeData(parseTeePublicKey(TEE_KEY).jwk, NONCE, '')),
  svn: 1,
  signingKey: sampleKey,
});
const KBS_ATTESTATIONS = [
  json({
    'runtime-data': { nonce: NONCE, 'tee-pubkey': TEE_KEY },
    'init-data': {
      format: 'toml',
      body: 'algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "acme"\n',
    },
    'tee-evidence': {
      primary_evidence: JSON.parse(new TextDecoder().decode(SAMPLE_EVIDENCE)) as unknown,
      additional_evidence: '',
    },
  }),
  json(examples('03-attestation.json')),
];

const INIT_DATA = [
  `algorithm = "sha384"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs]
[token_configs.kbs]
url = "https://trust.example:8443"
'''
"policy.rego" = """
package agent_policy
default AllowRequestsFailingPolicy := true
"""
tresor-tenant = "acme" # the tenant
'literal' = 'C:\\path'
`,
];

// ── Files operators hand us ─────────────────────────────────────────────────────────────────────
const TRUST_CONFIG = {
  mode: 'development',
  issuer: 'tresor-trust',
  server: {
    port: 8443,
    tls: {
      cert: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      key: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
    },
  },
  kbs: { sessionTtlSeconds: 300, maxSessions: 100, authBodyBytes: 4096, attestBodyBytes: 65536 },
  tokens: { lifetimeSeconds: 300 },
  attestation: { policy: { allowSampleTee: true, measurements: 'any', hardwareIds: 'any' } },
  resourcePolicy: 'permit(principal, action, resource);',
};
const POLICY = { ...defaultAppraisalPolicy(), id: 'fuzz' } as unknown;
const POLICY_FULL = {
  id: 'strict',
  allowSampleTee: false,
  allowDebug: false,
  measurements: { snp: { measurement: ['ab'.repeat(48)] }, tdx: { mrtd: ['cd'.repeat(48)] } },
  hardwareIds: ['00'.repeat(64)],
  requireReportDataBinding: true,
  requireGpuBinding: true,
  maxEvidenceAgeSeconds: 300,
  tcb: { requireStatus: true },
  vmpls: [0],
};
const REFERENCE_VALUE_SET = {
  component: 'serving',
  release: '1.0.0',
  tee: 'snp',
  measurements: { measurement: ['ab'.repeat(48)], host_data: ['00'.repeat(32)] },
  imageDigests: [`sha256:${'0'.repeat(64)}`],
  initDataHashes: ['11'.repeat(48)],
  modelDigests: ['22'.repeat(32)],
};
const HARDWARE = [
  { id: 'ab'.repeat(64), kind: 'snp-chip', jurisdiction: 'CH', site: 'zrh-1' },
  { id: '0011223344556677', kind: 'tdx-ppid', jurisdiction: 'DE', site: 'fra' },
];

const CSR_KEYS = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
  'sign',
  'verify',
]);
const CSR = (
  await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=ignored',
    keys: CSR_KEYS,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  })
).toString('pem');

export function joseTargets(): FuzzTarget<unknown>[] {
  const family = 'JWE and JWS' as const;
  return [
    target({
      family,
      name: 'decryptFromKbs (JWE JSON)',
      async: true,
      input: fc.oneof(
        mutatedText([JWE]).map((text) => {
          try {
            return JSON.parse(text) as unknown;
          } catch {
            return text;
          }
        }),
        mutatedJson([JSON.parse(JWE) as unknown]),
      ),
      run: (jwe) => decryptFromKbs(jwe, attester.privateKey),
      ciRuns: 14_000,
    }),
    target({
      family,
      name: 'AttestationTokenService.verify (EAR)',
      async: true,
      input: mutatedText([TOKEN, ...EAR_TOKENS]),
      run: (token) => tokens.verify(token),
      ciRuns: 32_000,
    }),
    target({
      family,
      name: 'verifySignedDocument',
      async: true,
      input: mutatedText([DOCUMENT]),
      run: (jws) =>
        verifySignedDocument(jws, { kind: 'reference-values', keys: DOCUMENT_KEYS, issuer: 'tresor-trust' }),
      ciRuns: 20_000,
    }),
    target({
      family,
      name: 'verifyAdminRequest',
      async: true,
      input: fc.oneof(mutatedText([ADMIN_REQUEST]), fc.jsonValue({ maxDepth: 2 })),
      run: (body) =>
        verifyAdminRequest(body, {
          keys: ADMIN_KEYS,
          audience: 'tresor-trust',
          path: ADMIN_PATH,
          now: NOW,
          notBefore: new Date(NOW.getTime() - 60_000),
          windowSeconds: 300,
          replay: new ReplayGuard(),
        }),
      ciRuns: 34_000,
    }),
  ];
}

export function kbsTargets(): FuzzTarget<unknown>[] {
  const family = 'KBS messages' as const;
  return [
    target({
      family,
      name: 'parseKbsRequest',
      input: mutatedBytes(KBS_REQUESTS.map(utf8Encode)),
      run: (b) => parseKbsRequest(b),
      ciRuns: 25_000,
    }),
    target({
      family,
      name: 'parseKbsAttestation',
      input: mutatedBytes(KBS_ATTESTATIONS.map(utf8Encode)),
      run: (b) => parseKbsAttestation(b),
      ciRuns: 15_000,
    }),
    target({
      family,
      name: 'parseTeePublicKey',
      // Typed Record<string, unknown>: its callers hand it objects only, so anything else is wrapped.
      input: mutatedJson([TEE_KEY, examples('03b-tee-pubkey-ec.json')]).map((v) =>
        v !== null && typeof v === 'object' ? v : { kty: v },
      ),
      run: (v) => parseTeePublicKey(v as Record<string, unknown>),
      ciRuns: 25_000,
    }),
    target({
      family,
      name: 'parseResourcePath',
      input: mutatedText(['default/key/model', 'tenant-a/model-key/llama-3.1-8b']),
      run: (s) => parseResourcePath(s),
      ciRuns: 20_000,
    }),
    target({
      family,
      name: 'parseMeshSpiffeId',
      input: mutatedText([
        meshSpiffeId({ trustDomain: 'tresor.local', component: 'serving', tenant: 'acme' }),
        meshSpiffeId({ trustDomain: 'tresor.local', component: 'gateway', tenant: null }),
      ]),
      run: (s) => parseMeshSpiffeId(s),
      ciRuns: 15_000,
    }),
    target({
      family,
      name: 'parseCertificationRequest (mesh CSR)',
      async: true,
      input: mutatedText([CSR]),
      run: (s) => parseCertificationRequest(s),
      ciRuns: 2_000,
    }),
  ];
}

export function configTargets(): FuzzTarget<unknown>[] {
  const family = 'policy and config files' as const;
  return [
    target({
      family,
      name: 'parseInitDataToml',
      input: mutatedText(INIT_DATA),
      run: (s) => parseInitDataToml(s),
      ciRuns: 30_000,
    }),
    target({
      family,
      name: 'parseTrustConfig',
      input: mutatedJson([TRUST_CONFIG]),
      run: (v) => parseTrustConfig(v),
      ciRuns: 15_000,
    }),
    target({
      family,
      name: 'parseAppraisalPolicy',
      input: mutatedJson([POLICY, POLICY_FULL]),
      run: (v) => parseAppraisalPolicy(v),
      ciRuns: 20_000,
    }),
    target({
      family,
      name: 'loadAppraisalPolicy (file bytes)',
      input: mutatedBytes([utf8Encode(json(POLICY_FULL))]),
      run: (b) => loadAppraisalPolicy(b),
      ciRuns: 15_000,
    }),
    target({
      family,
      name: 'parseReferenceValueSet',
      input: mutatedJson([REFERENCE_VALUE_SET]),
      run: (v) => parseReferenceValueSet(v),
      ciRuns: 15_000,
    }),
    target({
      family,
      name: 'parseHardwareEntries (inventory)',
      input: mutatedJson([HARDWARE]),
      run: (v) => parseHardwareEntries(v),
      ciRuns: 15_000,
    }),
  ];
}
