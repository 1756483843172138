import { unlink } from 'node:fs/promises';
import type { Command } from 'commander';
import { chunkCount, DEFAULT_CHUNK_SIZE } from '@tresor/crypto';
import { readModelKeyFile, sealModelFile } from '@tresor/crypto/node';
import { TresorError } from '@tresor/protocol';
import type { CliIo } from '../io.js';
import { createProgress, formatBytes } from '../progress.js';
import { withInterrupts } from './model-interrupt.js';
import { cliPath, collectMetadata, parseChunkSize } from './model-options.js';
import { planKbsSeal, type KbsSealPlan } from './model-seal-kbs.js';

interface SealFlags {
  readonly output: string;
  readonly keyFile?: string;
  readonly keyId?: string;
  readonly key?: string;
  readonly trust?: string;
  readonly trustCa?: string;
  readonly adminKey?: string;
  readonly component: string;
  readonly release?: string;
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
    .option('--key-file <file>', 'model key: 32 raw bytes or 64 hex digits')
    .option(
      '--key <uri>',
      'kbs:///<repo>/<type>/<tag>: create (or, with --key-file, reuse) the key in the trust service and register the digest',
    )
    .option('--trust <url>', 'trust service for --key (default $TRESOR_TRUST_URL)')
    .option('--trust-ca <file>', "CA of the trust service's certificate (default $TRESOR_TRUST_CA)")
    .option('--admin-key <file>', 'admin key (private JWK) for --key (default $TRESOR_ADMIN_KEY)')
    .option('--component <name>', 'whose reference values get the digest (with --key)', 'serving')
    .option('--release <release>', 'only this release of the component (with --key; default every release)')
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
      if (flags.key === undefined && flags.keyFile === undefined) {
        throw new TresorError(
          'USAGE_INVALID',
          'name the model key: --key-file <file> or --key kbs:///<repo>/<type>/<tag>',
        );
      }
      if (flags.key !== undefined && flags.keyId !== undefined) {
        throw new TresorError('USAGE_INVALID', '--key names the key id itself; drop --key-id');
      }
      const plan: KbsSealPlan | undefined =
        flags.key === undefined
          ? undefined
          : await planKbsSeal(io, { ...flags, key: flags.key }, () => io.now());
      const key = plan?.key ?? (await readModelKeyFile(cliPath(io, flags.keyFile ?? '')));
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
            ...(flags.key === undefined ? {} : { keyId: flags.key }),
            ...(flags.keyId === undefined ? {} : { keyId: flags.keyId }),
          }),
        ).catch((err: unknown) => {
          plan?.discard();
          throw err;
        });
        progress.finish();
        if (plan !== undefined) {
          // Nothing half-done: if the key or the digest cannot be registered, the sealed file goes too.
          const registered = await plan.register(header.plaintextSha256).catch(async (err: unknown) => {
            await unlink(output).catch(() => undefined);
            throw err;
          });
          io.stdout.write(
            `${registered.created ? 'created' : 'reused'} key ${flags.key ?? ''} in the trust service; digest ${header.plaintextSha256} registered in ${String(registered.sets)} reference value set${registered.sets === 1 ? '' : 's'}\n`,
          );
        }
        const chunks = chunkCount(header.plaintextLength, header.chunkSize);
        io.stdout.write(
          `sealed ${input} -> ${flags.output}: ${String(header.plaintextLength)} bytes in ${String(chunks)} chunk${chunks === 1 ? '' : 's'} of ${formatBytes(header.chunkSize)}, key id ${header.keyId}\n`,
        );
      } finally {
        progress.finish();
      }
    });
}
