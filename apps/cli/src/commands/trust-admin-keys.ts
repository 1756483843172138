import { open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { exportAdminKey, generateAdminKey, importAdminKey, type AdminSigningKey } from '@tresor/trust';
import type { CliIo } from '../io.js';

/** Writes a new admin key pair: the private JWK to `out` (0600, never overwritten), the config entry to stdout. */
export async function writeNewAdminKey(
  io: CliIo,
  flags: { readonly id: string; readonly out: string; readonly algorithm: 'ES256' | 'EdDSA' },
): Promise<void> {
  const key = await generateAdminKey(flags.id, flags.algorithm);
  const file = resolve(io.cwd, flags.out);
  let handle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (cause) {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot create ${flags.out} (it must not exist yet)`, {
      cause,
    });
  }
  try {
    await handle.writeFile(`${JSON.stringify(await exportAdminKey(key), null, 2)}\n`, 'utf8');
  } finally {
    await handle.close();
  }
  io.stderr.write(
    `wrote the private admin key ${key.id} to ${flags.out} (mode 0600); keep it off shared disks\n`,
  );
  io.stdout.write(`${JSON.stringify({ id: key.id, jwk: key.publicJwk }, null, 2)}\n`);
}

/** The admin key from `--key <file>` or TRESOR_ADMIN_KEY. */
export async function readAdminKey(io: CliIo, file: string | undefined): Promise<AdminSigningKey> {
  const path = file ?? io.env.TRESOR_ADMIN_KEY;
  if (path === undefined || path === '') {
    throw new TresorError('USAGE_INVALID', 'name your admin key file with --key <file> or TRESOR_ADMIN_KEY');
  }
  let text: string;
  try {
    text = await readFile(resolve(io.cwd, path), 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the admin key ${path}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TresorError('INPUT_MALFORMED', `the admin key ${path} is not a JWK (JSON)`);
  }
  return importAdminKey(json);
}
