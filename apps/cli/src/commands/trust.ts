import type { CommandModule } from '../program.js';
import { registerTrustAdmin } from './trust-admin.js';
import { registerTrustServe } from './trust-serve.js';

/** `tresor trust serve|admin`: the trust service and its signed admin API (docs/trust.md). */
export const trustCommands: CommandModule = (program, io) => {
  const trust = program
    .command('trust')
    .description('the trust service: key broker, attestation, reference values, residency inventory, mesh CA')
    .addHelpText('after', '\nSee docs/trust.md for the config file, the admin API and the KBS protocol.');
  registerTrustServe(trust, io);
  registerTrustAdmin(trust, io);
};
