import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64, bytesToHex, toArrayBuffer, utf8Encode } from '@tresor/crypto';
import { CedarResourcePolicy } from '../resource-policy/resource-policy.js';
import { parseResourcePath, type ResourcePath } from '../resources/resource-path.js';
import { MAX_RESOURCE_BYTES } from '../resources/resource-store.js';
import { schemaProblem } from '../signed-documents/schema-problem.js';
import type { SignedPolicyFile } from '../policies/signed-policy-file.js';
import { adminOperation, type AdminOperation } from './admin-operation.js';

/** What the admin API needs of the resource store: write, remove and list names, never read a secret back. */
export interface ResourceAdministration {
  put(path: ResourcePath, secret: Uint8Array): Promise<void>;
  remove(path: ResourcePath): Promise<void>;
  list(): Promise<readonly ResourcePath[]>;
}

/** What the admin API needs of the resource policy: the text in force and replacing it whole. */
export interface ResourcePolicyAdministration {
  readonly text: string;
  /** @throws TresorError RESOURCE_POLICY_INVALID */
  replace(text: string): void;
}

const putSchema = z.strictObject({
  path: z.string().max(400),
  /**
   * `false`: create only, refusing (STORAGE_CONFLICT) when a secret is stored at the path already.
   * A model key must never be overwritten: models sealed under the old one would no longer open.
   */
  replace: z.boolean().default(true),
  /** Standard base64 of the secret (1 to 64 KiB). */
  value: z
    .string()
    .min(1)
    .max(Math.ceil(MAX_RESOURCE_BYTES / 3) * 4 + 4),
});
const pathSchema = z.strictObject({ path: z.string().max(400) });
const policySchema = z.strictObject({ policy: z.string().max(256 * 1024) });

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new TresorError('INPUT_MALFORMED', `${what} ${schemaProblem(parsed.error)}`);
  return parsed.data;
}

interface ResourceWrite {
  readonly path: ResourcePath;
  readonly secret: Uint8Array;
  readonly replace: boolean;
}

/**
 * `resources/put`, `resources/delete`, `resources/list`. A secret goes in through a signed
 * request and never comes out of the admin API: responses and audit records name the path and the
 * size only.
 */
export function resourceOperations(store: ResourceAdministration): readonly AdminOperation<unknown>[] {
  return [
    adminOperation<ResourceWrite>({
      name: 'resources/put',
      summary: 'Store (or replace) the secret at repository/type/tag, sealed under the keystore.',
      mutates: true,
      parse: (value) => {
        const request = parse(putSchema, value, 'the resource');
        const path = parseResourcePath(request.path);
        let secret: Uint8Array;
        try {
          secret = base64ToBytes(request.value);
        } catch (cause) {
          throw new TresorError('INPUT_MALFORMED', 'the resource value is not base64', { cause });
        }
        if (bytesToBase64(secret) !== request.value.replace(/[\r\n]/g, '')) {
          secret.fill(0);
          throw new TresorError(
            'INPUT_MALFORMED',
            'the resource value is not canonical padded standard base64',
          );
        }
        return { path, secret, replace: request.replace };
      },
      target: ({ path }) => `resource:${path.text}`,
      run: async ({ path, secret, replace }, commit) => {
        try {
          if (secret.length === 0 || secret.length > MAX_RESOURCE_BYTES) {
            throw new TresorError('INPUT_MALFORMED', `a resource is 1 to ${MAX_RESOURCE_BYTES} bytes`);
          }
          if (!replace && (await store.list()).some((p) => p.text === path.text)) {
            throw new TresorError(
              'STORAGE_CONFLICT',
              `a resource is stored at ${path.text} already; it is not replaced (create only)`,
            );
          }
          // Audited first: a secret the log does not know of is never stored.
          await commit({ bytes: secret.length });
          await store.put(path, secret);
          return { path: path.text, bytes: secret.length };
        } finally {
          secret.fill(0);
        }
      },
    }),
    adminOperation<ResourcePath>({
      name: 'resources/delete',
      summary: 'Delete the secret at repository/type/tag.',
      mutates: true,
      parse: (value) => parseResourcePath(parse(pathSchema, value, 'the resource').path),
      target: (path) => `resource:${path.text}`,
      run: async (path, commit) => {
        const listed = (await store.list()).some((p) => p.text === path.text);
        if (!listed) throw new TresorError('RESOURCE_NOT_FOUND', `no resource ${path.text}`);
        await commit({});
        await store.remove(path);
        return { path: path.text, deleted: true };
      },
    }),
    adminOperation({
      name: 'resources/list',
      summary: 'The paths of the stored resources (names only, never values).',
      mutates: false,
      parse: () => null,
      target: () => '',
      run: async () => ({ resources: (await store.list()).map((p) => p.text).sort() }),
    }),
  ];
}

/** JWS `typ` of the resource policy stored in the state directory. */
export const RESOURCE_POLICY_TYPE = 'tresor-resource-policy+jwt';

/**
 * `resource-policy/set`, `resource-policy/get`. With `file`, a policy set is signed and stored in
 * the state directory before it takes effect, so it is still in force after a restart.
 */
export function resourcePolicyOperations(
  policy: ResourcePolicyAdministration,
  file?: SignedPolicyFile<string>,
): readonly AdminOperation<unknown>[] {
  return [
    adminOperation<string>({
      name: 'resource-policy/set',
      summary: 'Replace the Cedar resource policy (validated against the Tresor schema; default deny).',
      mutates: true,
      parse: (value) => {
        const { policy: text } = parse(policySchema, value, 'the resource policy request');
        CedarResourcePolicy.check(text);
        return text;
      },
      target: () => 'resource-policy',
      run: async (text, commit) => {
        const digest = await sha256Hex(text);
        if (file === undefined) {
          await commit({ sha256: digest, characters: text.length });
          policy.replace(text);
          return { sha256: digest };
        }
        const stored = await file.save(text, (version) =>
          commit({ sha256: digest, characters: text.length, version }),
        );
        policy.replace(text);
        return { sha256: digest, version: stored.version };
      },
    }),
    adminOperation({
      name: 'resource-policy/get',
      summary: 'The Cedar resource policy in force.',
      mutates: false,
      parse: () => null,
      target: () => '',
      run: async () => ({
        policy: policy.text,
        sha256: await sha256Hex(policy.text),
        ...(file === undefined ? {} : { version: file.stored?.version ?? 0 }),
      }),
    }),
  ];
}

async function sha256Hex(text: string): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', toArrayBuffer(utf8Encode(text)))));
}
