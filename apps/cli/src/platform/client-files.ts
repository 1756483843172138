import { TresorError } from '@tresor/protocol';
import { writeFileAtomic } from '@tresor/keystore';
import { fetchDocument } from '../commands/trust-client.js';
import type { StateLayout } from './layout.js';
import { LOCAL_JURISDICTION, LOCAL_TRUST_ISSUER } from './trust-setup.js';

/**
 * What a client of the local platform needs: `local.json` (exactly the six facts of the issue) and
 * two trust policies (docs/client.md): the local one, which accepts the sample TEE of this
 * installation only, and a production example that refuses it — `tresor verify` fails under it.
 */

export interface LocalFacts {
  readonly gatewayUrl: string;
  readonly trustUrl: string;
  readonly apiKey: string;
  readonly caCertFile: string;
  readonly policyFile: string;
  readonly model: string;
  /** The web console at the gateway, with the trust policy in the link's fragment (when built). */
  readonly consoleUrl?: string;
}

export async function writeLocalJson(layout: StateLayout, facts: LocalFacts): Promise<void> {
  // The API key is a credential: the file is 0600 like every secret of the state directory.
  const ordered: LocalFacts = {
    gatewayUrl: facts.gatewayUrl,
    trustUrl: facts.trustUrl,
    apiKey: facts.apiKey,
    caCertFile: facts.caCertFile,
    policyFile: facts.policyFile,
    model: facts.model,
    ...(facts.consoleUrl === undefined ? {} : { consoleUrl: facts.consoleUrl }),
  };
  await writeFileAtomic(layout.localJson, `${JSON.stringify(ordered, null, 2)}\n`);
}

export interface PublicEcJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
  readonly kid?: string;
}

/** The trust service's document-signing key, read from its JWKS over TLS with the local CA. */
export async function fetchDocumentKey(trustUrl: string, ca: string): Promise<PublicEcJwk> {
  const text = await fetchDocument({ url: new URL(trustUrl), ca }, 'document-keys');
  try {
    const jwks = JSON.parse(text) as { keys?: unknown };
    const key = Array.isArray(jwks.keys) ? (jwks.keys[0] as Record<string, unknown> | undefined) : undefined;
    if (
      key?.kty === 'EC' &&
      key.crv === 'P-256' &&
      typeof key.x === 'string' &&
      typeof key.y === 'string' &&
      !('d' in key)
    ) {
      return {
        kty: 'EC',
        crv: 'P-256',
        x: key.x,
        y: key.y,
        ...(typeof key.kid === 'string' ? { kid: key.kid } : {}),
      };
    }
  } catch {
    // Refused below.
  }
  throw new TresorError('TRUST_SERVICE_UNREACHABLE', 'the trust service published no ES256 document key');
}

/** The local policy: pinned document key, signed reference values, CH, this installation's sample TEE. */
export function localPolicy(documentKey: PublicEcJwk, sampleVerifyKeyHex: string): Record<string, unknown> {
  return {
    version: 1,
    trustServiceKeys: [{ jwk: documentKey }],
    trustIssuer: LOCAL_TRUST_ISSUER,
    trustSignedReferenceValues: true,
    jurisdictions: [LOCAL_JURISDICTION],
    allowSampleTee: true,
    sampleVerifyKeys: [sampleVerifyKeyHex],
    maxEvidenceAgeSeconds: 300,
    requireGpu: false,
    requireReceipts: true,
  };
}

/**
 * A production policy, as a template: real TEEs only (the sample TEE is refused), attested GPUs,
 * CH only. Pin your trust service's key and your releases before using it for real.
 */
export function productionPolicyExample(documentKey: PublicEcJwk): Record<string, unknown> {
  return {
    version: 1,
    trustServiceKeys: [{ jwk: documentKey }],
    trustIssuer: LOCAL_TRUST_ISSUER,
    trustSignedReferenceValues: true,
    jurisdictions: [LOCAL_JURISDICTION],
    allowSampleTee: false,
    maxEvidenceAgeSeconds: 300,
    requireGpu: true,
    requireReceipts: true,
  };
}

export async function writeClientPolicies(
  layout: StateLayout,
  documentKey: PublicEcJwk,
  sampleVerifyKeyHex: string,
): Promise<void> {
  await writeFileAtomic(
    layout.policyFile,
    `${JSON.stringify(localPolicy(documentKey, sampleVerifyKeyHex), null, 2)}\n`,
    0o644,
  );
  await writeFileAtomic(
    layout.productionPolicyFile,
    `${JSON.stringify(productionPolicyExample(documentKey), null, 2)}\n`,
    0o644,
  );
}
