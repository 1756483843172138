import type { Command } from 'commander';
import { chunkCount } from '@tresor/crypto';
import { inspectSealedModelFile, type SealedModelFileInfo } from '@tresor/crypto/node';
import type { CliIo } from '../io.js';
import { formatBytes } from '../progress.js';
import { cliPath } from './model-options.js';

interface InspectFlags {
  readonly json?: boolean;
}

export function registerModelInspect(model: Command, io: CliIo): void {
  model
    .command('inspect')
    .description('show the header of a .tresor file (no key needed; nothing is decrypted or authenticated)')
    .argument('<file>', 'sealed model (.tresor)')
    .option('--json', 'print the header as JSON')
    .action(async (file: string, flags: InspectFlags) => {
      const info = await inspectSealedModelFile(cliPath(io, file));
      io.stdout.write(
        flags.json === true ? `${JSON.stringify(info.header, null, 2)}\n` : describe(file, info),
      );
    });
}

/** Header fields are validated printable text (no control characters), so they are safe to print. */
function describe(file: string, { header, fileSize, sealedSize }: SealedModelFileInfo): string {
  const chunks = chunkCount(header.plaintextLength, header.chunkSize);
  const rows: [string, string][] = [
    ['file', `${file} (${String(fileSize)} bytes)`],
    ['format', `tresor sealed model, version ${String(header.version)}`],
    ['algorithm', header.algorithm],
    ['key id', header.keyId],
    ['key fingerprint', header.keyFingerprint],
    ['plaintext', `${String(header.plaintextLength)} bytes (${formatBytes(header.plaintextLength)})`],
    ['sha256', header.plaintextSha256],
    ['chunks', `${String(chunks)} of ${String(header.chunkSize)} bytes`],
  ];
  const metadata = Object.entries(header.metadata);
  metadata.forEach(([key, value], i) => rows.push([i === 0 ? 'metadata' : '', `${key}=${value}`]));
  if (fileSize !== sealedSize) {
    rows.push([
      'warning',
      `the header describes ${String(sealedSize)} bytes: the file was ${fileSize < sealedSize ? 'cut short' : 'extended'}`,
    ]);
  }
  rows.push(['note', 'not authenticated: inspect reads the header without the key; unseal verifies it']);
  return rows.map(([name, value]) => `${name.padEnd(16)} ${value}\n`).join('');
}
