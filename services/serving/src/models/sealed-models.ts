import { randomBytes } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ModelKey } from '@tresor/crypto';
import { inspectSealedModelFile, unsealModelFile } from '@tresor/crypto/node';
import { isTresorError, TresorError } from '@tresor/protocol';
import type { ServingConfig } from '../config.js';

/** A sealed model the replica is configured to serve. */
export interface SealedModelRef {
  readonly id: string;
  readonly file: string;
  /** `kbs:///<repository>/<type>/<tag>` */
  readonly key: string;
}

/** A model decrypted into the work folder, ready for the engine. */
export interface UnsealedModel {
  readonly id: string;
  /** The plaintext file (0600); deleted once the engine loaded it. */
  readonly path: string;
  /** Lowercase hex SHA-256 of the plaintext, verified during the unseal. */
  readonly sha256: string;
  readonly bytes: number;
}

const KBS_URI_PREFIX = 'kbs:///';

/**
 * The models of a configuration: its `models` list, or every `*.tresor` file of `modelDirectory`
 * (id = file name without `.tresor`, key = the header's key id, which must be a `kbs:///` URI).
 */
export async function configuredModels(config: ServingConfig): Promise<SealedModelRef[]> {
  if (config.modelDirectory === undefined) return config.models.map((m) => ({ ...m }));
  let names: string[];
  try {
    names = (await readdir(config.modelDirectory)).filter((n) => n.endsWith('.tresor')).sort();
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `cannot read modelDirectory ${config.modelDirectory}`, { cause });
  }
  const refs: SealedModelRef[] = [];
  for (const name of names) {
    const file = join(config.modelDirectory, name);
    const { header } = await inspectSealedModelFile(file);
    if (!header.keyId.startsWith(KBS_URI_PREFIX)) {
      throw new TresorError(
        'CONFIG_INVALID',
        `${name} names its key ${JSON.stringify(header.keyId)}, not a kbs:/// URI; re-seal it with --key kbs:///<repo>/<type>/<tag>`,
      );
    }
    refs.push({ id: basename(name, '.tresor'), file, key: header.keyId });
  }
  return refs;
}

/**
 * Checks a sealed model's header against the reference values before any key is used: its
 * plaintext digest must be one the release may load (when the set names any). The header is not
 * authenticated yet, but the unseal then proves the plaintext has exactly this digest.
 */
export async function checkAllowedDigest(ref: SealedModelRef, allowed: ReadonlySet<string>): Promise<string> {
  const { header } = await inspectSealedModelFile(ref.file);
  if (allowed.size > 0 && !allowed.has(header.plaintextSha256)) {
    throw new TresorError(
      'MODEL_LOAD_FAILED',
      `model ${ref.id} (sha256 ${header.plaintextSha256}) is not among the reference values' modelDigests of this release`,
      { details: { model: ref.id, sha256: header.plaintextSha256 } },
    );
  }
  return header.plaintextSha256;
}

/**
 * Decrypts a sealed model into `workDir` (mode 0600, written under a temporary name and renamed
 * only after every chunk authenticated and the plaintext SHA-256 matched the header — see
 * @tresor/crypto/node unsealModelFile), then zeroes `rawKey`. A tampered, truncated or re-headed
 * file fails here and leaves no plaintext behind.
 */
export async function unsealModel(
  ref: SealedModelRef,
  rawKey: Uint8Array,
  workDir: string,
  signal?: AbortSignal,
): Promise<UnsealedModel> {
  let key: ModelKey;
  try {
    key = await ModelKey.import(rawKey);
  } finally {
    rawKey.fill(0);
  }
  const output = join(workDir, `${randomBytes(12).toString('hex')}.model`);
  try {
    const header = await unsealModelFile({
      input: ref.file,
      output,
      key,
      // A tmpfs has nothing to sync, and a plaintext model must not outlive a crash anyway.
      durable: false,
      ...(signal === undefined ? {} : { signal }),
    });
    return { id: ref.id, path: output, sha256: header.plaintextSha256, bytes: header.plaintextLength };
  } catch (cause) {
    await unlink(output).catch(() => undefined);
    if (isTresorError(cause)) {
      throw new TresorError(cause.code, `model ${ref.id}: ${cause.message}`, {
        cause,
        details: { model: ref.id },
      });
    }
    throw new TresorError('MODEL_LOAD_FAILED', `model ${ref.id} could not be decrypted`, { cause });
  }
}
