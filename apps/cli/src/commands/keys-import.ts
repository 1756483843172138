import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import type { CliIo } from '../io.js';
import { KEYSTORE_OPTION, withKeyStore, type KeystoreFlags } from './keys-store.js';

interface ParamsFlags extends KeystoreFlags {
  readonly format: 'json' | 'pem' | 'jwk';
}

interface ImportFlags extends KeystoreFlags {
  readonly in: string;
  readonly label?: string;
  readonly json?: boolean;
}

/** A wrapped AES-256 KEK is at most an RSA-4096 block plus 40 bytes; nothing bigger is read. */
const MAX_IMPORT_BYTES = 4096;

/** `tresor keys import-params` and `tresor keys import` (BYOK, docs/keys.md). */
export function registerKeyImport(keys: Command, io: CliIo): void {
  keys
    .command('import-params')
    .description('print the import public key a customer wraps its KEK for (BYOK)')
    .option(...KEYSTORE_OPTION)
    .addOption(
      new Option('--format <format>', 'json: everything (algorithm, PEM, JWK); pem or jwk: the key alone')
        .choices(['json', 'pem', 'jwk'])
        .default('json'),
    )
    .action(async (flags: ParamsFlags) => {
      const params = await withKeyStore(io, flags, { createIfMissing: true }, (store) =>
        store.importParameters(),
      );
      if (flags.format === 'pem') io.stdout.write(params.publicKeyPem);
      else if (flags.format === 'jwk') io.stdout.write(`${JSON.stringify(params.publicKeyJwk, null, 2)}\n`);
      else io.stdout.write(`${JSON.stringify(params, null, 2)}\n`);
    });

  keys
    .command('import')
    .description(
      'import a customer KEK wrapped with RSA-OAEP + AES-KWP for the import key (the plaintext key never leaves customer and HSM)',
    )
    .requiredOption('--in <file>', 'the wrapped key material: RSA-OAEP block || AES-KWP block, raw bytes')
    .option(...KEYSTORE_OPTION)
    .option('--label <text>', 'a note for people, e.g. the tenant (not secret)')
    .option('--json', 'print the key metadata as JSON')
    .action(async (flags: ImportFlags) => {
      const material = await readWrapped(resolve(io.cwd, flags.in));
      const meta = await withKeyStore(io, flags, { createIfMissing: true }, (store) =>
        store.importKek(material, flags.label === undefined ? {} : { label: flags.label }),
      );
      io.stdout.write(
        flags.json === true
          ? `${JSON.stringify(meta, null, 2)}\n`
          : `imported KEK ${meta.id} (${meta.algorithm}, origin ${meta.origin})\n`,
      );
    });
}

async function readWrapped(path: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}`, { cause });
  }
  if (bytes.length > MAX_IMPORT_BYTES) {
    throw new TresorError(
      'KEY_IMPORT_INVALID',
      `${path} is ${bytes.length} bytes; wrapped key material is at most ${MAX_IMPORT_BYTES}`,
    );
  }
  return new Uint8Array(bytes);
}
