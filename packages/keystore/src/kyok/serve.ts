import { mkdir } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import { TresorError } from '@tresor/protocol';
import { openKeyStore, readJsonFile, readText } from '../config.js';
import type { KeyStore } from '../key-store.js';
import { attestationTokenVerifier } from './attestation-token.js';
import { DecisionLog } from './decision-log.js';
import { KeyOwners } from './key-owners.js';
import { parseKeyReleasePolicy } from './release-policy.js';
import { RevocationList } from './revocations.js';
import { startKyokServer, type RunningKyokServer } from './server.js';
import type { KyokServerConfig } from './server-config.js';

export interface KyokServeContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly now?: () => Date;
}

export interface ServingKyok {
  readonly server: RunningKyokServer;
  readonly keyStore: KeyStore;
  readonly decisionLog: string;
  close(): Promise<void>;
}

/** Opens everything the configuration names and starts the key server. */
export async function serveKyok(config: KyokServerConfig, context: KyokServeContext): Promise<ServingKyok> {
  const now = context.now ?? (() => new Date());
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const policy = parseKeyReleasePolicy(await readJsonFile(config.policy));
  const jwks =
    config.trustService.jwks instanceof URL
      ? config.trustService.jwks
      : parseJwks(await readJsonFile(config.trustService.jwks));
  const tls = {
    cert: await readText(config.tls.cert),
    key: await readText(config.tls.key),
    clientCa: await readText(config.tls.clientCa),
  };
  const keyStore = await openKeyStore(config.keystore, {
    env: context.env,
    mode: config.mode,
    createIfMissing: true,
  });
  try {
    const decisions = new DecisionLog(config.stateDir);
    const server = await startKyokServer({
      host: config.listen.host,
      port: config.listen.port,
      tls,
      services: {
        keyStore,
        owners: await KeyOwners.load(config.stateDir),
        revocations: new RevocationList(config.stateDir, now),
        policy,
        verifyToken: attestationTokenVerifier({
          jwks,
          issuer: config.trustService.issuer,
          maxAgeSeconds: config.trustService.maxTokenAgeSeconds,
          now,
        }),
        decisions,
        admins: new Set(config.admins),
        now,
      },
    });
    return {
      server,
      keyStore,
      decisionLog: decisions.path,
      close: async () => {
        await server.close();
        await keyStore.close();
      },
    };
  } catch (err) {
    await keyStore.close();
    throw err;
  }
}

function parseJwks(json: unknown): JSONWebKeySet {
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new TresorError(
      'CONFIG_INVALID',
      'the trust service JWKS must be {"keys": [...]} with at least one key',
    );
  }
  return { keys: keys as JSONWebKeySet['keys'] };
}
