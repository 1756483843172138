import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { hexToBytes, utf8Decode, utf8Encode } from '@tresor/crypto';
import { parseCertificates, parseCrl, type Certificate, type Crl } from '../certs.js';

/**
 * Intel DCAP collateral for one quote, in the JSON shape Phala-Network/dcap-qvl serialises its
 * `QuoteCollateralV3` (and the testdata ships): issuer chains as PEM, both CRLs as hex DER (a JSON
 * byte array is accepted too), and `tcb_info` / `qe_identity` as the exact JSON text Intel PCS
 * served inside `{"tcbInfo": …}` / `{"enclaveIdentity": …}`. Intel's signatures (raw r||s, hex)
 * cover those exact bytes (Intel PCS API v4, "Get TDX TCB Info"), so the text is kept verbatim here
 * and only parsed after its signature has been checked (see collateral-schema.ts).
 */

export interface SignedCollateralDocument {
  /** The served JSON text, verbatim. */
  readonly text: string;
  /** Its UTF-8 bytes: the message Intel signed. */
  readonly bytes: Uint8Array;
  /** ECDSA P-256 signature r||s. */
  readonly signature: Uint8Array;
  /** Signing certificate first, then up to the Intel SGX Root CA. */
  readonly issuerChain: readonly Certificate[];
  /** The issuer chain PEM text (cache key for its examination). */
  readonly issuerChainPem: string;
}

export interface TdxCollateral {
  readonly tcbInfo: SignedCollateralDocument;
  readonly qeIdentity: SignedCollateralDocument;
  /** CRL of the Intel SGX Root CA: lists revoked PCK Platform/Processor CAs. */
  readonly rootCaCrl: Crl;
  /** CRL of the PCK Platform/Processor CA: lists revoked PCK certificates. */
  readonly pckCrl: Crl;
}

const bytesField = z.union([z.string(), z.array(z.number().int().min(0).max(255))]);

const collateralJson = z.object({
  pck_crl_issuer_chain: z.string(),
  root_ca_crl: bytesField,
  pck_crl: bytesField,
  tcb_info_issuer_chain: z.string(),
  tcb_info: z.string(),
  tcb_info_signature: bytesField,
  qe_identity_issuer_chain: z.string(),
  qe_identity: z.string(),
  qe_identity_signature: bytesField,
});

/** Parses the collateral file. Throws INPUT_MALFORMED naming the field when it is not in that shape. */
export function parseTdxCollateral(input: Uint8Array): TdxCollateral {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(input));
  } catch (cause) {
    throw malformed('it is not JSON', cause);
  }
  const parsed = collateralJson.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw malformed(`field ${issue?.path.join('.') ?? '?'} is missing or of the wrong type`);
  }
  const c = parsed.data;
  return {
    tcbInfo: signedDocument(c.tcb_info, c.tcb_info_signature, c.tcb_info_issuer_chain, 'tcb_info'),
    qeIdentity: signedDocument(
      c.qe_identity,
      c.qe_identity_signature,
      c.qe_identity_issuer_chain,
      'qe_identity',
    ),
    rootCaCrl: crl(c.root_ca_crl, 'root_ca_crl'),
    pckCrl: crl(c.pck_crl, 'pck_crl'),
  };
}

function signedDocument(
  text: string,
  signature: string | number[],
  issuerChainPem: string,
  field: string,
): SignedCollateralDocument {
  const sig = bytes(signature, `${field}_signature`);
  if (sig.length !== 64) throw malformed(`${field}_signature is not a 64-byte raw ECDSA P-256 signature`);
  return {
    text,
    bytes: utf8Encode(text),
    signature: sig,
    issuerChain: withField(`${field}_issuer_chain`, () =>
      parseCertificates(utf8Encode(issuerChainPem), `${field} issuer chain`),
    ),
    issuerChainPem,
  };
}

function crl(value: string | number[], field: string): Crl {
  const der = bytes(value, field);
  return withField(field, () => parseCrl(der, field));
}

function bytes(value: string | number[], field: string): Uint8Array {
  return typeof value === 'string' ? withField(field, () => hexToBytes(value)) : Uint8Array.from(value);
}

function withField<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    throw malformed(`field ${field} does not decode`, cause);
  }
}

function malformed(what: string, cause?: unknown): TresorError {
  return new TresorError(
    'INPUT_MALFORMED',
    `the TDX collateral is not dcap-qvl collateral JSON: ${what}; supply the collateral fetched for this quote's FMSPC`,
    cause === undefined ? {} : { cause },
  );
}
