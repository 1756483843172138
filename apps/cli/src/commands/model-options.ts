import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '@tresor/crypto';
import type { CliIo } from '../io.js';

const SIZE = /^(\d+)(|B|KiB|MiB)$/;
const MULTIPLIER: Readonly<Record<string, number>> = { '': 1, B: 1, KiB: 1024, MiB: 1024 * 1024 };

/** `--chunk-size`: bytes, or a number with KiB or MiB. */
export function parseChunkSize(text: string): number {
  const match = SIZE.exec(text);
  const size = match === null ? Number.NaN : Number(match[1]) * MULTIPLIER[match[2]!]!;
  if (!Number.isSafeInteger(size) || size < MIN_CHUNK_SIZE || size > MAX_CHUNK_SIZE) {
    throw new InvalidArgumentError(
      `expected a size from ${String(MIN_CHUNK_SIZE)} B to ${String(MAX_CHUNK_SIZE / 1024 / 1024)} MiB, such as 4MiB or 65536`,
    );
  }
  return size;
}

/** `--meta key=value`, repeatable; the sealer checks the key and value themselves. */
export function collectMetadata(
  text: string,
  previous: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...previous, [text.slice(0, equals)]: text.slice(equals + 1) };
}

/** Paths on the command line are relative to the caller's working directory. */
export function cliPath(io: CliIo, path: string): string {
  return resolve(io.cwd, path);
}
