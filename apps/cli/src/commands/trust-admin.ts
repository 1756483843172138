import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import { bytesToBase64 } from '@tresor/crypto';
import { verifyReferenceValuesDocument, verifyResidencyInventoryDocument } from '@tresor/trust';
import type { CliIo } from '../io.js';
import { readAdminKey, writeNewAdminKey } from './trust-admin-keys.js';
import {
  discoverAudience,
  fetchDocument,
  sendAdminOperation,
  trustEndpoint,
  type TrustEndpointFlags,
} from './trust-client.js';

interface AdminFlags extends TrustEndpointFlags {
  readonly key?: string;
  readonly audience?: string;
  readonly json?: boolean;
}

/** `tresor trust admin …`: signed changes to a running trust service, and its published documents. */
export function registerTrustAdmin(trust: Command, io: CliIo): void {
  const admin = trust
    .command('admin')
    .description('change what a trust service allows, with requests signed by your admin key')
    .option('--url <url>', 'the trust service (default $TRESOR_TRUST_URL)')
    .option(
      '--ca <file>',
      'CA certificate of its TLS certificate (default $TRESOR_TRUST_CA, else system roots)',
    )
    .option('--key <file>', 'your admin key, a private JWK (default $TRESOR_ADMIN_KEY)')
    .option('--audience <name>', "the service's issuer name (default: read from its published documents)")
    .option('--json', 'print the JSON answers')
    .addHelpText(
      'after',
      '\nEvery change is a JWS signed by your admin key, accepted once, and recorded in the audit log.\n' +
        'No admin command ever receives a secret back.',
    );

  admin
    .command('keygen')
    .description('create an admin key pair: private JWK to --out (0600), config entry on stdout')
    .requiredOption('--id <id>', 'the admin key id (it names you in the audit log)')
    .requiredOption('--out <file>', 'where to write the private key (must not exist)')
    .addOption(
      new Option('--algorithm <alg>', 'signature algorithm').choices(['ES256', 'EdDSA']).default('ES256'),
    )
    .action((flags: { id: string; out: string; algorithm: 'ES256' | 'EdDSA' }) =>
      writeNewAdminKey(io, flags),
    );

  const send = (
    command: Command,
    operation: string,
    request: unknown,
    describe: (answer: Record<string, unknown>) => string,
  ) => sendAndReport(io, command, operation, request, describe);

  const referenceValues = admin
    .command('reference-values')
    .description('the released measurements of each component');
  referenceValues
    .command('put <file>')
    .description('add or replace released sets (a JSON set or an array of sets; see docs/trust.md)')
    .action(async (file: string, _flags: unknown, command: Command) => {
      for (const set of asList(await readJson(io, file))) {
        await send(
          command,
          'reference-values/put',
          set,
          (a) => `reference values now version ${String(a.version)}\n`,
        );
      }
    });
  referenceValues
    .command('remove')
    .description('withdraw the reference values of one release')
    .requiredOption('--component <name>', 'gateway, serving, console, …')
    .requiredOption('--release <label>', 'the release label')
    .requiredOption('--tee <kind>', 'snp, tdx, nvidia or sample')
    .action((flags: { component: string; release: string; tee: string }, command: Command) =>
      send(
        command,
        'reference-values/remove',
        { component: flags.component, release: flags.release, tee: flags.tee },
        (a) => `withdrawn; reference values now version ${String(a.version)}\n`,
      ),
    );

  const inventory = admin.command('inventory').description('the hardware allowed to process data');
  inventory
    .command('set <file>')
    .description('replace the whole residency inventory ({"hardware": [...]} or an array of entries)')
    .action(async (file: string, _flags: unknown, command: Command) => {
      await send(
        command,
        'inventory/replace',
        { hardware: entries(await readJson(io, file)) },
        inventoryLine,
      );
    });
  inventory
    .command('add <file>')
    .description('add machines, or update the entries with the same ids')
    .action(async (file: string, _flags: unknown, command: Command) => {
      await send(command, 'inventory/put', { hardware: entries(await readJson(io, file)) }, inventoryLine);
    });
  inventory
    .command('remove <ids...>')
    .description('withdraw machines by hardware id')
    .action((ids: string[], _flags: unknown, command: Command) =>
      send(command, 'inventory/remove', { ids }, inventoryLine),
    );

  const resource = admin
    .command('resource')
    .description('the secrets the key broker releases to attested workloads');
  resource
    .command('set <path>')
    .description(
      'store the secret at <repository>/<type>/<tag>, read from a file (never from the command line)',
    )
    .requiredOption('--from-file <file>', 'the secret (1 byte to 64 KiB)')
    .action(async (path: string, flags: { fromFile: string }, command: Command) => {
      const secret = await readBytes(io, flags.fromFile);
      try {
        await send(
          command,
          'resources/put',
          { path, value: bytesToBase64(secret) },
          (a) => `stored ${String(a.path)} (${String(a.bytes)} bytes)\n`,
        );
      } finally {
        secret.fill(0);
      }
    });
  resource
    .command('delete <path>')
    .description('delete the secret at <repository>/<type>/<tag>')
    .action((path: string, _flags: unknown, command: Command) =>
      send(command, 'resources/delete', { path }, (a) => `deleted ${String(a.path)}\n`),
    );

  const policy = admin
    .command('policy')
    .description('the Cedar resource policy (who may read which resource)');
  policy
    .command('set <file>')
    .description('replace the resource policy with the Cedar policies in <file>')
    .action(async (file: string, _flags: unknown, command: Command) => {
      const text = new TextDecoder().decode(await readBytes(io, file));
      await send(
        command,
        'resource-policy/set',
        { policy: text },
        (a) => `resource policy set (sha256 ${String(a.sha256)})\n`,
      );
    });
  policy
    .command('get')
    .description('print the resource policy in force')
    .action((_flags: unknown, command: Command) =>
      send(command, 'resource-policy/get', null, (a) => `${String(a.policy)}\n`),
    );

  admin
    .command('list')
    .description('list the reference values, the residency inventory and the resource names')
    .action(async (_flags: unknown, command: Command) => {
      const flags = command.optsWithGlobals<AdminFlags>();
      const client = await connect(io, flags);
      const answers = {
        referenceValues: await client.call('reference-values/list', null),
        inventory: await client.call('inventory/list', null),
        resources: await client.call('resources/list', null),
      };
      io.stdout.write(flags.json === true ? `${JSON.stringify(answers, null, 2)}\n` : renderList(answers));
    });

  admin
    .command('document <kind>')
    .description(
      'fetch a signed document: reference-values or residency-inventory (public, no admin key needed)',
    )
    .option('--jwks <file>', 'verify it with these pinned document keys and print its content')
    .option('--out <file>', 'write the JWS to a file instead of stdout')
    .action(async (kind: string, flags: { jwks?: string; out?: string }, command: Command) => {
      if (kind !== 'reference-values' && kind !== 'residency-inventory') {
        throw new TresorError('USAGE_INVALID', 'the document is reference-values or residency-inventory');
      }
      const endpoint = await trustEndpoint(io, command.optsWithGlobals<AdminFlags>());
      const jws = await fetchDocument(endpoint, kind);
      if (flags.jwks !== undefined) {
        const keys = (await readJson(io, flags.jwks)) as { keys: [] };
        const verified =
          kind === 'reference-values'
            ? await verifyReferenceValuesDocument(jws, { keys })
            : await verifyResidencyInventoryDocument(jws, { keys });
        io.stderr.write(`verified: ${kind} version ${verified.version}, signed by ${verified.keyId}\n`);
        io.stdout.write(`${JSON.stringify(verified.body, null, 2)}\n`);
        return;
      }
      if (flags.out === undefined) io.stdout.write(`${jws}\n`);
      else await writeOut(io, flags.out, `${jws}\n`);
    });

  admin
    .command('send <operation> [file]')
    .description('send any admin operation (e.g. reference-values/list) with the JSON request in [file]')
    .action(async (operation: string, file: string | undefined, _flags: unknown, command: Command) => {
      const request = file === undefined ? null : await readJson(io, file);
      await send(command, operation, request, (a) => `${JSON.stringify(a, null, 2)}\n`);
    });
}

