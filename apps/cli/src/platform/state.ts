import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { TresorError } from '@tresor/protocol';
import { SampleSigningKey } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes, isKeyId, writeFileAtomic, type KeyId } from '@tresor/keystore';
import { exportAdminKey, generateAdminKey, importAdminKey, type AdminSigningKey } from '@tresor/trust';
import type { StateLayout } from './layout.js';

/**
 * The one-time, idempotent part of `tresor up`: the state directory (0700), its secrets (0600
 * files) and the trust service's file keystore with its keys. A second start finds everything and
 * creates nothing; a step interrupted half-way is redone, never half-used.
 */

export const PLATFORM_RECORD_VERSION = 1;
/** Random 256-bit passphrase: scrypt's stretching adds nothing, so the keystore uses the cheapest allowed cost. */
export const LOCAL_KEYSTORE_SCRYPT_LOG2N = 14;
export const KEYSTORE_PASSPHRASE_ENV = 'TRESOR_KEYSTORE_PASSPHRASE';
export const LOCAL_ADMIN_ID = 'local-admin';

export interface TrustKeyIds {
  readonly tokenSigning: KeyId;
  readonly documentSigning: KeyId;
  readonly meshCa: KeyId;
  readonly auditCheckpoint: KeyId;
  readonly resourceKek: KeyId;
}

export interface GatewayKeyIds {
  readonly auditCheckpoint: KeyId;
  readonly tenantKek: KeyId;
}

/** `platform.json`: what set-up created, so a second start reuses it. */
export interface PlatformRecord {
  readonly version: number;
  readonly createdAt: string;
  readonly trustKeys: TrustKeyIds;
  readonly gatewayKeys: GatewayKeyIds;
  /** One-time steps done against running services (`trust-provisioned`, `model-sealed`, …). */
  readonly done: readonly string[];
}

export interface PlatformSecrets {
  /** The keystore passphrase, handed to the trust process in its environment only. */
  readonly keystorePassphrase: string;
  /** The gateway keystore's passphrase, handed to the gateway process only. */
  readonly gatewayKeystorePassphrase: string;
  readonly adminKey: AdminSigningKey;
  readonly sampleKey: SampleSigningKey;
}

export type Progress = (line: string) => void;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}`, { cause });
  }
}

async function privateDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory's mode alone: tighten it.
    await chmod(path, 0o700);
  } catch (cause) {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot create the private directory ${path}`, { cause });
  }
}

/** Creates the state directory tree, every directory 0700. */
export async function createStateDirs(layout: StateLayout): Promise<void> {
  for (const dir of [
    layout.root,
    layout.secretsDir,
    layout.tlsDir,
    layout.trustDir,
    layout.trustState,
    layout.servingDir,
    layout.modelsDir,
    layout.gatewayDir,
    layout.gatewayState,
    layout.logsDir,
  ]) {
    await privateDir(dir);
  }
}

function corrupt(what: string, cause?: unknown): TresorError {
  return new TresorError(
    'CONFIG_INVALID',
    `${what} in the state directory is damaged; remove the state directory (e.g. rm -r .tresor) and run tresor up again`,
    cause === undefined ? {} : { cause },
  );
}

/** Reads `platform.json`; undefined on a first start. */
export async function readPlatformRecord(layout: StateLayout): Promise<PlatformRecord | undefined> {
  if (!(await exists(layout.platformJson))) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(layout.platformJson, 'utf8'));
  } catch (cause) {
    throw corrupt('platform.json', cause);
  }
  const r = value as Partial<PlatformRecord> | null;
  const keys = r?.trustKeys as Record<string, unknown> | undefined;
  const keyNames = ['tokenSigning', 'documentSigning', 'meshCa', 'auditCheckpoint', 'resourceKek'];
  const gatewayKeys = r?.gatewayKeys as Record<string, unknown> | undefined;
  if (
    r === null ||
    typeof r !== 'object' ||
    r.version !== PLATFORM_RECORD_VERSION ||
    typeof r.createdAt !== 'string' ||
    !Array.isArray(r.done) ||
    !r.done.every((d) => typeof d === 'string') ||
    keys === undefined ||
    !keyNames.every((k) => isKeyId(keys[k])) ||
    gatewayKeys === undefined ||
    !isKeyId(gatewayKeys.auditCheckpoint) ||
    !isKeyId(gatewayKeys.tenantKek)
  ) {
    throw corrupt('platform.json');
  }
  return r as PlatformRecord;
}

export async function writePlatformRecord(layout: StateLayout, record: PlatformRecord): Promise<void> {
  await writeFileAtomic(layout.platformJson, `${JSON.stringify(record, null, 2)}\n`);
}

/** Marks a one-time step done (written at once, so an interrupted start redoes only what is left). */
export async function markDone(
  layout: StateLayout,
  record: PlatformRecord,
  step: string,
): Promise<PlatformRecord> {
  if (record.done.includes(step)) return record;
  const next = { ...record, done: [...record.done, step] };
  await writePlatformRecord(layout, next);
  return next;
}

