import type { Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import type { CommandModule } from '../program.js';
import {
  gatewayAdminCall,
  gatewayAdminOptions,
  integerOption,
  type GatewayAdminFlags,
} from './gateway-client.js';

/** `tresor usage --tenant <id>`: a tenant's minimal metadata (tokens, latency, status, time; never content). */
export const usageCommands: CommandModule = (program, io) => {
  gatewayAdminOptions(program.command('usage'))
    .description("export a tenant's usage records from the gateway (signed admin request)")
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--from <time>', 'ISO 8601, inclusive')
    .option('--to <time>', 'ISO 8601, exclusive')
    .option('--limit <n>', 'at most this many records (default 1000)')
    .action(
      async (opts: { tenant: string; from?: string; to?: string; limit?: string }, command: Command) => {
        const flags = command.optsWithGlobals<GatewayAdminFlags>();
        for (const [name, value] of [
          ['--from', opts.from],
          ['--to', opts.to],
        ] as const) {
          if (value !== undefined && Number.isNaN(Date.parse(value))) {
            throw new TresorError('USAGE_INVALID', `${name} takes an ISO 8601 time`);
          }
        }
        const limit = integerOption('--limit', opts.limit);
        const answer = await gatewayAdminCall(io, flags, 'usage', {
          tenant: opts.tenant,
          ...(opts.from === undefined ? {} : { from: new Date(opts.from).toISOString() }),
          ...(opts.to === undefined ? {} : { to: new Date(opts.to).toISOString() }),
          ...(limit === undefined ? {} : { limit }),
        });
        if (flags.json === true) {
          io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
          return;
        }
        const totals = answer.totals as { requests: number; promptTokens: number; completionTokens: number };
        const records = Array.isArray(answer.records) ? (answer.records as Record<string, unknown>[]) : [];
        const lines = records.map(
          (r) =>
            `${String(r.time)}\t${String(r.apiKeyId)}\t${typeof r.model === 'string' ? r.model : '(withheld)'}\t${String(r.promptTokens)}+${String(r.completionTokens)}\t${String(r.latencyMs)} ms\t${String(r.status)}`,
        );
        io.stdout.write(
          `${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${opts.tenant}: ${totals.requests} requests, ${totals.promptTokens} prompt + ${totals.completionTokens} completion tokens\n`,
        );
      },
    );
};