function inventoryLine(answer: Record<string, unknown>): string {
  return `residency inventory now version ${String(answer.version)} (${String(answer.machines)} machines)\n`;
}

interface AdminClient {
  call(operation: string, request: unknown): Promise<Record<string, unknown>>;
}

async function connect(io: CliIo, flags: AdminFlags): Promise<AdminClient> {
  const endpoint = await trustEndpoint(io, flags);
  const key = await readAdminKey(io, flags.key);
  const audience = flags.audience ?? (await discoverAudience(endpoint));
  return {
    call: (operation, request) => sendAdminOperation(endpoint, key, audience, operation, request, io.now()),
  };
}

async function sendAndReport(
  io: CliIo,
  command: Command,
  operation: string,
  request: unknown,
  describe: (answer: Record<string, unknown>) => string,
): Promise<void> {
  const flags = command.optsWithGlobals<AdminFlags>();
  const answer = await (await connect(io, flags)).call(operation, request);
  io.stdout.write(flags.json === true ? `${JSON.stringify(answer, null, 2)}\n` : describe(answer));
}

function renderList(answers: Record<string, Record<string, unknown>>): string {
  const lines: string[] = [];
  const rv = answers.referenceValues ?? {};
  const sets = Array.isArray(rv.referenceValues) ? (rv.referenceValues as Record<string, unknown>[]) : [];
  lines.push(`reference values (version ${String(rv.version)}): ${sets.length} set(s)`);
  for (const s of sets) lines.push(`  ${String(s.component)} ${String(s.release)} on ${String(s.tee)}`);
  const inv = answers.inventory ?? {};
  const hardware = Array.isArray(inv.hardware) ? (inv.hardware as Record<string, unknown>[]) : [];
  lines.push(
    `residency inventory (version ${String(inv.version)}, jurisdiction ${String(inv.jurisdiction)}): ${hardware.length} machine(s)`,
  );
  for (const h of hardware)
    lines.push(
      `  ${String(h.kind)} ${String(h.id).slice(0, 32)}… ${String(h.jurisdiction)} ${typeof h.site === 'string' ? h.site : ''}`.trimEnd(),
    );
  const res = answers.resources ?? {};
  const names = Array.isArray(res.resources) ? (res.resources as string[]) : [];
  lines.push(`resources: ${names.length}`);
  for (const n of names) lines.push(`  ${n}`);
  return `${lines.join('\n')}\n`;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function entries(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'hardware' in value)
    return value.hardware;
  return value;
}

async function readBytes(io: CliIo, file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(resolve(io.cwd, file)));
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${file}`, { cause });
  }
}

async function readJson(io: CliIo, file: string): Promise<unknown> {
  const bytes = await readBytes(io, file);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new TresorError('INPUT_MALFORMED', `${file} is not JSON`);
  }
}

async function writeOut(io: CliIo, file: string, text: string): Promise<void> {
  try {
    await writeFile(resolve(io.cwd, file), text, 'utf8');
  } catch (cause) {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot write ${file}`, { cause });
  }
}
