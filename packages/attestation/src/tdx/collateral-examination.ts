import { isCrlSignedBy, type Certificate } from '../certs.js';
import { BoundedCache, bytesKey } from './bounded-cache.js';
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
  readonly rootCrlSignatureValid: boolean;
  /** Whether the PCK CRL is signed by `pckCa` (memoised per CA: quotes from one platform share it). */
  pckCrlSignedBy(pckCa: Certificate): Promise<boolean>;
}

export async function examineCollateral(
  collateral: TdxCollateral,
  root: Certificate,
): Promise<CollateralExamination> {
  const [tcbInfo, qeIdentity, rootCrlSignatureValid] = await Promise.all([
    examineSignedDocument(collateral.tcbInfo, root),
    examineSignedDocument(collateral.qeIdentity, root),
    isCrlSignedBy(collateral.rootCaCrl, root),
  ]);
  const pckCrlSignatures = new BoundedCache<Promise<boolean>>(8);
  return {
    collateral,
    tcbInfoChain: tcbInfo.chain,
    tcbInfoSignatureValid: tcbInfo.signatureValid,
    qeIdentityChain: qeIdentity.chain,
    qeIdentitySignatureValid: qeIdentity.signatureValid,
    tcbInfo: parseTdxTcbInfo(collateral.tcbInfo.text),
    qeIdentity: parseTdQeIdentity(collateral.qeIdentity.text),
    rootCrlSignatureValid,
    pckCrlSignedBy: (pckCa) =>
      pckCrlSignatures.getOrCreate(bytesKey(new Uint8Array(pckCa.rawData)), () =>
        isCrlSignedBy(collateral.pckCrl, pckCa),
      ),
  };
}

async function examineSignedDocument(
  document: SignedCollateralDocument,
  root: Certificate,
): Promise<{ chain: ChainExamination; signatureValid: boolean }> {
  const signer = document.issuerChain[0];
  const [chain, key] = await Promise.all([
    examineChain(document.issuerChain, root),
    signer === undefined ? undefined : importCertificateP256Key(signer),
  ]);
  const signatureValid = key !== undefined && (await verifyP256(key, document.signature, document.bytes));
  return { chain, signatureValid };
}
