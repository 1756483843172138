import { parseCertificates, type Certificate } from '../certs.js';
import { ContentCache } from '../content-cache.js';
import type { SignatureVerifier, VerificationKey } from '../signatures/index.js';
import { examineChain, type ChainExamination } from './chain.js';
import { pckClaims, type TdxPckClaims } from './claims.js';
import { importCertificateP256Key, verifyP256 } from './ecdsa-p256.js';
import { readPckSgxExtension, type PckSgxExtension } from './pck-extension.js';

/**
 * The PCK certificate chain a quote carries (certification data type 5), examined once per distinct
 * chain: parsed, its signatures checked up to the pinned root, the PCK key imported for the QE
 * report signature, and the SGX extension read for TCB matching.
 */
export type PckChainExamination =
  | { readonly readable: false; readonly problem: string }
  | {
      readonly readable: true;
      readonly chain: ChainExamination;
      readonly pck: Certificate;
      /** Undefined when the PCK certificate does not hold a P-256 key. */
      readonly pckKey: VerificationKey | undefined;
      /** Undefined when the leaf has no readable SGX extension, i.e. is not a PCK certificate. */
      readonly sgx: PckSgxExtension | undefined;
      /** The PCK certificate's claims (with its SGX extension), the same for every quote of the platform. */
      readonly claims: TdxPckClaims | undefined;
      /**
       * Whether `signature` over the 384-byte QE report verifies under the PCK key. Memoised: the
       * quoting enclave, and so its report and the PCK's signature over it, is the same for every
       * quote of a platform until the QE is updated, so a warm cache leaves one verify per quote.
       */
      qeReportSignedByPck(qeReport: Uint8Array, signature: Uint8Array): Promise<boolean>;
    };

/** QE reports remembered per PCK chain: a platform has one QE at a time, a few across updates. */
const QE_REPORTS_PER_CHAIN = 4;

/** Never rejects: a chain that does not parse, or that the certificate library chokes on, is unreadable. */
export async function examinePckChain(
  pem: Uint8Array,
  root: Certificate,
  signatures: SignatureVerifier,
): Promise<PckChainExamination> {
  try {
    const certificates = parseCertificates(pem, 'PCK certificate chain');
    const pck = certificates[0]!;
    const [chain, pckKey] = await Promise.all([
      examineChain(certificates, root, signatures),
      importCertificateP256Key(pck, signatures),
    ]);
    const qeReports = new ContentCache<Promise<boolean>>(QE_REPORTS_PER_CHAIN);
    const sgx = readPckSgxExtension(pck);
    return {
      readable: true,
      chain,
      pck,
      pckKey,
      sgx,
      claims: sgx === undefined ? undefined : pckClaims(pck, sgx),
      qeReportSignedByPck: (qeReport, signature) =>
        pckKey === undefined
          ? Promise.resolve(false)
          : qeReports.remember([qeReport, signature], () =>
              verifyP256(pckKey, signature, qeReport, signatures),
            ),
    };
  } catch {
    return { readable: false, problem: 'the PCK certificate chain in the quote is not readable PEM X.509' };
  }
}
