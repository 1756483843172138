import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { writeFileAtomic } from '@tresor/keystore';
import type { StateLayout } from './layout.js';
import { localSpiffeId, type LocalTls } from './local-ca.js';
import { modelKeyUri, sealedModelFile } from './model-setup.js';
import {
  KEYSTORE_PASSPHRASE_ENV,
  LOCAL_KEYSTORE_SCRYPT_LOG2N,
  type PlatformRecord,
  type PlatformSecrets,
} from './state.js';

/**
 * The serving and gateway configurations of the local platform (docs/serving.md, docs/gateway.md),
 * written at every start (ports and measurements may change). Both run in `local` mode with the
 * sample TEE; in local mode the mesh identities (serving's listener, the gateway's client
 * certificate) come from the local CA instead of the trust service's mesh CA — the gateway still
 * verifies that serving's attested TLS key is the one it talks to.
 */

export const LOCAL_GATEWAY_AUDIENCE = 'tresor-local-gateway';
/** The gateway keystore is a separate file with its own passphrase, under the same variable name. */
export const GATEWAY_KEYSTORE_PASSPHRASE_ENV = KEYSTORE_PASSPHRASE_ENV;
/** One engine thread per core of a small machine; the demo model is tiny. */
const LLAMA_THREADS = 2;

export interface ServiceConfigInput {
  readonly layout: StateLayout;
  readonly record: PlatformRecord;
  readonly secrets: PlatformSecrets;
  readonly tls: LocalTls;
  readonly host: string;
  readonly ports: { readonly trust: number; readonly serving: number; readonly gateway: number };
  readonly urls: { readonly trust: string; readonly serving: string };
  readonly modelId: string;
  readonly measurements: { readonly serving: string; readonly gateway: string };
  /** Where serving decrypts models before the engine loads them (see {@link servingWorkDir}). */
  readonly servingWorkDir: string;
  /** The web console build the gateway serves at /console/, when there is one. */
  readonly consoleDir?: string;
}

/**
 * Serving's private work directory for decrypted models: under the system temp dir (a tmpfs on
 * many systems), named after the state directory so that `tresor up` can wipe it after serving
 * stopped — even when serving was killed before it could wipe it itself.
 */
export function servingWorkDir(stateRoot: string): string {
  return join(
    tmpdir(),
    `tresor-serving-work-${createHash('sha256').update(stateRoot).digest('hex').slice(0, 16)}`,
  );
}

function tlsFiles(input: ServiceConfigInput, name: string): { certFile: string; keyFile: string } {
  const files = input.tls.servers[name];
  if (files === undefined) throw new Error(`no local certificate for ${name}`);
  return files;
}

export function servingConfig(input: ServiceConfigInput): Record<string, unknown> {
  const { layout } = input;
  const rel = (path: string): string => relative(layout.servingDir, path);
  const tls = tlsFiles(input, 'serving');
  return {
    mode: 'local',
    replicaId: 'serving-local',
    listen: { host: input.host, port: input.ports.serving },
    tls: { source: 'files', certFile: rel(tls.certFile), keyFile: rel(tls.keyFile) },
    mtls: {
      required: true,
      clientCaFile: rel(input.tls.caCertFile),
      allowedPeers: [localSpiffeId('gateway')],
    },
    trust: { url: input.urls.trust, caFile: rel(input.tls.caCertFile) },
    tee: {
      source: 'sample',
      signingKeyFile: rel(layout.sampleTeeKey),
      measurement: input.measurements.serving,
    },
    models: [
      {
        id: input.modelId,
        file: rel(sealedModelFile(layout.modelsDir, input.modelId)),
        key: modelKeyUri(input.modelId),
      },
    ],
    engine: { kind: 'llama', threads: LLAMA_THREADS },
    workDir: input.servingWorkDir,
    logLevel: 'info',
  };
}

export function gatewayConfig(input: ServiceConfigInput): Record<string, unknown> {
  const { layout, record, secrets } = input;
  const rel = (path: string): string => relative(layout.gatewayDir, path);
  const tls = tlsFiles(input, 'gateway');
  return {
    mode: 'local',
    server: {
      host: input.host,
      port: input.ports.gateway,
      tls: { certFile: rel(tls.certFile), keyFile: rel(tls.keyFile) },
      logLevel: 'info',
    },
    stateDir: rel(layout.gatewayState),
    keystore: {
      backend: 'file',
      path: rel(layout.gatewayKeystore),
      passphraseEnv: GATEWAY_KEYSTORE_PASSPHRASE_ENV,
      scryptLog2N: LOCAL_KEYSTORE_SCRYPT_LOG2N,
    },
    keys: { auditCheckpoint: record.gatewayKeys.auditCheckpoint, tenantKek: record.gatewayKeys.tenantKek },
    trust: { url: input.urls.trust, caFile: rel(input.tls.caCertFile) },
    serving: {
      replicas: [{ url: input.urls.serving }],
      meshCaFile: rel(input.tls.caCertFile),
      mesh: { certFile: rel(tls.certFile), keyFile: rel(tls.keyFile) },
      sampleVerifyKeyFile: rel(layout.sampleTeePublicKey),
      // Serving starts alongside the gateway: retry its attestation soon rather than in 30 s.
      reverifyIntervalSeconds: 5,
    },
    tee: {
      kind: 'sample',
      signingKeyFile: rel(layout.sampleTeeKey),
      measurement: input.measurements.gateway,
    },
    admin: {
      keys: [{ id: secrets.adminKey.id, jwk: secrets.adminKey.publicJwk }],
      audience: LOCAL_GATEWAY_AUDIENCE,
    },
    ...(input.consoleDir === undefined ? {} : { console: { dir: input.consoleDir } }),
  };
}

export async function writeServiceConfigs(input: ServiceConfigInput): Promise<void> {
  const { layout, secrets } = input;
  await writeFileAtomic(layout.sampleTeePublicKey, `${secrets.sampleKey.verifyKey.hex}\n`, 0o644);
  await writeFileAtomic(layout.servingConfig, `${JSON.stringify(servingConfig(input), null, 2)}\n`);
  await writeFileAtomic(layout.gatewayConfig, `${JSON.stringify(gatewayConfig(input), null, 2)}\n`);
}
