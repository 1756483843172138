import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { bytesToBase64, ModelKey, parseModelKeyFile } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import { resourceRequestPath, type AdminSigningKey } from '@tresor/trust';
import type { CliIo } from '../io.js';
import { cliPath } from './model-options.js';
import { readAdminKey } from './trust-admin-keys.js';
import { discoverAudience, sendAdminOperation, trustEndpoint, type TrustEndpoint } from './trust-client.js';

/** `tresor model seal --key kbs:///<repo>/<type>/<tag>`: the flags that name the trust service. */
export interface KbsSealFlags {
  readonly key: string;
  readonly keyFile?: string;
  readonly trust?: string;
  readonly trustCa?: string;
  readonly adminKey?: string;
  readonly component: string;
  readonly release?: string;
}

interface ReferenceSet {
  readonly component: string;
  readonly release: string;
  readonly tee: string;
  readonly modelDigests?: readonly string[];
  readonly [member: string]: unknown;
}

/** What the seal needs, prepared before a byte is written: the key, and where to register. */
export interface KbsSealPlan {
  readonly key: ModelKey;
  /** The resource path (`repo/type/tag`). */
  readonly path: string;
  /** Raw key bytes still to upload (the key is new); zeroed by `register`. */
  readonly upload: Uint8Array | undefined;
  readonly sets: readonly ReferenceSet[];
  /** Uploads the key (when new), then adds `sha256` to the reference values' modelDigests. */
  register(sha256: string): Promise<{ readonly created: boolean; readonly sets: number }>;
  /** Zeroes key material not yet uploaded (the seal failed). */
  discard(): void;
}

/**
 * Prepares a KBS-backed seal through the trust service's signed admin API (docs/trust.md "Admin
 * API"): checks the admin key and the service first, finds the reference value sets the digest
 * goes into (the component's sets, or one release's), and decides the key — a fresh random one
 * when the resource does not exist yet; when it does, the admin API never hands a secret back,
 * so the operator must supply the same key with --key-file.
 */
export async function planKbsSeal(io: CliIo, flags: KbsSealFlags, now: () => Date): Promise<KbsSealPlan> {
  if (!flags.key.startsWith('kbs:///')) {
    throw new TresorError(
      'USAGE_INVALID',
      '--key names a trust service resource: kbs:///<repository>/<type>/<tag>',
    );
  }
  const path = resourceRequestPath(flags.key).replace(/^\/kbs\/v0\/resource\//, '');
  const endpoint: TrustEndpoint = await trustEndpoint(io, {
    ...(flags.trust === undefined ? {} : { url: flags.trust }),
    ...(flags.trustCa === undefined ? {} : { ca: flags.trustCa }),
  });
  const admin: AdminSigningKey = await readAdminKey(io, flags.adminKey);
  const audience = await discoverAudience(endpoint);
  const send = (operation: string, request: unknown): Promise<Record<string, unknown>> =>
    sendAdminOperation(endpoint, admin, audience, operation, request, now());

  const listed = await send('reference-values/list', null);
  const all = (Array.isArray(listed.referenceValues) ? listed.referenceValues : []) as ReferenceSet[];
  const sets = all.filter(
    (s) => s.component === flags.component && (flags.release === undefined || s.release === flags.release),
  );
  if (sets.length === 0) {
    throw new TresorError(
      'ADMIN_TARGET_NOT_FOUND',
      `the trust service has no reference values for ${flags.component}${flags.release === undefined ? '' : ` ${flags.release}`}; put them first (tresor trust admin reference-values put)`,
    );
  }
  const resources = await send('resources/list', null);
  const exists = Array.isArray(resources.resources) && resources.resources.includes(path);

  let raw: Uint8Array;
  if (flags.keyFile !== undefined) {
    let contents: Uint8Array;
    try {
      contents = new Uint8Array(await readFile(cliPath(io, flags.keyFile)));
    } catch (cause) {
      throw new TresorError('INPUT_UNREADABLE', `cannot read the key file ${flags.keyFile}`, { cause });
    }
    raw = parseModelKeyFile(contents);
    contents.fill(0);
  } else if (exists) {
    throw new TresorError(
      'USAGE_INVALID',
      `${flags.key} already holds a key and the admin API never returns secrets; pass that key with --key-file, or choose a new tag`,
    );
  } else {
    raw = new Uint8Array(randomBytes(32));
  }
  const key = await ModelKey.import(raw);
  const upload = exists ? undefined : raw;
  if (exists) raw.fill(0);
  return {
    key,
    path,
    upload,
    sets,
    discard: () => upload?.fill(0),
    async register(sha256) {
      // The digest first: a digest without its key releases nothing, while a freshly generated
      // key stored without its digest could never be supplied again (the admin API returns none).
      try {
        for (const set of sets) {
          const digests = new Set(set.modelDigests ?? []);
          if (digests.has(sha256)) continue;
          await send('reference-values/put', { ...set, modelDigests: [...digests, sha256].sort() });
        }
        if (upload !== undefined) await send('resources/put', { path, value: bytesToBase64(upload) });
      } finally {
        upload?.fill(0);
      }
      return { created: upload !== undefined, sets: sets.length };
    },
  };
}
