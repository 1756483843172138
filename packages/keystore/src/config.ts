import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { FileKeyStore, type DeploymentMode } from './file/file-key-store.js';
import type { KeyStore } from './key-store.js';
import { KyokKeyStore } from './kyok/kyok-key-store.js';
import { Pkcs11KeyStore } from './pkcs11/pkcs11-key-store.js';
import { SecretKeyBytes } from './secret-key-bytes.js';

/**
 * Which keystore to open, as written in a JSON config file. Secrets (passphrase, PIN) are never in
 * the file: it names the environment variable that holds them. Relative paths are relative to the
 * config file's directory.
 *
 *   { "backend": "file",   "path": "keys.json", "passphraseEnv": "TRESOR_KEYSTORE_PASSPHRASE" }
 *   { "backend": "pkcs11", "module": "/usr/lib/softhsm/libsofthsm2.so", "tokenLabel": "tresor", "pinEnv": "TRESOR_PKCS11_PIN" }
 *   { "backend": "kyok",   "url": "https://kms.customer.example:8443", "tenant": "acme",
 *     "clientCert": "client.pem", "clientKey": "client.key", "serverCa": "server-ca.pem" }
 */
export type KeyStoreConfig =
  | {
      readonly backend: 'file';
      readonly path: string;
      readonly passphraseEnv: string;
      readonly scryptLog2N?: number;
    }
  | {
      readonly backend: 'pkcs11';
      readonly module: string;
      readonly slot?: number;
      readonly tokenLabel?: string;
      readonly pinEnv: string;
    }
  | {
      readonly backend: 'kyok';
      readonly url: string;
      readonly tenant: string;
      readonly clientCert: string;
      readonly clientKey: string;
      readonly serverCa: string;
    };

export function parseKeyStoreConfig(json: unknown, baseDir: string): KeyStoreConfig {
  const o = configObject(json, 'keystore');
  const path = (name: string): string => {
    const value = str(o, name, 'keystore');
    return isAbsolute(value) ? value : resolve(baseDir, value);
  };
  switch (o.backend) {
    case 'file': {
      const log2N = o.scryptLog2N;
      if (log2N !== undefined && typeof log2N !== 'number')
        throw invalid('keystore.scryptLog2N must be a number');
      return {
        backend: 'file',
        path: path('path'),
        passphraseEnv: envName(o, 'passphraseEnv'),
        ...(log2N === undefined ? {} : { scryptLog2N: log2N }),
      };
    }
    case 'pkcs11': {
      const slot = o.slot;
      const tokenLabel = o.tokenLabel;
      if (slot !== undefined && (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0)) {
        throw invalid('keystore.slot must be a slot id (a non-negative integer)');
      }
      if (tokenLabel !== undefined && typeof tokenLabel !== 'string')
        throw invalid('keystore.tokenLabel must be a string');
      if ((slot === undefined) === (tokenLabel === undefined))
        throw invalid('keystore: give exactly one of slot and tokenLabel');
      return {
        backend: 'pkcs11',
        module: path('module'),
        ...(slot === undefined ? {} : { slot }),
        ...(tokenLabel === undefined ? {} : { tokenLabel }),
        pinEnv: envName(o, 'pinEnv'),
      };
    }
    case 'kyok':
      return {
        backend: 'kyok',
        url: str(o, 'url', 'keystore'),
        tenant: str(o, 'tenant', 'keystore'),
        clientCert: path('clientCert'),
        clientKey: path('clientKey'),
        serverCa: path('serverCa'),
      };
    default:
      throw invalid('keystore.backend must be "file", "pkcs11" or "kyok"');
  }
}

export interface OpenKeyStoreContext {
  /** Where the passphrase / PIN variables are read from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly mode: DeploymentMode;
  /** File backend: create the file if it does not exist yet. */
  readonly createIfMissing?: boolean;
  /** KYOK backend: the workload's attestation token, for wrap / unwrap / sign. */
  readonly attestationToken?: () => Promise<string>;
}

export async function openKeyStore(config: KeyStoreConfig, context: OpenKeyStoreContext): Promise<KeyStore> {
  switch (config.backend) {
    case 'file':
      return FileKeyStore.open({
        path: config.path,
        passphrase: secretFromEnv(context.env, config.passphraseEnv),
        mode: context.mode,
        createIfMissing: context.createIfMissing ?? false,
        ...(config.scryptLog2N === undefined ? {} : { scryptLog2N: config.scryptLog2N }),
      });
    case 'pkcs11':
      return Pkcs11KeyStore.open({
        module: config.module,
        ...(config.slot === undefined ? {} : { slot: config.slot }),
        ...(config.tokenLabel === undefined ? {} : { tokenLabel: config.tokenLabel }),
        pin: secretFromEnv(context.env, config.pinEnv),
      });
    case 'kyok':
      return new KyokKeyStore({
        url: config.url,
        tenant: config.tenant,
        tls: {
          cert: await readText(config.clientCert),
          key: await readText(config.clientKey),
          ca: await readText(config.serverCa),
        },
        ...(context.attestationToken === undefined ? {} : { attestationToken: context.attestationToken }),
      });
  }
}

/** Reads and parses a keystore config file. */
export async function loadKeyStoreConfig(file: string): Promise<KeyStoreConfig> {
  return parseKeyStoreConfig(await readJsonFile(file), resolve(file, '..'));
}

export async function readJsonFile(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `${file} is not JSON`, { cause });
  }
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${file}`, { cause });
  }
}

export function secretFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): SecretKeyBytes {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new TresorError(
      'CONFIG_INVALID',
      `the environment variable ${name} (named by the keystore config) is not set`,
    );
  }
  return SecretKeyBytes.copyOf(Buffer.from(value, 'utf8'));
}

export function configObject(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid(`${what} must be a JSON object`);
  return json as Record<string, unknown>;
}

export function str(o: Record<string, unknown>, name: string, what: string): string {
  const value = o[name];
  if (typeof value !== 'string' || value === '') throw invalid(`${what}.${name} must be a non-empty string`);
  return value;
}

function envName(o: Record<string, unknown>, name: string): string {
  const value = str(o, name, 'keystore');
  if (!/^[A-Z_][A-Z0-9_]*$/.test(value)) throw invalid(`keystore.${name} must name an environment variable`);
  return value;
}

function invalid(message: string): TresorError {
  return new TresorError('CONFIG_INVALID', message);
}
