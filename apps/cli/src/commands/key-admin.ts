import type { Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import type { CommandModule } from '../program.js';
import {
  gatewayAdminCall,
  gatewayAdminOptions,
  integerOption,
  type GatewayAdminFlags,
} from './gateway-client.js';

const SCOPES = ['chat', 'completions', 'embeddings', 'models'];

/**
 * `tresor key create|revoke|list`: API keys of the gateway's tenants (not `tresor keys`, which
 * manages the keystore). A new key is printed once, on stdout; only its salted hash is stored.
 */
export const keyAdminCommands: CommandModule = (program, io) => {
  const key = gatewayAdminOptions(
    program
      .command('key')
      .description("API keys of the gateway's tenants (for keystore keys see `tresor keys`)"),
  );
  key
    .command('create')
    .description('create an API key; it is printed once and cannot be shown again')
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--name <name>', 'what the key is for')
    .option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')} (default all)`)
    .option('--expires <time>', 'ISO 8601 expiry, e.g. 2026-01-01T00:00:00Z')
    .option('--requests-per-minute <n>', 'request rate limit of this key')
    .option('--tokens-per-day <n>', 'token quota of this key')
    .action(
      async (
        opts: {
          tenant: string;
          name?: string;
          scopes?: string;
          expires?: string;
          requestsPerMinute?: string;
          tokensPerDay?: string;
        },
        command: Command,
      ) => {
        const flags = command.optsWithGlobals<GatewayAdminFlags>();
        const scopes = opts.scopes
          ?.split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        if (scopes?.some((s) => !SCOPES.includes(s)) === true) {
          throw new TresorError('USAGE_INVALID', `--scopes takes ${SCOPES.join(', ')}`);
        }
        if (opts.expires !== undefined && Number.isNaN(Date.parse(opts.expires))) {
          throw new TresorError('USAGE_INVALID', '--expires takes an ISO 8601 time');
        }
        const rpm = integerOption('--requests-per-minute', opts.requestsPerMinute);
        const tpd = integerOption('--tokens-per-day', opts.tokensPerDay);
        const answer = await gatewayAdminCall(io, flags, 'api-keys/create', {
          tenant: opts.tenant,
          ...(opts.name === undefined ? {} : { name: opts.name }),
          ...(scopes === undefined ? {} : { scopes }),
          ...(opts.expires === undefined ? {} : { expiresAt: new Date(opts.expires).toISOString() }),
          ...(rpm === undefined ? {} : { requestsPerMinute: rpm }),
          ...(tpd === undefined ? {} : { tokensPerDay: tpd }),
        });
        if (flags.json === true) {
          io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        } else {
          io.stderr.write(
            `created API key ${String(answer.id)} for ${opts.tenant}; it is shown once, store it now\n`,
          );
          io.stdout.write(`${String(answer.key)}\n`);
        }
      },
    );
  key
    .command('revoke <id>')
    .description('revoke an API key by its id (the 16 characters after tr_)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals<GatewayAdminFlags>();
      const answer = await gatewayAdminCall(io, flags, 'api-keys/revoke', { id });
      io.stdout.write(
        flags.json === true
          ? `${JSON.stringify(answer, null, 2)}\n`
          : `revoked ${id} at ${String(answer.revokedAt)}\n`,
      );
    });
  key
    .command('list')
    .description("list a tenant's API keys (ids and metadata only)")
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (opts: { tenant: string }, command: Command) => {
      const flags = command.optsWithGlobals<GatewayAdminFlags>();
      const answer = await gatewayAdminCall(io, flags, 'api-keys/list', { tenant: opts.tenant });
      const keys = Array.isArray(answer.keys) ? (answer.keys as Record<string, unknown>[]) : [];
      io.stdout.write(
        flags.json === true
          ? `${JSON.stringify(answer, null, 2)}\n`
          : `${keys
              .map(
                (k) =>
                  `${String(k.id)}\t${k.revokedAt === null ? 'active' : 'revoked'}\t${(k.scopes as string[]).join(',')}\t${String(k.name)}`,
              )
              .join('\n')}\n`,
      );
    });
};