async function readOrCreate(
  path: string,
  create: () => Promise<string>,
  progress: Progress,
  what: string,
): Promise<string> {
  if (await exists(path)) {
    try {
      return await readFile(path, 'utf8');
    } catch (cause) {
      throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}`, { cause });
    }
  }
  const text = await create();
  await writeFileAtomic(path, text);
  progress(`created ${what}`);
  return text;
}

/** The keystore passphrase, the trust admin key and the sample TEE installation key: created once, 0600. */
async function ensurePassphrase(path: string, progress: Progress, what: string): Promise<string> {
  const passphrase = (
    await readOrCreate(path, () => Promise.resolve(`${randomBytes(32).toString('hex')}\n`), progress, what)
  ).trim();
  if (!/^[0-9a-f]{64}$/.test(passphrase)) throw corrupt(`the ${what}`);
  return passphrase;
}

export async function ensureSecrets(layout: StateLayout, progress: Progress): Promise<PlatformSecrets> {
  const passphrase = await ensurePassphrase(layout.keystorePassphrase, progress, 'trust keystore passphrase');
  const gatewayPassphrase = await ensurePassphrase(
    layout.gatewayKeystorePassphrase,
    progress,
    'gateway keystore passphrase',
  );
  const adminText = await readOrCreate(
    layout.adminKey,
    async () => `${JSON.stringify(await exportAdminKey(await generateAdminKey(LOCAL_ADMIN_ID, 'ES256')))}\n`,
    progress,
    `trust admin key (${LOCAL_ADMIN_ID})`,
  );
  const sampleText = await readOrCreate(
    layout.sampleTeeKey,
    () => {
      const key = SampleSigningKey.generate();
      try {
        return Promise.resolve(`${JSON.stringify(key.exportJwk())}\n`);
      } finally {
        key.destroy();
      }
    },
    progress,
    'sample TEE installation key',
  );
  let adminKey: AdminSigningKey;
  let sampleKey: SampleSigningKey;
  try {
    adminKey = await importAdminKey(JSON.parse(adminText));
    sampleKey = SampleSigningKey.parse(sampleText);
  } catch (cause) {
    throw corrupt('a key file under secrets/', cause);
  }
  return {
    keystorePassphrase: passphrase,
    gatewayKeystorePassphrase: gatewayPassphrase,
    adminKey,
    sampleKey,
  };
}

async function openLocalKeyStore(path: string, passphrase: string): Promise<FileKeyStore> {
  try {
    return await FileKeyStore.open({
      path,
      passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode(passphrase)),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: LOCAL_KEYSTORE_SCRYPT_LOG2N,
    });
  } catch (cause) {
    throw corrupt(`the keystore ${path}`, cause);
  }
}

/**
 * The trust service's keys in the local file keystore, created on the first start and recorded in
 * `platform.json`; later starts read the record and open nothing.
 */
export async function ensurePlatformRecord(
  layout: StateLayout,
  secrets: PlatformSecrets,
  progress: Progress,
  now: Date,
): Promise<PlatformRecord> {
  const existing = await readPlatformRecord(layout);
  if (existing !== undefined) return existing;
  const gatewayKeys = await createGatewayKeys(layout, secrets);
  const store = await openLocalKeyStore(layout.keystore, secrets.keystorePassphrase);
  try {
    const signing = async (label: string): Promise<KeyId> =>
      (await store.createSigningKey('ES256', { label })).id;
    const trustKeys: TrustKeyIds = {
      tokenSigning: await signing('local attestation tokens'),
      documentSigning: await signing('local reference values and residency inventory'),
      meshCa: await signing('local mesh CA'),
      auditCheckpoint: await signing('local audit checkpoints'),
      resourceKek: (await store.createKek({ label: 'local key broker resources' })).id,
    };
    const record: PlatformRecord = {
      version: PLATFORM_RECORD_VERSION,
      createdAt: now.toISOString(),
      trustKeys,
      gatewayKeys,
      done: [],
    };
    await writePlatformRecord(layout, record);
    progress('created the trust keystore (tokens, documents, mesh CA, audit and resource keys)');
    progress('created the gateway keystore (audit key, tenant KEK)');
    return record;
  } finally {
    await store.close();
  }
}

async function createGatewayKeys(layout: StateLayout, secrets: PlatformSecrets): Promise<GatewayKeyIds> {
  const store = await openLocalKeyStore(layout.gatewayKeystore, secrets.gatewayKeystorePassphrase);
  try {
    return {
      auditCheckpoint: (await store.createSigningKey('ES256', { label: 'local gateway audit checkpoints' }))
        .id,
      tenantKek: (await store.createKek({ label: 'local gateway tenant data keys' })).id,
    };
  } finally {
    await store.close();
  }
}
