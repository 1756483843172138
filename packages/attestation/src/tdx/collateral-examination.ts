import { isCrlSignedBy, isRevokedBy, type Certificate, type Crl } from '../certs.js';
import type { SignatureVerifier } from '../signatures/index.js';
import { examineChain, type ChainExamination } from './chain.js';
import type { SignedCollateralDocument, TdxCollateral } from './collateral.js';
import {
  parseTdQeIdentity,
  parseTdxTcbInfo,
  type Parsed,
  type TdQeIdentity,
  type TdxTcbInfo,
} from './collateral-schema.js';
import { importCertificateP256Key, verifyP256 } from './ecdsa-p256.js';
import { HexFields } from './tcb-status.js';

/**
 * The time-independent part of collateral verification, done once per distinct collateral file:
 * issuer chains to the pinned root, Intel's signatures over the exact served TCB info and QE
 * identity text, and the root CA CRL's signature. Dates (nextUpdate, CRL currency, certificate
 * validity) and everything that depends on a particular quote are judged per verification.
 */
export interface CollateralExamination {
  readonly collateral: TdxCollateral;
  readonly tcbInfoChain: ChainExamination;
  readonly tcbInfoSignatureValid: boolean;
  readonly qeIdentityChain: ChainExamination;
  readonly qeIdentitySignatureValid: boolean;
  /** Parsed only for use after the signature check; a parse failure is a collateral failure. */
  readonly tcbInfo: Parsed<TdxTcbInfo>;
  readonly qeIdentity: Parsed<TdQeIdentity>;
  /** When each document was issued and is due for renewal, read once (judged at each `now`). */
  readonly tcbInfoPeriod: Parsed<IssuePeriod>;
  readonly qeIdentityPeriod: Parsed<IssuePeriod>;
  readonly rootCrlSignatureValid: boolean;
  /** Whether the PCK CRL is signed by `pckCa` (memoised per CA: quotes from one platform share it). */
  pckCrlSignedBy(pckCa: Certificate): Promise<boolean>;
  /** The documents' hex fields as bytes, decoded once for every quote rated against them. */
  readonly hexFields: HexFields;
  /** Whether `crl` (one of this collateral's two) lists `cert`; memoised per certificate. */
  listedIn(crl: Crl, cert: Certificate): boolean;
}

export async function examineCollateral(
  collateral: TdxCollateral,
  root: Certificate,
  signatures: SignatureVerifier,
): Promise<CollateralExamination> {
  const [tcbInfoSigner, qeIdentitySigner, rootCrlSignatureValid] = await Promise.all([
    examineSignedDocument(collateral.tcbInfo, root, signatures),
    examineSignedDocument(collateral.qeIdentity, root, signatures),
    isCrlSignedBy(collateral.rootCaCrl, root, signatures),
  ]);
  const tcbInfo = parseTdxTcbInfo(collateral.tcbInfo.text);
  const qeIdentity = parseTdQeIdentity(collateral.qeIdentity.text);
  // Keyed by certificate objects, which a cached PCK chain examination hands over every time.
  const pckCrlSignatures = new WeakMap<Certificate, Promise<boolean>>();
  const listings = new Map<Crl, WeakMap<Certificate, boolean>>([
    [collateral.rootCaCrl, new WeakMap()],
    [collateral.pckCrl, new WeakMap()],
  ]);
  return {
    collateral,
    tcbInfoChain: tcbInfoSigner.chain,
    tcbInfoSignatureValid: tcbInfoSigner.signatureValid,
    qeIdentityChain: qeIdentitySigner.chain,
    qeIdentitySignatureValid: qeIdentitySigner.signatureValid,
    tcbInfo,
    qeIdentity,
    tcbInfoPeriod: issuePeriod(tcbInfo),
    hexFields: new HexFields(),
    qeIdentityPeriod: issuePeriod(qeIdentity),
    rootCrlSignatureValid,
    pckCrlSignedBy: (pckCa) => {
      let signed = pckCrlSignatures.get(pckCa);
      if (signed === undefined) {
        signed = isCrlSignedBy(collateral.pckCrl, pckCa, signatures);
        pckCrlSignatures.set(pckCa, signed);
      }
      return signed;
    },
    listedIn: (crl, cert) => {
      const listed = listings.get(crl);
      if (listed === undefined) return isRevokedBy(cert, crl);
      let revoked = listed.get(cert);
      if (revoked === undefined) {
        revoked = isRevokedBy(cert, crl);
        listed.set(cert, revoked);
      }
      return revoked;
    },
  };
}

async function examineSignedDocument(
  document: SignedCollateralDocument,
  root: Certificate,
  signatures: SignatureVerifier,
): Promise<{ chain: ChainExamination; signatureValid: boolean }> {
  const signer = document.issuerChain[0];
  const [chain, key] = await Promise.all([
    examineChain(document.issuerChain, root, signatures),
    signer === undefined ? undefined : importCertificateP256Key(signer, signatures),
  ]);
  const signatureValid =
    key !== undefined && (await verifyP256(key, document.signature, document.bytes, signatures));
  return { chain, signatureValid };
}

/** Intel PCS: a document is current from its issueDate up to its nextUpdate (RFC 3339, UTC). */
export interface IssuePeriod {
  readonly issueDate: string;
  readonly nextUpdate: string;
  readonly issuedAt: number;
  readonly dueAt: number;
}

function issuePeriod(
  document: Parsed<{ readonly issueDate: string; readonly nextUpdate: string }>,
): Parsed<IssuePeriod> {
  if (!document.ok) return document;
  const { issueDate, nextUpdate } = document.value;
  return {
    ok: true,
    value: { issueDate, nextUpdate, issuedAt: Date.parse(issueDate), dueAt: Date.parse(nextUpdate) },
  };
}
