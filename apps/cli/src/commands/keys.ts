import type { CommandModule } from '../program.js';
import { registerKeyImport } from './keys-import.js';
import { registerKeyManagement } from './keys-manage.js';

/** `tresor keys …`: customer-owned keys in a file, PKCS#11 HSM or KYOK keystore (docs/keys.md). */
export const keysCommands: CommandModule = (program, io) => {
  const keys = program
    .command('keys')
    .description('manage customer-owned keys: KEKs, signing keys, BYOK import')
    .addHelpText(
      'after',
      '\nThe keystore config names the backend and the environment variable holding its passphrase or PIN.\nTRESOR_MODE=production makes the file backend refuse. See docs/keys.md.',
    );
  registerKeyManagement(keys, io);
  registerKeyImport(keys, io);
};
