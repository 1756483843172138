import * as x509 from '@peculiar/x509';
import { TresorError } from '@tresor/protocol';
import { bytesToHex, utf8Decode, utf8Encode } from '@tresor/crypto';
import { parseCertificates, type Certificate } from '../../certs.js';
import { issuerCommonName } from '../../tdx/chain.js';
import { parseTdxCollateral } from '../../tdx/collateral.js';
import { intelSgxRootCa } from '../../tdx/intel-root.js';
import { readPckSgxExtension } from '../../tdx/pck-extension.js';
import { parseTdxQuote } from '../../tdx/quote.js';
import { CollateralDirectory } from './collateral-directory.js';
import {
  obtainDocument,
  staleNotes,
  type CollateralDocument,
  type CollateralGet,
  type FetchedCollateral,
} from './collateral-document.js';
import {
  certificateValidity,
  crlValidity,
  jointValidity,
  type DocumentValidity,
} from './document-validity.js';
import { resolveFetchOptions, serviceUrl, type CollateralFetchOptions } from './fetch-options.js';
import type { HttpDocument } from './http-get.js';
import { rawJsonMember } from './raw-json-member.js';
import { crlIn, invalidResponse, issuerChainHeader } from './response-checks.js';

/**
 * Intel TDX collateral from the Provisioning Certification Service, API v4 (Intel "PCS API"
 * reference; a PCCS serves the same paths): the TDX TCB info for the platform's FMSPC, the TD QE
 * identity, the CRL of the PCK CA that issued the quote's PCK certificate, and the Intel SGX Root
 * CA's CRL from the distribution point in the root certificate. They are assembled into one
 * collateral JSON in the shape the TDX verifier reads (dcap-qvl's `QuoteCollateralV3`), with the
 * TCB info and QE identity kept as the exact text Intel signed.
 */

/** PCK CA kind, from the issuer of the PCK certificate: the `ca` parameter of `pckcrl`. */
export type PckCa = 'platform' | 'processor';

const PCK_CA_NAMES: Readonly<Record<string, PckCa>> = {
  'Intel SGX PCK Platform CA': 'platform',
  'Intel SGX PCK Processor CA': 'processor',
};

/** What the quote says about where its collateral lives. */
export interface TdxCollateralRequest {
  /** Family-Model-Stepping-Platform-CustomSKU of the platform, upper-case hex as PCS spells it. */
  readonly fmspc: string;
  readonly ca: PckCa;
}

/** The FMSPC and PCK CA of a quote (raw or hex), read from the PCK certificate it carries. */
export function tdxCollateralRequest(quote: Uint8Array): TdxCollateralRequest {
  const { pckChainPem } = parseTdxQuote(quote);
  let pck: Certificate;
  try {
    pck = parseCertificates(pckChainPem, 'PCK certificate chain')[0]!;
  } catch (cause) {
    throw new TresorError(
      'ATTESTATION_EVIDENCE_MALFORMED',
      'the PCK certificate chain in the TDX quote is not PEM X.509',
      {
        cause,
      },
    );
  }
  const sgx = readPckSgxExtension(pck);
  if (sgx === undefined) {
    throw new TresorError(
      'ATTESTATION_EVIDENCE_MALFORMED',
      'the TDX quote carries no PCK certificate with an SGX extension, so its FMSPC is unknown',
    );
  }
  const issuer = issuerCommonName(pck);
  const ca = PCK_CA_NAMES[issuer];
  if (ca === undefined) {
    throw new TresorError(
      'ATTESTATION_EVIDENCE_MALFORMED',
      `the PCK certificate is issued by "${issuer}", not by the Intel SGX PCK Platform or Processor CA`,
    );
  }
  return { fmspc: bytesToHex(sgx.fmspc).toUpperCase(), ca };
}

/** The CRL distribution point URI of `cert` (RFC 5280 §4.2.1.13), or undefined. */
export function crlDistributionPoint(cert: Certificate): string | undefined {
  const extension = cert.getExtension(x509.CRLDistributionPointsExtension);
  for (const point of extension?.distributionPoints ?? []) {
    for (const name of point.distributionPoint?.fullName ?? []) {
      if (name.uniformResourceIdentifier !== undefined) return name.uniformResourceIdentifier;
    }
  }
  return undefined;
}

