import { InvalidArgumentError } from 'commander';
import { isTresorError } from '@tresor/protocol';
import type { CommandModule } from '../program.js';
import { untilSignal } from '../signals.js';
import { DEFAULT_STATE_DIR } from '../platform/layout.js';
import { DEFAULT_GATEWAY_PORT, parsePortFlag } from '../platform/ports.js';
import { DEFAULT_MODEL_ID, runUp } from '../platform/platform.js';

interface UpFlags {
  readonly dir: string;
  readonly port: number;
  readonly model: string;
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseModelId(text: string): string {
  if (!MODEL_ID.test(text)) {
    throw new InvalidArgumentError('a model id: letters, digits and . _ - (at most 64), e.g. tresor-demo');
  }
  return text;
}

function portOption(text: string): number {
  try {
    return parsePortFlag(text);
  } catch (err) {
    throw new InvalidArgumentError(isTresorError(err) ? err.message : String(err));
  }
}

/** `tresor up`: the whole platform on this machine (what `npm start` runs). */
export const upCommands: CommandModule = (program, io) => {
  program
    .command('up')
    .description(
      'run the whole platform locally (trust, serving, gateway; sample TEE, demo model) until Ctrl-C',
    )
    .option(
      '--dir <dir>',
      'state directory (created 0700 on the first start, reused later)',
      DEFAULT_STATE_DIR,
    )
    .option(
      '--port <n>',
      `gateway port; trust takes n+1 and serving n+2 (default ${String(DEFAULT_GATEWAY_PORT)})`,
      portOption,
      DEFAULT_GATEWAY_PORT,
    )
    .option('--model <id>', 'id of the demo model', parseModelId, DEFAULT_MODEL_ID)
    .addHelpText(
      'after',
      '\nThe first start creates the state directory: keystore, keys, local CA, sealed demo model, tenant\n' +
        'and API key. It prints `Tresor is ready: <gateway-url>` and writes the same facts to\n' +
        '<dir>/local.json. Ctrl-C stops every process; if one dies, all stop and its last log lines\n' +
        'are printed (exit 1). The sample TEE protects nothing: local development only (docs/operations.md).',
    )
    .action(async (flags: UpFlags) => {
      // After the first Ctrl-C, further ones must not kill this process half-way through stopping
      // the others (it removes serving's decrypted models last): they only say it is under way.
      const again = (): void => {
        io.stderr.write('still stopping the platform processes…\n');
      };
      const stop = untilSignal().then((signal) => {
        process.on('SIGINT', again);
        process.on('SIGTERM', again);
        return signal;
      });
      try {
        await runUp(io, { dir: flags.dir, gatewayPort: flags.port, model: flags.model, stop });
      } finally {
        process.off('SIGINT', again);
        process.off('SIGTERM', again);
      }
    });
};
