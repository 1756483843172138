import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';

/**
 * The KBS protocol messages (kbs-types 0.16 `Request`, `Challenge`, `Attestation`), parsed once at
 * the boundary. Member names are exactly Trustee's, including the mix of kebab-case and snake_case.
 * As serde does, unknown members are ignored; a missing or mistyped required member is refused.
 */

const requestSchema = z.object({
  version: z.string().max(64),
  tee: z.string().max(32),
  /** Any JSON; guest-components sends {"supported-hash-algorithms": [...]}. Only IBM SE reads it. */
  'extra-params': z.unknown().optional(),
});

/** Body of POST /kbs/v0/auth. */
export interface KbsRequest {
  readonly version: string;
  readonly tee: string;
  readonly extraParams: unknown;
}

/** Body of the 200 answer to /auth. */
export interface KbsChallenge {
  /** 32 random bytes, standard base64 with padding (not base64url). */
  readonly nonce: string;
  /** The empty string for every TEE but IBM SE (backend.rs `generic_generate_challenge`). */
  readonly 'extra-params': '';
}

const initDataSchema = z.object({
  format: z.string().max(16),
  body: z.string(),
});

const runtimeDataSchema = z.object({
  nonce: z.string().max(256),
  /** Parsed and checked separately (tee-public-key.ts), so its own errors get their own code. */
  'tee-pubkey': z.record(z.string(), z.unknown()),
});

const attestationSchema = z.object({
  'init-data': initDataSchema.nullable().optional(),
  'runtime-data': runtimeDataSchema,
  'tee-evidence': z.object({
    /** TEE specific; decoded by the attestation service per TEE kind. */
    primary_evidence: z.unknown(),
    /** A JSON *string*: "" or a JSON-encoded map from TEE name to that device's evidence. */
    additional_evidence: z.string(),
  }),
});

/** Body of POST /kbs/v0/attest. */
export interface KbsAttestation {
  readonly initData: { readonly format: string; readonly body: string } | null;
  readonly runtimeData: { readonly nonce: string; readonly teePubkey: Readonly<Record<string, unknown>> };
  readonly primaryEvidence: unknown;
  readonly additionalEvidence: string;
}

function parseJson(body: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(utf8Decode(body)) as unknown;
  } catch {
    // The parser's own message quotes the input, so it is not kept as the cause.
    throw new TresorError('INPUT_MALFORMED', `the ${what} is not UTF-8 JSON`);
  }
}

function shapeProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
  return `${issue?.message ?? 'wrong shape'}${where}`;
}

/** Parses the /auth body. @throws TresorError INPUT_MALFORMED */
export function parseKbsRequest(body: Uint8Array): KbsRequest {
  const parsed = requestSchema.safeParse(parseJson(body, 'KBS Request'));
  if (!parsed.success) {
    throw new TresorError('INPUT_MALFORMED', `the KBS Request is malformed: ${shapeProblem(parsed.error)}`);
  }
  return {
    version: parsed.data.version,
    tee: parsed.data.tee,
    extraParams: parsed.data['extra-params'] ?? null,
  };
}

/** Parses the /attest body. @throws TresorError INPUT_MALFORMED */
export function parseKbsAttestation(body: Uint8Array): KbsAttestation {
  const parsed = attestationSchema.safeParse(parseJson(body, 'KBS Attestation'));
  if (!parsed.success) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `the KBS Attestation is malformed: ${shapeProblem(parsed.error)}`,
    );
  }
  const data = parsed.data;
  return {
    initData: data['init-data'] ?? null,
    runtimeData: { nonce: data['runtime-data'].nonce, teePubkey: data['runtime-data']['tee-pubkey'] },
    primaryEvidence: data['tee-evidence'].primary_evidence,
    additionalEvidence: data['tee-evidence'].additional_evidence,
  };
}
