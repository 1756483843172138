import { relative } from 'node:path';
import { writeFileAtomic } from '@tresor/keystore';
import type { StateLayout } from './layout.js';
import type { ServerTlsFiles } from './local-ca.js';
import {
  KEYSTORE_PASSPHRASE_ENV,
  LOCAL_KEYSTORE_SCRYPT_LOG2N,
  type PlatformRecord,
  type PlatformSecrets,
} from './state.js';

/**
 * The trust service's configuration for the local platform: development mode (the only mode that
 * accepts the sample TEE), reference values and residency both enforced, the sample TEE's
 * installation key as the only sample evidence signer, and a resource policy releasing model keys
 * only to a released serving build on inventoried hardware.
 */

export const LOCAL_TRUST_ISSUER = 'tresor-local-trust';
/** The sample TEE's machine is listed in the residency inventory as standing in Switzerland. */
export const LOCAL_JURISDICTION = 'CH';
/** Model keys live at `kbs:///<MODEL_KEY_REPOSITORY>/model-key/<model id>`. */
export const MODEL_KEY_REPOSITORY = 'local';
export const MODEL_KEY_TYPE = 'model-key';

export function modelKeyPath(modelId: string): string {
  return `${MODEL_KEY_REPOSITORY}/${MODEL_KEY_TYPE}/${modelId}`;
}

/** Cedar (docs/trust.md "Resource policy"): default deny, one permit. */
export const LOCAL_RESOURCE_POLICY = `@id("local serving reads the local model keys")
permit (principal, action == Tresor::Action::"read", resource)
when {
  !principal.debug &&
  principal has component && principal.component == "serving" &&
  principal has residency && principal.residency == "${LOCAL_JURISDICTION}" &&
  resource.repository == "${MODEL_KEY_REPOSITORY}" && resource.type == "${MODEL_KEY_TYPE}"
};
`;

export interface TrustSetupInput {
  readonly layout: StateLayout;
  readonly record: PlatformRecord;
  readonly secrets: PlatformSecrets;
  readonly host: string;
  readonly port: number;
  readonly tls: ServerTlsFiles;
}

/** Writes trust/trust.json and trust/deployment.json (every start: ports may change). */
export async function writeTrustConfig(input: TrustSetupInput): Promise<void> {
  const { layout, record, secrets } = input;
  const rel = (path: string): string => relative(layout.trustDir, path);
  const service = {
    mode: 'development',
    issuer: LOCAL_TRUST_ISSUER,
    server: {
      host: input.host,
      port: input.port,
      tls: { certFile: rel(input.tls.certFile), keyFile: rel(input.tls.keyFile) },
      logLevel: 'info',
    },
    attestation: {
      policy: { id: 'tresor-local', allowSampleTee: true },
      sampleVerifyKey: secrets.sampleKey.verifyKey.hex,
    },
    resourcePolicy: LOCAL_RESOURCE_POLICY,
  };
  const deployment = {
    service: 'trust.json',
    keystore: {
      backend: 'file',
      path: rel(layout.keystore),
      passphraseEnv: KEYSTORE_PASSPHRASE_ENV,
      scryptLog2N: LOCAL_KEYSTORE_SCRYPT_LOG2N,
    },
    stateDir: rel(layout.trustState),
    keys: {
      tokenSigning: [record.trustKeys.tokenSigning],
      documentSigning: record.trustKeys.documentSigning,
      meshCa: record.trustKeys.meshCa,
      auditCheckpoint: record.trustKeys.auditCheckpoint,
      resourceKek: record.trustKeys.resourceKek,
    },
    admin: { keys: [{ id: secrets.adminKey.id, jwk: secrets.adminKey.publicJwk }] },
    residency: { jurisdiction: LOCAL_JURISDICTION },
    enforce: { referenceValues: true, residency: true },
  };
  await writeFileAtomic(layout.trustConfig, `${JSON.stringify(service, null, 2)}\n`);
  await writeFileAtomic(layout.trustDeployment, `${JSON.stringify(deployment, null, 2)}\n`);
}
