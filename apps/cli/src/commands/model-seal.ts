import type { Command } from 'commander';
import { chunkCount, DEFAULT_CHUNK_SIZE } from '@tresor/crypto';
import { readModelKeyFile, sealModelFile } from '@tresor/crypto/node';
import type { CliIo } from '../io.js';
import { createProgress, formatBytes } from '../progress.js';
import { withInterrupts } from './model-interrupt.js';
import { cliPath, collectMetadata, parseChunkSize } from './model-options.js';

interface SealFlags {
  readonly output: string;
  readonly keyFile: string;
  readonly keyId?: string;
  readonly chunkSize: number;
  readonly name?: string;
  readonly meta?: Readonly<Record<string, string>>;
  readonly force?: boolean;
}

export function registerModelSeal(model: Command, io: CliIo): void {
  model
    .command('seal')
    .description('encrypt a model file into a .tresor file (AES-256-GCM chunks, authenticated header)')
    .argument('<in>', 'model file to seal')
    .requiredOption('-o, --output <file>', 'sealed file to write (.tresor)')
    .requiredOption('--key-file <file>', 'model key: 32 raw bytes or 64 hex digits')
    .option(
      '--key-id <id>',
      'name the key is released under, e.g. kbs:///repo/type/tag (default: its fingerprint)',
    )
    .option(
      '--chunk-size <size>',
      'plaintext bytes per chunk, e.g. 4MiB or 65536',
      parseChunkSize,
      DEFAULT_CHUNK_SIZE,
    )
    .option('--name <name>', 'model name to record in the header (metadata "name")')
    .option('--meta <key=value>', 'metadata to record in the header (repeatable)', collectMetadata)
    .option('--force', 'overwrite the output if it exists')
    .action(async (input: string, flags: SealFlags) => {
      const key = await readModelKeyFile(cliPath(io, flags.keyFile));
      const metadata = { ...flags.meta, ...(flags.name === undefined ? {} : { name: flags.name }) };
      const output = cliPath(io, flags.output);
      const progress = createProgress(io);
      try {
        const header = await withInterrupts(io, (signal) =>
          sealModelFile({
            input: cliPath(io, input),
            output,
            key,
            chunkSize: flags.chunkSize,
            metadata,
            force: flags.force === true,
            signal,
            onProgress: (p) => {
              progress.update(p.phase, p.bytes, p.total);
            },
            ...(flags.keyId === undefined ? {} : { keyId: flags.keyId }),
          }),
        );
        progress.finish();
        const chunks = chunkCount(header.plaintextLength, header.chunkSize);
        io.stdout.write(
          `sealed ${input} -> ${flags.output}: ${String(header.plaintextLength)} bytes in ${String(chunks)} chunk${chunks === 1 ? '' : 's'} of ${formatBytes(header.chunkSize)}, key id ${header.keyId}\n`,
        );
      } finally {
        progress.finish();
      }
    });
}
