import type { CommandModule } from '../program.js';
import { verifyAuditCommand } from './audit-verify.js';

/** `tresor audit …`: the tamper-evident audit log (docs/storage.md). */
export const auditCommands: CommandModule = (program, io) => {
  const audit = program.command('audit').description('inspect the tamper-evident audit log');
  audit
    .command('verify')
    .description(
      'verify the audit log: every record chained to the one before, every checkpoint signed, nothing cut from the tail',
    )
    .option('--dir <state dir>', 'local state directory (SQLite database tresor.db)')
    .option('--db <postgres url>', 'PostgreSQL URL (put the password in PGPASSWORD, not on the command line)')
    .option('--schema <name>', 'PostgreSQL schema holding the Tresor tables (with --db)')
    .option(
      '--public-key <file>',
      'checkpoint public key: JWK, JWK Set or PEM (default with --dir: <dir>/audit-public-key.jwks)',
    )
    .option('--json', 'print the verification report as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 intact; 1 a record was deleted, edited or reordered, the tail was truncated, or a checkpoint is forged;\n2 the directory or database cannot be read.',
    )
    .action(async (options: Record<string, unknown>) => {
      await verifyAuditCommand(options, io);
    });
};
