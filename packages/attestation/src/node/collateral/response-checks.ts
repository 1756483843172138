import { TresorError } from '@tresor/protocol';
import { parseCertificates, parseCrl, type Certificate, type Crl } from '../../certs.js';
import { decodeHexText, isHexText } from '../../evidence-input.js';
import type { HttpDocument } from './http-get.js';

/**
 * Structural checks of what a service sent, before anything is written: the right kind of
 * document, parseable, with the headers it must carry. Signatures and chains are not checked here;
 * `tresor attest verify` does that against the pinned roots, so the fetcher is never trusted.
 */

export function invalidResponse(what: string, url: string, problem: string, cause?: unknown): TresorError {
  return new TresorError(
    'COLLATERAL_RESPONSE_INVALID',
    `${what}: ${url} sent ${problem}`,
    cause === undefined ? {} : { cause },
  );
}

/** The certificates of a DER or PEM body; exactly `count` of them. */
export function certificatesIn(response: HttpDocument, what: string, count: number): Certificate[] {
  let certs: Certificate[];
  try {
    certs = parseCertificates(response.body, what);
  } catch (cause) {
    throw invalidResponse(what, response.url, 'something that is not a DER or PEM X.509 certificate', cause);
  }
  if (certs.length !== count) {
    throw invalidResponse(what, response.url, `${certs.length} certificates where ${count} belong`);
  }
  return certs;
}

/** The CRL of a body in DER, PEM, or hex text (a PCCS serves the root CA CRL as hex). */
export function crlIn(response: HttpDocument, what: string): Crl {
  const body = isHexText(response.body) ? decodeHexText(response.body) : response.body;
  try {
    return parseCrl(body, what);
  } catch (cause) {
    throw invalidResponse(what, response.url, 'something that is not an X.509 CRL', cause);
  }
}

/**
 * The PEM certificate chain in a response header. Intel PCS sends issuer chains URL-encoded (PCS API
 * v4: "PEM-encoded certificate chain … URL-encoded"); the first header name present is used.
 */
export function issuerChainHeader(response: HttpDocument, names: readonly string[], what: string): string {
  const name = names.find((n) => response.headers.has(n));
  if (name === undefined) {
    throw invalidResponse(what, response.url, `no ${names.join(' or ')} header with the issuer chain`);
  }
  let pem: string;
  try {
    pem = decodeURIComponent(response.headers.get(name)!);
  } catch (cause) {
    throw invalidResponse(what, response.url, `a ${name} header that is not URL-encoded`, cause);
  }
  try {
    parseCertificates(new TextEncoder().encode(pem), `${name} header`);
  } catch (cause) {
    throw invalidResponse(what, response.url, `a ${name} header that is not a PEM certificate chain`, cause);
  }
  return pem;
}
