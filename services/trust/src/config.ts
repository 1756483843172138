import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { appraisalPolicySchema } from '@tresor/attestation';
import { configInvalid, deepFreeze, serverConfigSchema } from '@tresor/server-kit';
import { DEFAULT_SESSION_TTL_SECONDS } from './kbs/protocol.js';
import { productionPolicyProblems } from './policies/attestation-policy.js';

/**
 * The trust service configuration (docs/trust.md lists every setting): validated at start-up,
 * defaults filled in, frozen. Production mode refuses settings that only make sense locally or in
 * tests: the sample TEE, unsigned sample evidence, debug TEEs and evidence that does not bind the
 * session's nonce and the TEE's key.
 */

const KIB = 1024;
const MIB = 1024 * KIB;

export const trustConfigSchema = z
  .strictObject({
    /** `production` refuses the sample TEE, unsigned sample evidence, debug TEEs and unbound evidence. */
    mode: z.enum(['development', 'production']).default('development'),
    /** `iss` of attestation tokens; relying parties (the KYOK key server) pin it. */
    issuer: z.string().min(1).max(200).default('tresor-trust'),
    server: serverConfigSchema,
    kbs: z
      .strictObject({
        /** Session lifetime from /auth; Trustee's default is 5 minutes. */
        sessionTtlSeconds: z.number().int().min(10).max(3600).default(DEFAULT_SESSION_TTL_SECONDS),
        /** Live sessions at most; /auth answers RATE_LIMITED beyond. */
        maxSessions: z.number().int().min(1).max(1_000_000).default(10_000),
        /** Largest /auth body. */
        authBodyBytes: z
          .number()
          .int()
          .min(256)
          .max(MIB)
          .default(16 * KIB),
        /** Largest /attest body: SNP and TDX evidence are tens of KiB, eight GPUs' evidence about 150 KiB as a JSON string. */
        attestBodyBytes: z
          .number()
          .int()
          .min(4 * KIB)
          .max(16 * MIB)
          .default(4 * MIB),
      })
      .prefault({}),
    tokens: z
      .strictObject({
        /** Attestation token lifetime; short, because a token is a bearer credential for key release. */
        lifetimeSeconds: z.number().int().min(10).max(3600).default(300),
      })
      .prefault({}),
    attestation: z
      .strictObject({
        /** The appraisal policy (docs/attestation.md): debug, TCB, VMPL, sample TEE, static measurements. */
        policy: appraisalPolicySchema.prefault({}),
        /** The installation's sample TEE public key (Ed25519 JWK or 64 hex digits), local mode only. */
        sampleVerifyKey: z.string().min(1).max(4096).optional(),
        /** Accept unsigned Trustee-style sample evidence (interoperability tests only: anyone can forge it). */
        acceptUnsignedSample: z.boolean().default(false),
      })
      .prefault({}),
    /** The initial resource policy (Cedar); empty = nothing is released until an admin sets one. */
    resourcePolicy: z
      .string()
      .max(256 * KIB)
      .default(''),
  })
  .superRefine((config, ctx) => {
    if (config.mode !== 'production') return;
    const refuse = (path: (string | number)[], message: string): void => {
      ctx.addIssue({ code: 'custom', path, message });
    };
    for (const { field, message } of productionPolicyProblems(config.attestation.policy)) {
      refuse(['attestation', 'policy', field], message);
    }
    if (config.attestation.acceptUnsignedSample) {
      refuse(['attestation', 'acceptUnsignedSample'], 'production mode refuses unsigned sample evidence');
    }
  });

/** A validated, frozen trust service configuration. */
export type TrustConfig = Readonly<z.output<typeof trustConfigSchema>>;
/** A configuration as written (defaults optional). */
export type TrustConfigInput = z.input<typeof trustConfigSchema>;

/** Validates and freezes a configuration object. @throws TresorError CONFIG_INVALID naming the field */
export function parseTrustConfig(value: unknown): TrustConfig {
  const parsed = trustConfigSchema.safeParse(value);
  if (!parsed.success) throw configInvalid('trust configuration', parsed.error);
  return deepFreeze(parsed.data);
}

const TLS_FILES: ReadonlyMap<string, string> = new Map([
  ['certFile', 'cert'],
  ['keyFile', 'key'],
  ['clientCaFile', 'clientCa'],
]);

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * Reads a configuration file (JSON). In `server.tls`, `certFile`, `keyFile` and `clientCaFile` name
 * PEM files (relative to the configuration file) in place of inline `cert`, `key` and `clientCa`.
 *
 * @throws TresorError INPUT_UNREADABLE, INPUT_MALFORMED, CONFIG_INVALID
 */
export async function loadTrustConfigFile(path: string): Promise<TrustConfig> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (cause) {
      throw new TresorError('INPUT_UNREADABLE', `cannot read ${what} ${file}`, { cause });
    }
  };
  let value: unknown;
  try {
    value = JSON.parse(await read(path, 'the trust configuration'));
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('INPUT_MALFORMED', `the trust configuration ${path} is not JSON`);
  }
  const root = record(value);
  const serverSection = record(root?.server);
  const tls = record(serverSection?.tls);
  if (root !== undefined && serverSection !== undefined && tls !== undefined) {
    const resolved: Record<string, unknown> = {};
    for (const [name, member] of Object.entries(tls)) {
      const target = TLS_FILES.get(name);
      if (target === undefined) {
        resolved[name] = member;
        continue;
      }
      if (typeof member !== 'string') {
        throw new TresorError('CONFIG_INVALID', `trust configuration field server.tls.${name}: a file path`);
      }
      if (tls[target] !== undefined) {
        throw new TresorError(
          'CONFIG_INVALID',
          `trust configuration field server.tls.${name}: give ${target} or ${name}, not both`,
        );
      }
      resolved[target] = await read(resolve(dirname(path), member), `server.tls.${name}`);
    }
    value = { ...root, server: { ...serverSection, tls: resolved } };
  }
  return parseTrustConfig(value);
}
