import { createVerifierSet, type VerifierSet } from '../verify-attestation.js';
import { nodeSignatureVerifier } from './node-signature-verifier.js';

/**
 * The verifiers for Node processes (servers, the CLI, benchmarks): the same checks as
 * `DEFAULT_VERIFIERS`, with every signature checked by `node:crypto`. Each call makes a fresh set
 * with its own chain caches; keep one set for the life of a process to keep the caches warm.
 */
export function createNodeVerifiers(): VerifierSet {
  return createVerifierSet({ signatures: nodeSignatureVerifier });
}