/**
 * Fetches (or finds fresh in `options.directory`) the collateral for one TDX quote and writes it as
 * one collateral JSON file for `tresor attest verify --collateral`.
 */
export async function fetchTdxCollateral(
  quote: Uint8Array,
  options: CollateralFetchOptions,
): Promise<FetchedCollateral> {
  const resolved = resolveFetchOptions(options);
  const request = tdxCollateralRequest(quote);
  const rootCrlUrl = resolved.endpoints.intelRootCaCrl ?? crlDistributionPoint(intelSgxRootCa());
  if (rootCrlUrl === undefined) {
    // The pinned root names its CRL; this only happens if that pin is ever replaced by one that does not.
    throw new TresorError(
      'USAGE_INVALID',
      'the Intel SGX Root CA names no CRL distribution point; give the CRL URL',
    );
  }
  const document = collateralDocument(resolved.endpoints.intelPcs, rootCrlUrl, request);
  const directory = new CollateralDirectory(options.directory, resolved.maxResponseBytes);
  const file = await obtainDocument(document, directory, resolved);
  return { tee: 'tdx', files: [file], notes: staleNotes([file]) };
}

function collateralDocument(
  pcs: string,
  rootCrlUrl: string,
  request: TdxCollateralRequest,
): CollateralDocument {
  const tcbUrl = serviceUrl(pcs, `/tdx/certification/v4/tcb?fmspc=${request.fmspc}`);
  return {
    role: 'collateral',
    what: `TDX collateral (FMSPC ${request.fmspc})`,
    url: tcbUrl,
    fileName: `tdx-collateral-${request.fmspc.toLowerCase()}-${request.ca}.json`,
    download: (get) => downloadCollateral(get, pcs, tcbUrl, rootCrlUrl, request),
    validity: collateralValidity,
  };
}

async function downloadCollateral(
  get: CollateralGet,
  pcs: string,
  tcbUrl: string,
  rootCrlUrl: string,
  request: TdxCollateralRequest,
): Promise<Uint8Array> {
  const tcbInfo = signedDocument(await get(tcbUrl, 'TDX TCB info'), 'TDX TCB info', 'tcbInfo', [
    'TCB-Info-Issuer-Chain',
    // PCS API v3 and some PCCS releases still use the SGX-prefixed name.
    'SGX-TCB-Info-Issuer-Chain',
  ]);
  expectDocument(tcbInfo, 'TDX TCB info', { id: 'TDX', fmspc: request.fmspc });

  const qeUrl = serviceUrl(pcs, '/tdx/certification/v4/qe/identity');
  const qeIdentity = signedDocument(await get(qeUrl, 'TD QE identity'), 'TD QE identity', 'enclaveIdentity', [
    'SGX-Enclave-Identity-Issuer-Chain',
  ]);
  expectDocument(qeIdentity, 'TD QE identity', { id: 'TD_QE' });

  const pckCrlUrl = serviceUrl(pcs, `/sgx/certification/v4/pckcrl?ca=${request.ca}&encoding=der`);
  const pckCrlWhat = `PCK ${request.ca} CA CRL`;
  const pckCrlResponse = await get(pckCrlUrl, pckCrlWhat);
  const pckCrl = crlIn(pckCrlResponse, pckCrlWhat);
  const pckCrlIssuerChain = issuerChainHeader(pckCrlResponse, ['SGX-PCK-CRL-Issuer-Chain'], pckCrlWhat);

  const rootCrl = crlIn(await get(rootCrlUrl, 'Intel SGX Root CA CRL'), 'Intel SGX Root CA CRL');

  // Field order and encodings of dcap-qvl's QuoteCollateralV3 JSON (CRLs as hex DER).
  const collateral = {
    pck_crl_issuer_chain: pckCrlIssuerChain,
    root_ca_crl: bytesToHex(new Uint8Array(rootCrl.rawData)),
    pck_crl: bytesToHex(new Uint8Array(pckCrl.rawData)),
    tcb_info_issuer_chain: tcbInfo.issuerChain,
    tcb_info: tcbInfo.text,
    tcb_info_signature: tcbInfo.signature,
    qe_identity_issuer_chain: qeIdentity.issuerChain,
    qe_identity: qeIdentity.text,
    qe_identity_signature: qeIdentity.signature,
  };
  const file = utf8Encode(`${JSON.stringify(collateral, null, 2)}\n`);
  try {
    parseTdxCollateral(file);
  } catch (cause) {
    throw invalidResponse('TDX collateral', tcbUrl, 'documents that do not make valid collateral', cause);
  }
  return file;
}

