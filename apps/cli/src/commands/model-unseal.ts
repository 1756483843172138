import type { Command } from 'commander';
import { readModelKeyFile, unsealModelFile } from '@tresor/crypto/node';
import type { CliIo } from '../io.js';
import { createProgress } from '../progress.js';
import { withInterrupts } from './model-interrupt.js';
import { cliPath } from './model-options.js';

interface UnsealFlags {
  readonly output: string;
  readonly keyFile: string;
  readonly force?: boolean;
}

export function registerModelUnseal(model: Command, io: CliIo): void {
  model
    .command('unseal')
    .description('decrypt and verify a .tresor file; the output appears only if every check passed')
    .argument('<in>', 'sealed model (.tresor)')
    .requiredOption('-o, --output <file>', 'plaintext model file to write (created with mode 0600)')
    .requiredOption('--key-file <file>', 'model key: 32 raw bytes or 64 hex digits')
    .option('--force', 'overwrite the output if it exists')
    .action(async (input: string, flags: UnsealFlags) => {
      const key = await readModelKeyFile(cliPath(io, flags.keyFile));
      const progress = createProgress(io);
      try {
        const header = await withInterrupts(io, (signal) =>
          unsealModelFile({
            input: cliPath(io, input),
            output: cliPath(io, flags.output),
            key,
            force: flags.force === true,
            signal,
            onProgress: (p) => {
              progress.update(p.phase, p.bytes, p.total);
            },
          }),
        );
        progress.finish();
        io.stdout.write(
          `unsealed ${input} -> ${flags.output}: ${String(header.plaintextLength)} bytes, sha256 ${header.plaintextSha256} verified\n`,
        );
      } finally {
        progress.finish();
      }
    });
}
