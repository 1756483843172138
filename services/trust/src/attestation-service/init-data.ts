import { TresorError } from '@tresor/protocol';
import { bytesToHex, toArrayBuffer, utf8Encode } from '@tresor/crypto';
import type { AppraisalInput } from '@tresor/attestation';
import { parseInitDataToml, type InitDataDocument } from './initdata-toml.js';

/**
 * Init data (CoCo initdata): a document the host hands the TEE at launch (agent policy, config,
 * and for Tresor the tenant and image it serves). The TEE hardware measures its digest into a
 * launch-time field, so init data sent with the evidence is trusted only when its digest equals
 * that field (KBS.md "Init data"; Trustee attestation-service lib.rs `parse_init_data`):
 *
 *   digest = <algorithm named inside the document>(the document's bytes as sent)
 *   SNP HOST_DATA (32 bytes), TDX MRCONFIGID (48 bytes): the digest zero-padded or truncated to size
 *   sample TEE: its signed `init_data` member, the digest in hex
 *
 * Tresor reads its own members from `[data]`: `tresor-tenant` (the tenant a workload serves),
 * `tresor-image` (the OCI image digest it runs) and `tresor-component`.
 */
export interface VerifiedInitData {
  /** The digest in lowercase hex, with the algorithm the document names. */
  readonly digest: string;
  readonly algorithm: 'sha256' | 'sha384' | 'sha512';
  readonly document: InitDataDocument;
  readonly tenant: string | null;
  readonly imageDigest: string | null;
  readonly component: string | null;
}

const ALGORITHMS = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' } as const;
/** Where each TEE measures init data, and the field's size in bytes. */
const FIELDS: Readonly<Record<string, { readonly name: string; readonly bytes: number }>> = {
  snp: { name: 'host_data', bytes: 32 },
  tdx: { name: 'mrconfigid', bytes: 48 },
};
const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;

function regularize(digest: Uint8Array, size: number): string {
  const field = new Uint8Array(size);
  field.set(digest.subarray(0, size));
  return bytesToHex(field);
}

function optionalMember(
  data: Readonly<Record<string, string>>,
  name: string,
  pattern: RegExp,
): string | null {
  const value = Object.prototype.hasOwnProperty.call(data, name) ? data[name] : undefined;
  if (value === undefined) return null;
  if (!pattern.test(value)) {
    throw new TresorError(
      'INIT_DATA_MALFORMED',
      `init-data member ${name} does not have the expected form (${pattern.source})`,
    );
  }
  return value;
}

/** The launch-time value the TEE measured init data into, or null when the TEE measures none. */
function measuredInitData(input: AppraisalInput, sampleInitData: string | null): string | null {
  if (input.tee === 'sample') return sampleInitData;
  const field = FIELDS[input.tee];
  if (field === undefined) return null;
  const value = input.measurements[field.name];
  return value === undefined || /^0*$/.test(value) ? null : value.toLowerCase();
}

/**
 * Checks init data against the evidence. No init data and none measured: null. Init data whose
 * digest is not what the TEE measured — or init data for a TEE that measured none, or the other way
 * round — is refused: unbound init data could name any tenant.
 *
 * @throws TresorError INIT_DATA_MALFORMED, INIT_DATA_MISMATCH
 */
export async function verifyInitData(
  initData: { readonly body: string } | null,
  primary: AppraisalInput,
  sampleInitData: string | null,
): Promise<VerifiedInitData | null> {
  const measured = measuredInitData(primary, sampleInitData);
  if (initData === null) {
    if (measured !== null) {
      throw new TresorError(
        'INIT_DATA_MISMATCH',
        'the TEE was launched with init-data, but the attestation carries none; send the init-data with the evidence',
      );
    }
    return null;
  }
  const document = parseInitDataToml(initData.body);
  const algorithm = document.algorithm;
  if (algorithm !== 'sha256' && algorithm !== 'sha384' && algorithm !== 'sha512') {
    throw new TresorError(
      'INIT_DATA_MALFORMED',
      `init-data algorithm ${JSON.stringify(algorithm.slice(0, 16))} is not sha256, sha384 or sha512`,
    );
  }
  const raw = new Uint8Array(
    await crypto.subtle.digest(ALGORITHMS[algorithm], toArrayBuffer(utf8Encode(initData.body))),
  );
  const digest = bytesToHex(raw);
  const field = FIELDS[primary.tee];
  const expected = field === undefined ? digest : regularize(raw, field.bytes);
  if (measured === null || measured !== expected) {
    throw new TresorError(
      'INIT_DATA_MISMATCH',
      measured === null
        ? `the ${primary.tee} TEE measured no init-data, so the init-data sent cannot be trusted`
        : `the init-data ${algorithm} digest does not equal the TEE's ${field?.name ?? 'init_data'}`,
    );
  }
  return {
    digest,
    algorithm,
    document,
    tenant: optionalMember(document.data, 'tresor-tenant', TENANT),
    imageDigest: optionalMember(document.data, 'tresor-image', IMAGE_DIGEST),
    component: optionalMember(document.data, 'tresor-component', /^[a-z][a-z0-9-]{0,31}$/),
  };
}
