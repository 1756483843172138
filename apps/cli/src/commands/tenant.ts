import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import type { CommandModule } from '../program.js';
import type { CliIo } from '../io.js';
import {
  gatewayAdminCall,
  gatewayAdminOptions,
  integerOption,
  type GatewayAdminFlags,
} from './gateway-client.js';

function print(io: CliIo, flags: GatewayAdminFlags, answer: Record<string, unknown>, text: string): void {
  io.stdout.write(flags.json === true ? `${JSON.stringify(answer, null, 2)}\n` : text);
}

/** `tresor tenant create|list|policy`: the gateway's tenants, by signed admin requests. */
export const tenantCommands: CommandModule = (program, io) => {
  const tenant = gatewayAdminOptions(
    program.command('tenant').description("the gateway's tenants (signed admin requests, audited)"),
  );
  tenant
    .command('create <id>')
    .description('create a tenant (lowercase letters, digits and "-")')
    .option('--name <name>', 'display name')
    .option('--requests-per-minute <n>', 'request rate limit of the whole tenant')
    .option('--tokens-per-day <n>', 'token quota of the whole tenant')
    .action(
      async (
        id: string,
        opts: { name?: string; requestsPerMinute?: string; tokensPerDay?: string },
        command: Command,
      ) => {
        const flags = command.optsWithGlobals<GatewayAdminFlags>();
        const rpm = integerOption('--requests-per-minute', opts.requestsPerMinute);
        const tpd = integerOption('--tokens-per-day', opts.tokensPerDay);
        const answer = await gatewayAdminCall(io, flags, 'tenants/create', {
          id,
          ...(opts.name === undefined ? {} : { name: opts.name }),
          ...(rpm === undefined ? {} : { requestsPerMinute: rpm }),
          ...(tpd === undefined ? {} : { tokensPerDay: tpd }),
        });
        print(io, flags, answer, `created tenant ${id}\n`);
      },
    );
  tenant
    .command('list')
    .description('list the tenants')
    .action(async (_opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals<GatewayAdminFlags>();
      const answer = await gatewayAdminCall(io, flags, 'tenants/list', null);
      const tenants = Array.isArray(answer.tenants) ? (answer.tenants as Record<string, unknown>[]) : [];
      print(
        io,
        flags,
        answer,
        `${tenants.map((t) => `${String(t.id)}\t${String(t.name)}\t${String(t.createdAt)}`).join('\n')}\n`,
      );
    });
  tenant
    .command('policy <tenant> <file>')
    .description("replace the tenant's Cedar policy with the policies in <file> (default deny)")
    .action(async (id: string, file: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals<GatewayAdminFlags>();
      let policy: string;
      try {
        policy = await readFile(resolve(io.cwd, file), 'utf8');
      } catch (cause) {
        throw new TresorError('INPUT_UNREADABLE', `cannot read ${file}`, { cause });
      }
      const answer = await gatewayAdminCall(io, flags, 'policies/set', { tenant: id, policy });
      print(
        io,
        flags,
        answer,
        `policy of ${id} now version ${String(answer.version)} (sha256 ${String(answer.sha256)})\n`,
      );
    });
};
