import { TresorError } from '@tresor/protocol';
import { bytesToHex, utf8Encode } from '@tresor/crypto';
import { parseCertificates, parseCrl } from '../../certs.js';
import { snpReportBytes } from '../../snp/evidence-formats.js';
import { productFromCpuid, SNP_PRODUCTS, type SnpProduct } from '../../snp/product.js';
import { parseSnpReportBytes, type SnpReport } from '../../snp/report.js';
import { decodeTcb, type SnpTcb } from '../../snp/tcb.js';
import { CollateralDirectory } from './collateral-directory.js';
import {
  obtainDocument,
  staleNotes,
  type CollateralDocument,
  type FetchedCollateral,
  type FetchedCollateralFile,
} from './collateral-document.js';
import { certificateValidity, crlValidity, jointValidity } from './document-validity.js';
import { resolveFetchOptions, serviceUrl, type CollateralFetchOptions } from './fetch-options.js';
import { certificatesIn, crlIn } from './response-checks.js';

/**
 * SEV-SNP collateral from the AMD Key Distribution Service (AMD "Versioned Chip Endorsement Key
 * (VCEK) Certificate and KDS Interface Specification", #57230): the VCEK for the chip and the TCB a
 * report was signed at, the ASK (or ASVK) + ARK chain of the product, and the product's CRL.
 *
 * The VCEK is asked for the report's REPORTED_TCB, not CURRENT_TCB: the firmware signs with the key
 * derived for the reported TCB (testdata README, trap 3). VLEKs are not published by KDS: AMD
 * issues them to cloud providers, who hand them to their guests (SNP extended guest request), so
 * for a VLEK-signed report only its ASVK chain and CRL are fetched.
 */

export interface SnpCollateralOptions extends CollateralFetchOptions {
  /** The processor product, needed for version-2 reports, which do not record their CPUID. */
  readonly product?: SnpProduct;
  /** Also fetch the product's CRL (default true). */
  readonly crl?: boolean;
}

/** The VCEK path on KDS for `chipId` at `tcb` (KDS interface specification, "VCEK certificate"). */
export function kdsVcekPath(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcb): string {
  const spls: [string, number][] = [
    ['blSPL', tcb.bootloader],
    ['teeSPL', tcb.tee],
    ['snpSPL', tcb.snp],
    ['ucodeSPL', tcb.microcode],
  ];
  // Turin adds the FMC SPL to the TCB and identifies its chips by the first 8 bytes of CHIP_ID.
  if (product === 'Turin') spls.unshift(['fmcSPL', tcb.fmc ?? 0]);
  const query = spls.map(([name, value]) => `${name}=${value}`).join('&');
  return `/vcek/v1/${product}/${bytesToHex(hardwareId(product, chipId))}?${query}`;
}

function hardwareId(product: SnpProduct, chipId: Uint8Array): Uint8Array {
  return product === 'Turin' ? chipId.subarray(0, 8) : chipId;
}

/**
 * Fetches (or finds fresh in `options.directory`) the collateral for one SEV-SNP report, given in
 * any shape `tresor attest verify --report` takes.
 */
export async function fetchSnpCollateral(
  evidence: Uint8Array,
  options: SnpCollateralOptions,
): Promise<FetchedCollateral> {
  const resolved = resolveFetchOptions(options);
  const report = parseSnpReportBytes(snpReportBytes(evidence));
  const product = reportProduct(report, options.product);
  if (report.signingKey === 'none') {
    throw new TresorError(
      'COLLATERAL_UNAVAILABLE',
      'the SEV-SNP report is unsigned (SIGNING_KEY none): no certificate can verify it; request a report signed by the VCEK or VLEK',
    );
  }
  const key = report.signingKey;
  const kds = resolved.endpoints.amdKds;
  const documents: CollateralDocument[] = [];
  const notes: string[] = [];
  if (key === 'vcek') {
    documents.push(vcekDocument(kds, product, report));
  } else {
    notes.push(
      `the report is signed by a VLEK, which AMD KDS does not publish: get it from the cloud provider (SNP extended guest request, e.g. \`snpguest certificates\`) and pass it as --signer-cert`,
    );
  }
  documents.push(chainDocument(kds, product, key));
  if (options.crl !== false) documents.push(crlDocument(kds, product, key));

  const directory = new CollateralDirectory(options.directory, resolved.maxResponseBytes);
  const files: FetchedCollateralFile[] = [];
  for (const document of documents) files.push(await obtainDocument(document, directory, resolved));
  return { tee: 'snp', files, notes: [...notes, ...staleNotes(files)] };
}

