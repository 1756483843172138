import { parseCertificates, type Certificate } from '../certs.js';
import { examineChain, type ChainExamination } from './chain.js';
import { importCertificateP256Key } from './ecdsa-p256.js';
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
      readonly pckKey: CryptoKey | undefined;
      /** Undefined when the leaf has no readable SGX extension, i.e. is not a PCK certificate. */
      readonly sgx: PckSgxExtension | undefined;
    };

/** Never rejects: a chain that does not parse, or that the certificate library chokes on, is unreadable. */
export async function examinePckChain(pem: Uint8Array, root: Certificate): Promise<PckChainExamination> {
  try {
    const certificates = parseCertificates(pem, 'PCK certificate chain');
    const pck = certificates[0]!;
    const [chain, pckKey] = await Promise.all([
      examineChain(certificates, root),
      importCertificateP256Key(pck),
    ]);
    return { readable: true, chain, pck, pckKey, sgx: readPckSgxExtension(pck) };
  } catch {
    return { readable: false, problem: 'the PCK certificate chain in the quote is not readable PEM X.509' };
  }
}
