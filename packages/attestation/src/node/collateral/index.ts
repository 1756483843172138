/**
 * The optional collateral fetcher (issue #4): fills a directory with the certificates, CRLs, TCB
 * info, QE identity and RIMs the verifiers take as files, from AMD KDS, Intel PCS and the NVIDIA RIM
 * service, with an on-disk cache. The verifiers never use it; nothing fetched is trusted before
 * `tresor attest verify` has checked it against the pinned vendor roots.
 */
export { fetchSnpCollateral, kdsVcekPath, type SnpCollateralOptions } from './amd-kds.js';
export {
  fetchTdxCollateral,
  tdxCollateralRequest,
  type PckCa,
  type TdxCollateralRequest,
} from './intel-pcs.js';
export { fetchNvidiaRim, isRimId } from './nvidia-rim.js';
export type { CollateralFileRole, FetchedCollateral, FetchedCollateralFile } from './collateral-document.js';
export {
  checkServiceUrl,
  COLLATERAL_FETCH_DEFAULTS,
  DEFAULT_COLLATERAL_ENDPOINTS,
  type CollateralEndpoints,
  type CollateralFetchEvent,
  type CollateralFetchOptions,
} from './fetch-options.js';
