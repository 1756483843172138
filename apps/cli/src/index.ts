import { registerCommands, run } from './program.js';
import { processIo } from './io.js';

export { run, buildProgram, type CommandModule } from './program.js';
export { processIo, type CliIo } from './io.js';
export { reportError } from './report.js';

registerCommands();

/** Entry point of the `tresor` bin. */
export async function runFromProcess(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2), processIo());
}
