/// <reference types="node" />
/**
 * Node entry point of @tresor/attestation (`@tresor/attestation/node`): signature checks on
 * `node:crypto` for servers and the CLI (the main entry's verifiers take them through their
 * `signatures` option), and the optional collateral fetcher. Everything else lives in the
 * browser-safe main entry.
 */
export { nodeSignatureVerifier } from './node-signature-verifier.js';
export { createNodeVerifiers } from './node-verifiers.js';
export {
  checkServiceUrl,
  COLLATERAL_FETCH_DEFAULTS,
  DEFAULT_COLLATERAL_ENDPOINTS,
  fetchNvidiaRim,
  fetchSnpCollateral,
  fetchTdxCollateral,
  isRimId,
  kdsVcekPath,
  tdxCollateralRequest,
  type CollateralEndpoints,
  type CollateralFetchEvent,
  type CollateralFetchOptions,
  type CollateralFileRole,
  type FetchedCollateral,
  type FetchedCollateralFile,
  type PckCa,
  type SnpCollateralOptions,
  type TdxCollateralRequest,
} from './collateral/index.js';