function reportProduct(report: SnpReport, requested: SnpProduct | undefined): SnpProduct {
  const recorded = report.cpuid === null ? null : productFromCpuid(report.cpuid.family, report.cpuid.model);
  if (requested !== undefined && recorded !== null && requested !== recorded) {
    throw new TresorError(
      'USAGE_INVALID',
      `the report's CPUID names an AMD ${recorded}, not the ${requested} given as product; leave the product out`,
    );
  }
  const product = requested ?? recorded;
  if (product === null) {
    throw new TresorError(
      'USAGE_INVALID',
      `the SEV-SNP report (version ${report.version}) does not record its processor product; name it (--product ${SNP_PRODUCTS.join('|')})`,
    );
  }
  return product;
}

function vcekDocument(kds: string, product: SnpProduct, report: SnpReport): CollateralDocument {
  const hwid = hardwareId(product, report.chipId);
  if (hwid.every((b) => b === 0)) {
    throw new TresorError(
      'COLLATERAL_UNAVAILABLE',
      'the report masks its chip ID (MASK_CHIP_ID), so KDS cannot name its VCEK; get the VCEK from the host (extended guest request) or launch the guest without MASK_CHIP_ID',
    );
  }
  const tcb = decodeTcb(report.reportedTcb, product);
  const spl = [
    ...(tcb.fmc === undefined ? [] : [`fmc${tcb.fmc}`]),
    `bl${tcb.bootloader}`,
    `tee${tcb.tee}`,
    `snp${tcb.snp}`,
    `ucode${tcb.microcode}`,
  ].join('-');
  const what = `VCEK (${product})`;
  const url = serviceUrl(kds, kdsVcekPath(product, report.chipId, tcb));
  return {
    role: 'signer_cert',
    what,
    url,
    fileName: `vcek-${product.toLowerCase()}-${bytesToHex(hwid)}-${spl}.der`,
    // KDS answers with DER (application/x-x509-ca-cert); the DER is kept, whatever it was wrapped in.
    download: async (get) => {
      const [vcek] = certificatesIn(await get(url, what), what, 1);
      return new Uint8Array(vcek!.rawData);
    },
    validity: (file) => {
      try {
        const certs = parseCertificates(file);
        return certs.length === 1 ? certificateValidity(certs[0]!) : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** ASK + ARK (VCEK) or ASVK + ARK (VLEK), as PEM, intermediate first (KDS `cert_chain`). */
function chainDocument(kds: string, product: SnpProduct, key: 'vcek' | 'vlek'): CollateralDocument {
  const what = `${key === 'vcek' ? 'ASK' : 'ASVK'} + ARK chain (${product})`;
  const url = serviceUrl(kds, `/${key}/v1/${product}/cert_chain`);
  return {
    role: 'ca_chain',
    what,
    url,
    fileName: `${key === 'vcek' ? 'ask' : 'asvk'}_ark-${product.toLowerCase()}.pem`,
    download: async (get) => {
      const certs = certificatesIn(await get(url, what), what, 2);
      return utf8Encode(certs.map((c) => c.toString('pem')).join('\n') + '\n');
    },
    validity: (file) => {
      try {
        const certs = parseCertificates(file);
        return certs.length === 2 ? jointValidity(certs.map(certificateValidity)) : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** The product's CRL, signed by the ARK, listing revoked ASKs/ASVKs (KDS `crl`). */
function crlDocument(kds: string, product: SnpProduct, key: 'vcek' | 'vlek'): CollateralDocument {
  const what = `${key === 'vcek' ? 'VCEK' : 'VLEK'} CRL (${product})`;
  const url = serviceUrl(kds, `/${key}/v1/${product}/crl`);
  return {
    role: 'crl',
    what,
    url,
    fileName: `crl-${key}-${product.toLowerCase()}.der`,
    download: async (get) => new Uint8Array(crlIn(await get(url, what), what).rawData),
    validity: (file) => {
      try {
        return crlValidity(parseCrl(file));
      } catch {
        return undefined;
      }
    },
  };
}
