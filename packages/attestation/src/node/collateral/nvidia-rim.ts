import { TresorError } from '@tresor/protocol';
import { base64ToBytes, utf8Decode } from '@tresor/crypto';
import { parseCertificates, type Certificate } from '../../certs.js';
import { CollateralDirectory } from './collateral-directory.js';
import {
  obtainDocument,
  staleNotes,
  type CollateralDocument,
  type FetchedCollateral,
} from './collateral-document.js';
import { certificateValidity, jointValidity, type DocumentValidity } from './document-validity.js';
import { resolveFetchOptions, serviceUrl, type CollateralFetchOptions } from './fetch-options.js';
import { invalidResponse } from './response-checks.js';

/**
 * NVIDIA Reference Integrity Manifests from the NVIDIA RIM service (`GET /v1/rim/{id}`): the golden
 * measurements of one GPU driver or VBIOS release, a signed TCG/SWID XML document, served as JSON
 * `{"id", "rim": <base64 XML>, "sha256", "last_updated", …}`. The response is stored as served.
 *
 * The NVIDIA verifier does not read RIMs yet (it compares measurements against a reference manifest
 * given through its API), so this only prepares the file for when it does and for other tools.
 */

/** RIM IDs as NVIDIA names them, e.g. NV_GPU_DRIVER_GH100_550.90.07, NV_GPU_VBIOS_2330_0210_882_96009F0001. */
const RIM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isRimId(id: string): boolean {
  return RIM_ID.test(id);
}

/** Fetches (or finds fresh in `options.directory`) the RIM called `rimId`. */
export async function fetchNvidiaRim(
  rimId: string,
  options: CollateralFetchOptions,
): Promise<FetchedCollateral> {
  // The ID becomes a URL path segment and a file name: letters, digits, '.', '_' and '-' only.
  if (!isRimId(rimId)) {
    throw new TresorError(
      'USAGE_INVALID',
      `"${rimId}" is not a RIM ID (letters, digits, ".", "_" and "-", such as NV_GPU_DRIVER_GH100_550.90.07)`,
    );
  }
  const resolved = resolveFetchOptions(options);
  const directory = new CollateralDirectory(options.directory, resolved.maxResponseBytes);
  const file = await obtainDocument(rimDocument(resolved.endpoints.nvidiaRim, rimId), directory, resolved);
  return {
    tee: 'nvidia',
    files: [file],
    notes: [
      'tresor attest verify does not read RIMs yet: pass reference measurements to the NVIDIA verifier as a reference manifest',
      ...staleNotes([file]),
    ],
  };
}

function rimDocument(base: string, id: string): CollateralDocument {
  const what = `RIM ${id}`;
  const url = serviceUrl(base, `/v1/rim/${id}`);
  return {
    role: 'rim',
    what,
    url,
    fileName: `rim-${id}.json`,
    download: async (get) => {
      const response = await get(url, what);
      const rim = rimResponse(response.body, id);
      if (!rim.ok) throw invalidResponse(what, response.url, rim.problem);
      return response.body;
    },
    validity: (file) => {
      const rim = rimResponse(file, id);
      return rim.ok ? signerValidity(rim.xml) : undefined;
    },
  };
}

type RimResponse =
  { readonly ok: true; readonly xml: string } | { readonly ok: false; readonly problem: string };

/** Checks the response is the RIM asked for: JSON with this `id` and a base64 `rim` holding text. */
function rimResponse(body: Uint8Array, id: string): RimResponse {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(body));
  } catch {
    return { ok: false, problem: 'a body that is not UTF-8 JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, problem: 'JSON that is not an object' };
  }
  const fields = json as Record<string, unknown>;
  if (fields.id !== undefined && fields.id !== id) {
    return { ok: false, problem: `the RIM ${JSON.stringify(fields.id)} instead` };
  }
  if (typeof fields.rim !== 'string' || fields.rim.length === 0) {
    return { ok: false, problem: 'no "rim" member with the base64 document' };
  }
  try {
    return { ok: true, xml: utf8Decode(base64ToBytes(fields.rim)) };
  } catch {
    return { ok: false, problem: 'a "rim" member that is not base64 of UTF-8 text' };
  }
}

const X509_CERTIFICATE = /<(?:[\w.-]+:)?X509Certificate>([^<]*)<\/(?:[\w.-]+:)?X509Certificate>/g;

/**
 * The RIM is usable while the certificates of its XML signature (XML-DSig `X509Certificate`
 * elements, base64 DER) are; a RIM without them states no validity and is never reused.
 */
function signerValidity(xml: string): DocumentValidity | undefined {
  const certs: Certificate[] = [];
  for (const [, base64] of xml.matchAll(X509_CERTIFICATE)) {
    try {
      certs.push(...parseCertificates(base64ToBytes(base64!.replace(/\s+/g, ''))));
    } catch {
      return undefined;
    }
  }
  return certs.length === 0 ? undefined : jointValidity(certs.map(certificateValidity));
}
