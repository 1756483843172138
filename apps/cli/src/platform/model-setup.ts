import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelKey } from '@tresor/crypto';
import { inspectSealedModelFile, sealModelFile } from '@tresor/crypto/node';
import { writeDemoModel } from '@tresor/serving';
import { putModelKey, type TrustAdmin } from './provision-trust.js';
import { modelKeyPath } from './trust-setup.js';

/**
 * The demo model, sealed: the plaintext GGUF exists only in a private temporary directory (0700,
 * file 0600) for as long as sealing takes and is deleted whatever happens; the model key is
 * generated here, handed to the trust service (signed `resources/put`, the key broker then releases
 * it only to an attested serving build) and overwritten in memory. At rest there is only
 * `<dir>/serving/models/<id>.tresor`.
 */

export function sealedModelFile(modelsDir: string, modelId: string): string {
  return join(modelsDir, `${modelId}.tresor`);
}

/** `kbs:///local/model-key/<id>`: where serving asks for the key (the sealed header names it too). */
export function modelKeyUri(modelId: string): string {
  return `kbs:///${modelKeyPath(modelId)}`;
}

export interface SealedDemoModel {
  readonly file: string;
  /** Lowercase hex SHA-256 of the plaintext (the sealed header's), for the reference values. */
  readonly sha256: string;
}

export async function sealDemoModel(options: {
  readonly modelsDir: string;
  readonly modelId: string;
  readonly admin: TrustAdmin;
}): Promise<SealedDemoModel> {
  const { modelsDir, modelId, admin } = options;
  const privateDir = await mkdtemp(join(tmpdir(), 'tresor-demo-model-'));
  const raw = new Uint8Array(randomBytes(32));
  try {
    await chmod(privateDir, 0o700);
    const plaintext = join(privateDir, `${modelId}.gguf`);
    await writeDemoModel(plaintext);
    await chmod(plaintext, 0o600);
    const file = sealedModelFile(modelsDir, modelId);
    const header = await sealModelFile({
      input: plaintext,
      output: file,
      key: await ModelKey.import(raw),
      keyId: modelKeyUri(modelId),
      metadata: { name: modelId, source: 'tresor up demo model' },
      force: true,
    });
    await putModelKey(admin, modelKeyPath(modelId), raw);
    return { file, sha256: header.plaintextSha256 };
  } finally {
    raw.fill(0);
    await rm(privateDir, { recursive: true, force: true });
  }
}

/** The plaintext digest of an already sealed model (from its header), or undefined when there is none. */
export async function sealedModelDigest(file: string): Promise<string | undefined> {
  try {
    return (await inspectSealedModelFile(file)).header.plaintextSha256;
  } catch {
    return undefined;
  }
}
