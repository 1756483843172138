import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { loadTresorPolicy, type TresorPolicy } from '@tresor/sdk';
import { createNodeTransport, type NodeTransport } from '@tresor/sdk/node';
import type { CliIo } from '../io.js';

/** The policy file read when --policy is not given. */
export const DEFAULT_POLICY_FILE = 'tresor-policy.json';

/** Reads the trust policy: INPUT_UNREADABLE when the file cannot be read, TRUST_POLICY_INVALID when it is wrong (both exit 2). */
export async function readPolicy(file: string | undefined, io: CliIo): Promise<TresorPolicy> {
  const path = resolve(io.cwd, file ?? DEFAULT_POLICY_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new TresorError(
      'INPUT_UNREADABLE',
      `cannot read the trust policy ${path}${file === undefined ? ' (pass --policy <file>)' : ''}`,
      { cause },
    );
  }
  try {
    return loadTresorPolicy(bytes);
  } catch (err) {
    // A policy error is a usage error: the command never ran.
    if (err instanceof TresorError && err.code === 'TRUST_POLICY_INVALID') {
      throw new TresorError('TRUST_POLICY_INVALID', `${path}: ${err.message}`);
    }
    throw err;
  }
}

/** The Node transport, trusting the extra CA in --ca when given. */
export async function transportFor(caFile: string | undefined, io: CliIo): Promise<NodeTransport> {
  if (caFile === undefined) return createNodeTransport();
  const path = resolve(io.cwd, caFile);
  try {
    return createNodeTransport({ ca: await readFile(path, 'utf8') });
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the CA file ${path}`, { cause });
  }
}

export interface ClientOptions {
  readonly policy?: string;
  readonly ca?: string;
}
