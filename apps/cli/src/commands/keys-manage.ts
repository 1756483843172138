import { Option, type Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import { parseKeyId, type KeyMetadata, type KeyStore, type SigningAlgorithm } from '@tresor/keystore';
import type { CliIo } from '../io.js';
import { KEYSTORE_OPTION, renderKeys, withKeyStore, type KeystoreFlags } from './keys-store.js';

interface CreateFlags extends KeystoreFlags {
  readonly signing?: SigningAlgorithm;
  readonly label?: string;
  readonly json?: boolean;
}

interface OutputFlags extends KeystoreFlags {
  readonly json?: boolean;
}

/** `tresor keys create|list|describe|disable|enable|destroy`. */
export function registerKeyManagement(keys: Command, io: CliIo): void {
  keys
    .command('create')
    .description('create a key inside the keystore: an AES-256 KEK (default) or an EC signing key')
    .option(...KEYSTORE_OPTION)
    .addOption(
      new Option('--signing <algorithm>', 'create an EC signing key instead').choices(['ES256', 'ES384']),
    )
    .option('--label <text>', 'a note for people, e.g. the tenant (not secret)')
    .option('--json', 'print the key metadata as JSON')
    .action(async (flags: CreateFlags) => {
      const meta = await withKeyStore(io, flags, { createIfMissing: true }, (store) =>
        flags.signing === undefined
          ? store.createKek(label(flags))
          : store.createSigningKey(flags.signing, label(flags)),
      );
      print(
        io,
        flags,
        meta,
        `created ${meta.kind === 'kek' ? 'KEK' : 'signing key'} ${meta.id} (${meta.algorithm})\n`,
      );
    });

  keys
    .command('list')
    .description('list the keys: metadata only (id, kind, algorithm, state, origin, created, label)')
    .option(...KEYSTORE_OPTION)
    .option('--json', 'print JSON')
    .action(async (flags: OutputFlags) => {
      const list = await withKeyStore(io, flags, { createIfMissing: false }, (store) => store.list());
      io.stdout.write(flags.json === true ? `${JSON.stringify(list, null, 2)}\n` : renderKeys(list));
    });

  keys
    .command('describe')
    .description("show one key's metadata")
    .argument('<id>', 'key id')
    .option(...KEYSTORE_OPTION)
    .option('--json', 'print JSON')
    .action(async (id: string, flags: OutputFlags) => {
      const meta = await withKeyStore(io, flags, { createIfMissing: false }, (store) =>
        store.describe(parseKeyId(id)),
      );
      io.stdout.write(flags.json === true ? `${JSON.stringify(meta, null, 2)}\n` : renderKeys([meta]));
    });

  const change = (
    name: 'disable' | 'enable' | 'destroy',
    description: string,
    apply: (store: KeyStore, id: ReturnType<typeof parseKeyId>) => Promise<KeyMetadata>,
  ): Command =>
    keys
      .command(name)
      .description(description)
      .argument('<id>', 'key id')
      .option(...KEYSTORE_OPTION)
      .option('--json', 'print the key metadata as JSON')
      .action(async (id: string, flags: OutputFlags & { yes?: boolean }) => {
        if (name === 'destroy' && flags.yes !== true) {
          throw new TresorError(
            'USAGE_INVALID',
            'destroying a key makes everything it protects unreadable for good; confirm with --yes',
          );
        }
        const meta = await withKeyStore(io, flags, { createIfMissing: false }, (store) =>
          apply(store, parseKeyId(id)),
        );
        print(io, flags, meta, `${meta.id} is now ${meta.state}\n`);
      });

  change('disable', 'stop a key from wrapping, unwrapping or signing until it is enabled again', (s, id) =>
    s.disable(id),
  );
  change('enable', 'allow a disabled key again', (s, id) => s.enable(id));
  change('destroy', 'destroy a key for good (crypto-shredding: its data becomes unreadable)', (s, id) =>
    s.destroy(id),
  ).option('--yes', 'confirm that the key and everything it protects are to be gone for good');
}

function label(flags: CreateFlags): { label?: string } {
  return flags.label === undefined ? {} : { label: flags.label };
}

function print(io: CliIo, flags: { json?: boolean }, meta: KeyMetadata, line: string): void {
  io.stdout.write(flags.json === true ? `${JSON.stringify(meta, null, 2)}\n` : line);
}
