import { TresorError } from '@tresor/protocol';

/**
 * Options of the collateral fetcher: where the vendor services are, how patient to be with them, and
 * the world it touches (HTTP, clock, timers), injected so tests run against a local server at a
 * fixed instant without waiting.
 */

/** Base URLs of the vendor services. Paths (`/vcek/v1/…`, `/tdx/certification/v4/…`) are appended. */
export interface CollateralEndpoints {
  /** AMD Key Distribution Service. */
  readonly amdKds: string;
  /** Intel Provisioning Certification Service, API v4 (or a PCCS serving the same paths). */
  readonly intelPcs: string;
  /**
   * The Intel SGX Root CA's CRL. Undefined: the URL in the pinned root certificate's CRL
   * distribution point (RFC 5280 §4.2.1.13), as Intel publishes it.
   */
  readonly intelRootCaCrl?: string;
  /** NVIDIA RIM service. */
  readonly nvidiaRim: string;
}

export const DEFAULT_COLLATERAL_ENDPOINTS: CollateralEndpoints = {
  amdKds: 'https://kdsintf.amd.com',
  intelPcs: 'https://api.trustedservices.intel.com',
  nvidiaRim: 'https://rim.attestation.nvidia.com',
};

/** What the fetcher reports while it works (the CLI draws it on a terminal). */
export type CollateralFetchEvent =
  | { readonly type: 'cached'; readonly what: string; readonly path: string }
  | { readonly type: 'request'; readonly what: string; readonly url: string; readonly attempt: number }
  | {
      readonly type: 'retry';
      readonly what: string;
      readonly url: string;
      readonly reason: string;
      readonly delayMs: number;
    }
  | { readonly type: 'written'; readonly what: string; readonly path: string };

export interface CollateralFetchOptions {
  /** The directory that caches the documents and holds the files `tresor attest verify` takes. */
  readonly directory: string;
  readonly endpoints?: Partial<CollateralEndpoints>;
  /** Ignore cached documents and fetch again (a fetched document still replaces the cached one). */
  readonly refresh?: boolean;
  /** Default: the global fetch. */
  readonly fetch?: typeof globalThis.fetch;
  /** Default: the system clock. Decides freshness of cached documents and HTTP-date Retry-After. */
  readonly now?: () => Date;
  /** Default: a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Per attempt, headers and body together. Default 30 s. */
  readonly timeoutMs?: number;
  /** Further attempts after a network error, a timeout, 429 or 5xx. Default 3. */
  readonly retries?: number;
  /** First backoff delay, doubled per retry, when the service sends no Retry-After. Default 1 s. */
  readonly retryBaseDelayMs?: number;
  /** Longest wait accepted between attempts, Retry-After included. Default 60 s. */
  readonly maxRetryDelayMs?: number;
  /** Largest response body accepted. Default 4 MiB. */
  readonly maxResponseBytes?: number;
  readonly onProgress?: (event: CollateralFetchEvent) => void;
}

export const COLLATERAL_FETCH_DEFAULTS = {
  timeoutMs: 30_000,
  retries: 3,
  retryBaseDelayMs: 1_000,
  // AMD KDS throttles per client and answers 429 with Retry-After of several seconds.
  maxRetryDelayMs: 60_000,
  // The largest real document, an Intel PCK Processor CA CRL, is tens of KiB; RIMs are below 1 MiB.
  maxResponseBytes: 4 << 20,
} as const;

/** The options with every default filled in. */
export interface ResolvedFetchOptions {
  readonly endpoints: CollateralEndpoints;
  readonly refresh: boolean;
  readonly fetch: typeof globalThis.fetch;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryBaseDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxResponseBytes: number;
  readonly onProgress: (event: CollateralFetchEvent) => void;
}

export function resolveFetchOptions(options: CollateralFetchOptions): ResolvedFetchOptions {
  const endpoints = { ...DEFAULT_COLLATERAL_ENDPOINTS, ...definedOnly(options.endpoints ?? {}) };
  checkServiceUrl(endpoints.amdKds, 'the AMD KDS URL');
  checkServiceUrl(endpoints.intelPcs, 'the Intel PCS URL');
  checkServiceUrl(endpoints.nvidiaRim, 'the NVIDIA RIM service URL');
  if (endpoints.intelRootCaCrl !== undefined)
    checkServiceUrl(endpoints.intelRootCaCrl, 'the Intel root CA CRL URL');
  return {
    endpoints,
    refresh: options.refresh ?? false,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    now: options.now ?? (() => new Date()),
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    timeoutMs: positive(options.timeoutMs, COLLATERAL_FETCH_DEFAULTS.timeoutMs, 'timeoutMs'),
    retries: count(options.retries, COLLATERAL_FETCH_DEFAULTS.retries, 'retries'),
    retryBaseDelayMs: count(
      options.retryBaseDelayMs,
      COLLATERAL_FETCH_DEFAULTS.retryBaseDelayMs,
      'retryBaseDelayMs',
    ),
    maxRetryDelayMs: count(
      options.maxRetryDelayMs,
      COLLATERAL_FETCH_DEFAULTS.maxRetryDelayMs,
      'maxRetryDelayMs',
    ),
    maxResponseBytes: positive(
      options.maxResponseBytes,
      COLLATERAL_FETCH_DEFAULTS.maxResponseBytes,
      'maxResponseBytes',
    ),
    onProgress: options.onProgress ?? (() => undefined),
  };
}

/** Loopback hosts, where plain HTTP reaches only this machine (a local PCCS, a test server). */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Refuses anything but an absolute https URL (http only on loopback). The documents are signed,
 * so a network attacker cannot forge them, but over plain HTTP it could see which chip IDs and
 * FMSPCs are asked for and answer with stale or withheld collateral.
 */
export function checkServiceUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TresorError('USAGE_INVALID', `${what} "${text}" is not an absolute URL`);
  }
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
  if (!secure || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new TresorError(
      'USAGE_INVALID',
      `${what} "${text}" must be an https:// URL (http:// only on localhost) without credentials, query or fragment`,
    );
  }
  return url;
}

/** `base` + `path`, keeping any path prefix of the base (a PCCS or proxy mounted under a path). */
export function serviceUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TresorError('USAGE_INVALID', `${name} must be a positive integer, not ${value}`);
  }
  return value;
}

function count(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TresorError('USAGE_INVALID', `${name} must be a non-negative integer, not ${value}`);
  }
  return value;
}