interface SignedPcsDocument {
  readonly url: string;
  /** The signed member's JSON text exactly as served. */
  readonly text: string;
  /** Hex r||s, as served. */
  readonly signature: string;
  readonly issuerChain: string;
}

/** `{"<member>": {…}, "signature": "<hex>"}` with the issuer chain in a header (PCS API v4). */
function signedDocument(
  response: HttpDocument,
  what: string,
  member: string,
  chainHeaders: readonly string[],
): SignedPcsDocument {
  let body: string;
  try {
    body = utf8Decode(response.body);
  } catch (cause) {
    throw invalidResponse(what, response.url, 'a body that is not UTF-8', cause);
  }
  const raw = rawJsonMember(body, member);
  if (!raw.found)
    throw invalidResponse(what, response.url, raw.problem.replace(/^the response /, 'a response that '));
  const { signature } = jsonFields(body);
  if (typeof signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(signature)) {
    throw invalidResponse(what, response.url, 'no "signature" member of 64 bytes in hex (ECDSA P-256 r||s)');
  }
  return {
    url: response.url,
    text: raw.text,
    signature,
    issuerChain: issuerChainHeader(response, chainHeaders, what),
  };
}

/** Refuses a document of another kind or platform early, with a message naming the service. */
function expectDocument(
  document: SignedPcsDocument,
  what: string,
  expected: { id: string; fmspc?: string },
): void {
  const fields = jsonFields(document.text);
  if (fields.id !== expected.id) {
    throw invalidResponse(
      what,
      document.url,
      `a document with id ${JSON.stringify(fields.id)}, not "${expected.id}"`,
    );
  }
  if (expected.fmspc !== undefined && String(fields.fmspc).toUpperCase() !== expected.fmspc) {
    throw invalidResponse(
      what,
      document.url,
      `TCB info for FMSPC ${String(fields.fmspc)}, not ${expected.fmspc}`,
    );
  }
}

/** Valid while every part is: both signed documents, both CRLs and every issuer certificate. */
function collateralValidity(file: Uint8Array): DocumentValidity | undefined {
  try {
    const collateral = parseTdxCollateral(file);
    return jointValidity([
      documentDates(collateral.tcbInfo.text),
      documentDates(collateral.qeIdentity.text),
      crlValidity(collateral.pckCrl),
      crlValidity(collateral.rootCaCrl),
      ...collateral.tcbInfo.issuerChain.map(certificateValidity),
      ...collateral.qeIdentity.issuerChain.map(certificateValidity),
    ]);
  } catch {
    return undefined;
  }
}

/** issueDate..nextUpdate of a TCB info or QE identity document. */
function documentDates(text: string): DocumentValidity | undefined {
  const fields = jsonFields(text);
  const from = typeof fields.issueDate === 'string' ? new Date(fields.issueDate) : undefined;
  const until = typeof fields.nextUpdate === 'string' ? new Date(fields.nextUpdate) : undefined;
  if (
    from === undefined ||
    until === undefined ||
    Number.isNaN(from.getTime()) ||
    Number.isNaN(until.getTime())
  ) {
    return undefined;
  }
  return { from, until };
}

/** The members of a JSON object text already known to parse; none for any other JSON value. */
function jsonFields(text: string): Readonly<Record<string, unknown>> {
  const value = JSON.parse(text) as unknown;
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}
