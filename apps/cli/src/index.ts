import { registerCommands, run } from './program.js';
import { processIo } from './io.js';
import { modelCommands } from './commands/model.js';
import { attestCommands } from './commands/attest.js';
import { keysCommands } from './commands/keys.js';
import { kyokCommands } from './commands/kyok.js';
import { trustCommands } from './commands/trust.js';
import { auditCommands } from './commands/audit.js';

export { run, buildProgram, type CommandModule } from './program.js';
export { processIo, type CliIo } from './io.js';
export { reportError } from './report.js';

registerCommands(modelCommands);
registerCommands(attestCommands);
registerCommands(keysCommands);
registerCommands(kyokCommands);
registerCommands(trustCommands);
registerCommands(auditCommands);

/** Entry point of the `tresor` bin. */
export async function runFromProcess(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), processIo());
}
