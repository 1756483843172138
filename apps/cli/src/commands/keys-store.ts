import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { loadKeyStoreConfig, openKeyStore, type KeyMetadata, type KeyStore } from '@tresor/keystore';
import type { CliIo } from '../io.js';

export interface KeystoreFlags {
  readonly keystore?: string;
}

/** `--keystore <file>` names the keystore config (docs/keys.md); TRESOR_KEYSTORE is the default. */
export const KEYSTORE_OPTION = [
  '--keystore <file>',
  'keystore config (JSON: file, pkcs11 or kyok backend; default $TRESOR_KEYSTORE)',
] as const;

/**
 * Opens the keystore the flags name, runs `use`, and closes it. The deployment mode comes from
 * TRESOR_MODE (`production` makes the file backend refuse); secrets come from the variables the
 * config names, never from the command line.
 */
export async function withKeyStore<T>(
  io: CliIo,
  flags: KeystoreFlags,
  options: { readonly createIfMissing: boolean },
  use: (store: KeyStore) => Promise<T>,
): Promise<T> {
  const file = flags.keystore ?? io.env.TRESOR_KEYSTORE;
  if (file === undefined || file === '') {
    throw new TresorError(
      'USAGE_INVALID',
      'name the keystore config with --keystore <file> or TRESOR_KEYSTORE',
    );
  }
  const config = await loadKeyStoreConfig(resolve(io.cwd, file));
  const store = await openKeyStore(config, {
    env: io.env,
    mode: io.env.TRESOR_MODE === 'production' ? 'production' : 'development',
    createIfMissing: options.createIfMissing,
  });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** One key per line, aligned, for people; `--json` prints the metadata objects instead. */
export function renderKeys(keys: readonly KeyMetadata[]): string {
  const rows = [
    ['ID', 'KIND', 'ALGORITHM', 'STATE', 'ORIGIN', 'CREATED', 'LABEL'],
    ...keys.map((k) => [k.id, k.kind, k.algorithm, k.state, k.origin, k.created, k.label]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
