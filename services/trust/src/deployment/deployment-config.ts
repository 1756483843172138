import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { isKeyId, parseKeyStoreConfig, type KeyId, type KeyStoreConfig } from '@tresor/keystore';
import { isPostgresUrl } from '@tresor/storage';
import { AdminKeySet, adminKeysSchema } from '../admin/admin-keys.js';
import { DEFAULT_ADMIN_WINDOW_SECONDS } from '../admin/admin-plugin.js';
import { loadTrustConfigFile, parseTrustConfig, type TrustConfig } from '../config.js';
import { JURISDICTION_PATTERN } from '../inventory/residency-inventory.js';
import {
  DEFAULT_CERTIFICATE_LIFETIME_SECONDS,
  MAX_CERTIFICATE_LIFETIME_SECONDS,
  MIN_CERTIFICATE_LIFETIME_SECONDS,
} from '../mesh-ca/mesh-ca.js';
import { DEFAULT_TRUST_DOMAIN, parseTrustDomain } from '../mesh-ca/spiffe-id.js';
import { schemaProblem } from '../signed-documents/schema-problem.js';

/**
 * What `tresor trust serve --config <file>` reads: the service settings (`service`: inline, or the
 * path of a trust configuration file, see docs/trust.md) and how this deployment is wired: which
 * keystore, which keys in it, where state lives, who the admins are. Secrets are never in it: the
 * keystore config names the environment variable that holds the passphrase or PIN.
 */
const keyId = z.string().refine(isKeyId, 'a keystore key id (see `tresor keys list`)');

function withoutPassword(url: string): boolean {
  try {
    return new URL(url).password === '';
  } catch {
    return false;
  }
}

export const deploymentConfigSchema = z.strictObject({
  /** The trust service settings (server, KBS, tokens, attestation policy), inline or as a file path. */
  service: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
  /** The keystore: `{"backend": "file" | "pkcs11" | "kyok", …}` (docs/keys.md). */
  keystore: z.record(z.string(), z.unknown()),
  /** Directory for the audit database, the published documents and the sealed resources. */
  stateDir: z.string().min(1),
  /**
   * The metadata database (audit log, used admin request ids) on a PostgreSQL server shared by
   * replicas, instead of `tresor.db` in the state directory. The URL carries no password: the
   * PostgreSQL client reads it from PGPASSWORD (or ~/.pgpass).
   */
  database: z
    .strictObject({
      url: z
        .string()
        .refine(isPostgresUrl, 'a postgres:// or postgresql:// URL')
        .refine(withoutPassword, 'no password in the URL; set PGPASSWORD in the environment'),
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _')
        .optional(),
    })
    .optional(),
  /** Keystore key ids (create them with `tresor keys create`). */
  keys: z.strictObject({
    /** ES256 keys signing attestation tokens; the first signs, the others stay published (rotation). */
    tokenSigning: z.array(keyId).min(1).max(8),
    /** ES256 key signing the reference values and residency inventory documents. */
    documentSigning: keyId,
    /** ES256 or ES384 key of the mesh CA. */
    meshCa: keyId,
    /** ES256 or ES384 key signing audit checkpoints. */
    auditCheckpoint: keyId,
    /** AES-256 KEK wrapping the data key the resources are sealed under. */
    resourceKek: keyId,
  }),
  admin: z
    .strictObject({
      /** Admin public keys: `[{"id": "alice", "jwk": {…}}]` (`tresor trust admin keygen` prints one). */
      keys: adminKeysSchema,
      requestWindowSeconds: z.number().int().min(30).max(3600).default(DEFAULT_ADMIN_WINDOW_SECONDS),
    })
    .prefault({ keys: [] }),
  meshCa: z
    .strictObject({
      trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
      certificateLifetimeSeconds: z
        .number()
        .int()
        .min(MIN_CERTIFICATE_LIFETIME_SECONDS)
        .max(MAX_CERTIFICATE_LIFETIME_SECONDS)
        .default(DEFAULT_CERTIFICATE_LIFETIME_SECONDS),
    })
    .prefault({}),
  residency: z
    .strictObject({
      /** Where data may be processed (ISO 3166-1 alpha-2). */
      jurisdiction: z.string().regex(JURISDICTION_PATTERN, 'an ISO 3166-1 alpha-2 code').default('CH'),
    })
    .prefault({}),
  /**
   * Whether attestation (token issuance, key release) needs a matching reference value and hardware
   * in the residency inventory. Only development mode may turn either off (a fresh local stack
   * before its first signed admin request); the mesh CA needs both whatever this says.
   */
  enforce: z
    .strictObject({ referenceValues: z.boolean().default(true), residency: z.boolean().default(true) })
    .prefault({}),
});

export interface DeploymentConfig {
  readonly service: TrustConfig;
  readonly keystore: KeyStoreConfig;
  readonly stateDir: string;
  /** PostgreSQL shared by replicas; absent: SQLite in the state directory. */
  readonly database?: { readonly url: string; readonly schema?: string };
  readonly keys: {
    readonly tokenSigning: readonly KeyId[];
    readonly documentSigning: KeyId;
    readonly meshCa: KeyId;
    readonly auditCheckpoint: KeyId;
    readonly resourceKek: KeyId;
  };
  readonly admin: { readonly keys: AdminKeySet; readonly requestWindowSeconds: number };
  readonly meshCa: { readonly trustDomain: string; readonly certificateLifetimeSeconds: number };
  readonly residency: { readonly jurisdiction: string };
  readonly enforce: { readonly referenceValues: boolean; readonly residency: boolean };
}

/**
 * Validates a deployment config; relative paths are relative to `baseDir` (the file's directory).
 *
 * @throws TresorError CONFIG_INVALID naming the field; INPUT_UNREADABLE / INPUT_MALFORMED for a
 *   service file that cannot be read
 */
export async function parseDeploymentConfig(value: unknown, baseDir: string): Promise<DeploymentConfig> {
  const parsed = deploymentConfigSchema.safeParse(value);
  if (!parsed.success)
    throw new TresorError('CONFIG_INVALID', `trust deployment config ${schemaProblem(parsed.error)}`);
  const c = parsed.data;
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const service =
    typeof c.service === 'string' ? await loadTrustConfigFile(path(c.service)) : parseTrustConfig(c.service);
  if (service.mode === 'production' && !(c.enforce.referenceValues && c.enforce.residency)) {
    throw new TresorError(
      'CONFIG_INVALID',
      'trust deployment config enforce: production mode enforces reference values and residency',
    );
  }
  return {
    service,
    keystore: parseKeyStoreConfig(c.keystore, baseDir),
    stateDir: path(c.stateDir),
    ...(c.database === undefined
      ? {}
      : {
          database: {
            url: c.database.url,
            ...(c.database.schema === undefined ? {} : { schema: c.database.schema }),
          },
        }),
    keys: c.keys,
    admin: {
      keys: await AdminKeySet.parse(c.admin.keys),
      requestWindowSeconds: c.admin.requestWindowSeconds,
    },
    meshCa: { ...c.meshCa, trustDomain: parseTrustDomain(c.meshCa.trustDomain) },
    residency: c.residency,
    enforce: c.enforce,
  };
}

/** Reads and validates a deployment config file (JSON). */
export async function loadDeploymentConfig(file: string): Promise<DeploymentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the trust deployment config ${file}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', `the trust deployment config ${file} is not JSON`, { cause });
  }
  return parseDeploymentConfig(value, dirname(file));
}
