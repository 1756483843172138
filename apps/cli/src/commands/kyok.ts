import { resolve } from 'node:path';
import type { Command } from 'commander';
import { RevocationList, loadKyokServerConfig, parseTenantId, serveKyok } from '@tresor/keystore';
import type { CliIo } from '../io.js';
import type { CommandModule } from '../program.js';
import { untilSignal } from '../signals.js';

interface TenantFlags {
  readonly stateDir: string;
  readonly tenant: string;
}

/**
 * `tresor kyok serve|revoke|reinstate|status`: the reference key server a customer runs on its own
 * premises (keep your own key, docs/keys.md), and the customer's revocation switch.
 */
export const kyokCommands: CommandModule = (program, io) => {
  const kyok = program
    .command('kyok')
    .description("the customer's own key server (KYOK): serve it, revoke or reinstate a tenant's keys");

  kyok
    .command('serve')
    .description('run the key server: HTTPS with TLS 1.3 and client certificates, until SIGINT or SIGTERM')
    .requiredOption('--config <file>', 'server config (JSON; see docs/keys.md)')
    .action(async (flags: { config: string }) => {
      const config = await loadKyokServerConfig(resolve(io.cwd, flags.config));
      const serving = await serveKyok(config, { env: io.env, now: () => io.now() });
      io.stdout.write(
        `kyok key server listening on ${serving.server.url} (${config.keystore.backend} keystore, decisions in ${serving.decisionLog})\n`,
      );
      const signal = await untilSignal();
      await serving.close();
      io.stdout.write(`stopped on ${signal}\n`);
    });

  const tenantCommand = (name: string, description: string): Command =>
    kyok
      .command(name)
      .description(description)
      .requiredOption('--state-dir <dir>', "the key server's state directory (stateDir in its config)")
      .requiredOption('--tenant <id>', 'tenant id');

  tenantCommand(
    'revoke',
    "revoke a tenant's keys: from the next request on, nothing is wrapped, unwrapped or signed for it",
  ).action(async (flags: TenantFlags) => {
    const changed = await revocations(io, flags).revoke(parseTenantId(flags.tenant));
    io.stdout.write(
      `${changed ? 'revoked' : 'already revoked'}: tenant ${flags.tenant}; Tresor stops releasing its keys within 1 s\n`,
    );
  });

  tenantCommand('reinstate', "lift a tenant's revocation").action(async (flags: TenantFlags) => {
    const changed = await revocations(io, flags).reinstate(parseTenantId(flags.tenant));
    io.stdout.write(`${changed ? 'reinstated' : 'was not revoked'}: tenant ${flags.tenant}\n`);
  });

  tenantCommand('status', "show whether a tenant's keys are revoked").action(async (flags: TenantFlags) => {
    const at = await revocations(io, flags).revokedAt(parseTenantId(flags.tenant));
    io.stdout.write(
      at === null ? `tenant ${flags.tenant}: active\n` : `tenant ${flags.tenant}: revoked since ${at}\n`,
    );
  });
};

function revocations(io: CliIo, flags: TenantFlags): RevocationList {
  return new RevocationList(resolve(io.cwd, flags.stateDir), () => io.now());
}
