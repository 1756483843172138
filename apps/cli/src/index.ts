import { registerCommands, run } from './program.js';
import { processIo } from './io.js';
import { modelCommands } from './commands/model.js';
import { attestCommands } from './commands/attest.js';
import { keysCommands } from './commands/keys.js';
import { kyokCommands } from './commands/kyok.js';
import { trustCommands } from './commands/trust.js';
import { auditCommands } from './commands/audit.js';
import { servingCommands } from './commands/serving.js';
import { gatewayCommands } from './commands/gateway.js';
import { tenantCommands } from './commands/tenant.js';
import { keyAdminCommands } from './commands/key-admin.js';
import { usageCommands } from './commands/usage.js';
import { clientCommands } from './commands/verify.js';
import { deployCommands } from './commands/deploy.js';
import { upCommands } from './commands/up.js';
import { consoleCommands } from './commands/console.js';

export { run, buildProgram, type CommandModule } from './program.js';
export { processIo, type CliIo } from './io.js';
export { reportError } from './report.js';

registerCommands(modelCommands);
registerCommands(attestCommands);
registerCommands(keysCommands);
registerCommands(kyokCommands);
registerCommands(trustCommands);
registerCommands(auditCommands);
registerCommands(servingCommands);
registerCommands(gatewayCommands, tenantCommands, keyAdminCommands, usageCommands);
registerCommands(clientCommands);
registerCommands(deployCommands);
registerCommands(upCommands);
registerCommands(consoleCommands);

/** Entry point of the `tresor` bin. */
export async function runFromProcess(): Promise<void> {
  const code = await run(process.argv.slice(2), processIo());
  // `tresor verify` reports a failed verification by printing its checklist and setting
  // process.exitCode = 1 rather than throwing; a successful `run` must not overwrite that.
  process.exitCode = code === 0 && process.exitCode === 1 ? 1 : code;
}
