import { Command, CommanderError } from 'commander';
import { TresorError } from '@tresor/protocol';
import type { CliIo } from './io.js';
import { reportError } from './report.js';
import { cliVersion } from './version.js';

/** A group of subcommands; each registers itself on the root program. */
export type CommandModule = (program: Command, io: CliIo) => void;

const commandModules: CommandModule[] = [];

export function buildProgram(io: CliIo, modules: readonly CommandModule[] = commandModules): Command {
  const program = new Command('tresor')
    .description(
      'Tresor: confidential AI model serving. Prompts, answers and model weights are readable only inside attested TEEs.',
    )
    .version(cliVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show help for a command')
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Commander's own usage errors are reported in the catalogue format by run() below.
      outputError: () => undefined,
    })
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExit codes: 0 success, 1 refused or verification failed, 2 usage error or unreadable input.\nDocs: docs/ (errors: docs/errors.md).',
  );
  for (const register of modules) register(program, io);
  // Subcommands inherit the output and exit behaviour so `tresor x --bad` is reported the same way.
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput(program.configureOutput()).showSuggestionAfterError(true);
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

export function registerCommands(...modules: CommandModule[]): void {
  commandModules.push(...modules);
}

/** Runs the CLI with `args` (without node and script path) and returns the exit code. */
export async function run(
  args: readonly string[],
  io: CliIo,
  modules?: readonly CommandModule[],
): Promise<number> {
  const program = buildProgram(io, modules);
  if (args.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync([...args], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) {
        return 0;
      }
      if (err.code === 'commander.help') return 0;
      const message = err.message.replace(/^error: /, '');
      return reportError(new TresorError('USAGE_INVALID', message), io);
    }
    return reportError(err, io);
  }
}
