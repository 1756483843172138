import { isAbsolute, resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { configObject, parseKeyStoreConfig, readJsonFile, str, type KeyStoreConfig } from '../config.js';
import type { DeploymentMode } from '../file/file-key-store.js';

/**
 * The reference key server's configuration file (`tresor kyok serve --config <file>`). Relative
 * paths are relative to the file. See docs/keys.md for a complete example.
 */
export interface KyokServerConfig {
  readonly mode: DeploymentMode;
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string };
  /** Revocations, key ownership and the decision log live here. */
  readonly stateDir: string;
  /** The customer's own keystore behind the server: pkcs11 (HSM) or, for development, file. */
  readonly keystore: KeyStoreConfig;
  readonly trustService: {
    /** JWKS file path, or an https URL. */
    readonly jwks: string | URL;
    readonly issuer: string;
    readonly maxTokenAgeSeconds: number;
  };
  /** SHA-256 fingerprints (hex, any case, colons allowed) of administrator client certificates. */
  readonly admins: readonly string[];
  /** The key release policy file (see release-policy.ts). */
  readonly policy: string;
}

export async function loadKyokServerConfig(file: string): Promise<KyokServerConfig> {
  return parseKyokServerConfig(await readJsonFile(file), resolve(file, '..'));
}

export function parseKyokServerConfig(json: unknown, baseDir: string): KyokServerConfig {
  const o = configObject(json, 'server config');
  const path = (value: string): string => (isAbsolute(value) ? value : resolve(baseDir, value));
  const mode = o.mode ?? 'production';
  if (mode !== 'production' && mode !== 'development')
    throw invalid('mode must be "production" or "development"');
  const listen = configObject(o.listen, 'listen');
  const port = listen.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw invalid('listen.port must be a port number');
  const tls = configObject(o.tls, 'tls');
  const keystore = parseKeyStoreConfig(o.keystore, baseDir);
  if (keystore.backend === 'kyok')
    throw invalid('the key server keeps keys itself: keystore.backend must be pkcs11 or file');
  const trust = configObject(o.trustService, 'trustService');
  const jwks = str(trust, 'jwks', 'trustService');
  let jwksSource: string | URL = path(jwks);
  if (/^[a-z]+:\/\//i.test(jwks)) {
    jwksSource = new URL(jwks);
    if (jwksSource.protocol !== 'https:') throw invalid('trustService.jwks must be a file or an https URL');
  }
  const maxAge = trust.maxTokenAgeSeconds ?? 300;
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 1 || maxAge > 86_400) {
    throw invalid('trustService.maxTokenAgeSeconds must be 1 to 86400');
  }
  const admins = o.admins ?? [];
  if (!Array.isArray(admins)) throw invalid('admins must be a list of certificate fingerprints');
  return {
    mode,
    listen: { host: str(listen, 'host', 'listen'), port },
    tls: {
      cert: path(str(tls, 'cert', 'tls')),
      key: path(str(tls, 'key', 'tls')),
      clientCa: path(str(tls, 'clientCa', 'tls')),
    },
    stateDir: path(str(o, 'stateDir', 'server config')),
    keystore,
    trustService: {
      jwks: jwksSource,
      issuer: str(trust, 'issuer', 'trustService'),
      maxTokenAgeSeconds: maxAge,
    },
    admins: admins.map(normaliseFingerprint),
    policy: path(str(o, 'policy', 'server config')),
  };
}

/** `AB:CD:…` or `abcd…` → 64 lowercase hex digits. */
export function normaliseFingerprint(value: unknown): string {
  const hex = typeof value === 'string' ? value.replaceAll(':', '').toLowerCase() : '';
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw invalid('an admin entry must be a SHA-256 certificate fingerprint (64 hex digits)');
  return hex;
}

function invalid(message: string): TresorError {
  return new TresorError('CONFIG_INVALID', `KYOK server config: ${message}`);
}
