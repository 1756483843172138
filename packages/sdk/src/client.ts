import { ATTESTATION_BUNDLE_PATH, RECEIPT_HEADER, TresorError, type ErrorCode } from '@tresor/protocol';
import {
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
  OHTTP_KEYS_MEDIA_TYPE,
  OHTTP_REQUEST_MEDIA_TYPE,
  OHTTP_RESPONSE_MEDIA_TYPE,
  base64ToBytes,
  bytesToHex,
  concatBytes,
  createChunkedOhttpClient,
  decodeBhttpResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBhttpRequest,
  encodeKeyConfig,
  equalBytes,
  utf8Decode,
  type BhttpField,
  type BhttpRequest,
  type OhttpAeadBackend,
  type OhttpAeadOptions,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import type { VerifierSet } from '@tresor/attestation';
import { parseAttestationBundle, verifyAttestationBundle, type BundleVerification } from './bundle.js';
import { sha256Hex } from './component-evidence.js';
import { parseTresorPolicy, type TresorPolicy } from './policy.js';
import { readStreamedBhttpResponse } from './bhttp-response-stream.js';
import { readFetchCall } from './fetch-call.js';
import {
  receiptNeedsFreshReplicas,
  verifyReceipt,
  type Ed25519Verify,
  type ReceiptVerifyOptions,
  type VerifiedReceipt,
} from './receipts.js';
import { splitSseReceipt } from './sse-receipt.js';
import { DOCUMENT_KEYS_PATH, pinnedDocumentKeys } from './trust-documents.js';
import { incompleteAnswer, mapBodyErrors, mapTransportError, noAnswer } from './transport-errors.js';
import {
  VERIFICATION_DOCUMENT_VERSION,
  failedChecks,
  type VerificationDocument,
} from './verification-document.js';

/** The gateway's OHTTP endpoint and key configuration list (RFC 9540). */
export const OHTTP_PATH = '/v1/ohttp';
export const OHTTP_KEYS_PATH = '/.well-known/ohttp-gateway';
const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * How a platform that can see TLS certificates binds the connection to the attested key. Node has
 * one (`@tresor/sdk/node`); a browser page cannot see certificates and relies on the OHTTP key
 * binding alone (the check reads "not-observable").
 */
export interface TlsBinding {
  /** SHA-256 (hex) of the SubjectPublicKeyInfo of the connection that answered `response`. */
  observed(response: Response): string | undefined;
  /** From now on, refuse — before any body is sent — connections to `origin` with another key. */
  pin(origin: string, spkiSha256: string): void;
}

export interface ConnectOptions {
  /** A parsed policy, or the policy file's JSON value. */
  readonly policy: unknown;
  /** The transport (default: globalThis.fetch). */
  readonly fetch?: FetchFunction;
  /** The clock (default: the system clock). */
  readonly now?: () => Date;
  readonly tls?: TlsBinding;
  /** TEE verifiers (default: WebCrypto); tests inject hardware stand-ins. */
  readonly verifiers?: VerifierSet;
  /** Called with every receipt that verified. */
  readonly onReceipt?: (receipt: VerifiedReceipt) => void;
  /** 32 random bytes as hex; injectable for tests. */
  readonly nonce?: () => string;
  /**
   * The AES-GCM/HKDF backend for OHTTP (default: WebCrypto, which runs everywhere). On Node pass
   * `nodeOhttpAead` from `@tresor/crypto/node`: byte-identical output, ~7 µs instead of ~50 µs per chunk.
   */
  readonly ohttpAead?: OhttpAeadBackend;
  /**
   * SHA-256 (hex) of request and response bodies, for their receipts (default: WebCrypto). On Node
   * `createNodeTransport` passes node:crypto's: the same digest without a thread-pool job per body.
   */
  readonly sha256Hex?: (bytes: Uint8Array) => string | Promise<string>;
  /**
   * Ed25519 for receipt signatures (default: WebCrypto through jose). On Node `createNodeTransport`
   * passes node:crypto's: the same checks without a thread-pool job per response.
   */
  readonly ed25519Verify?: Ed25519Verify;
}

export interface TresorClient {
  readonly gatewayUrl: string;
  /** The current verification document (every check passed). */
  readonly document: VerificationDocument;
  /** The receipt of the last model response, once it verified. */
  readonly lastReceipt: VerifiedReceipt | undefined;
  /** fetch-compatible: give it to `new OpenAI({ baseURL: `${gatewayUrl}/v1`, fetch })`. */
  readonly fetch: FetchFunction;
  /** Verifies again now (new nonce); throws like `connect` when a check fails. */
  reverify(): Promise<VerificationDocument>;
  /** Fetches the gateway's key configurations; re-verifies when the attested one is no longer served. */
  checkKeyConfig(): Promise<VerificationDocument>;
}

/** The outcome of one verification run: the document, and what the client needs to send. */
export interface GatewayVerification {
  readonly document: VerificationDocument;
  readonly bundle: BundleVerification | null;
}

function isPolicy(value: unknown): value is TresorPolicy {
  return typeof value === 'object' && value !== null && Object.isFrozen(value) && 'trustServiceKeys' in value;
}

/** The gateway's base URL, normalised: https (or http for loopback tests), no query, no trailing slash. */
export function normaliseGatewayUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new TresorError('USAGE_INVALID', `the gateway URL ${JSON.stringify(text)} is not a URL`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TresorError('USAGE_INVALID', `the gateway URL must be https://, not ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '')
    throw new TresorError('USAGE_INVALID', 'the gateway URL must not contain credentials');
  url.search = '';
  url.hash = '';
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return url;
}

/** `path` under the gateway's base URL (which may itself have a path prefix). */
function at(base: URL, path: string): URL {
  return new URL(`${base.pathname.replace(/\/$/, '')}${path}`, base.origin);
}

function randomNonce(): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
}

async function readLimited(
  response: Response,
  limit: number,
  what: string,
  origin: string,
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limit) throw new TresorError('VERIFICATION_FAILED', `${what} is larger than ${limit} bytes`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (cause) {
    throw mapTransportError(cause, null, (c) => incompleteAnswer(origin, c));
  }
  if (bytes.length > limit)
    throw new TresorError('VERIFICATION_FAILED', `${what} is larger than ${limit} bytes`);
  return bytes;
}

/**
 * Fetches the attestation bundle with a fresh nonce and verifies everything in it against the
 * policy. Never throws for a failed check (the document says what failed); throws
 * GATEWAY_UNREACHABLE when the gateway cannot be reached, TRUST_POLICY_INVALID for a bad policy.
 */
export async function verifyGateway(
  gatewayUrl: string,
  options: ConnectOptions,
): Promise<GatewayVerification> {
  const policy = isPolicy(options.policy) ? options.policy : parseTresorPolicy(options.policy);
  const base = normaliseGatewayUrl(gatewayUrl);
  const transport = options.fetch ?? globalThis.fetch.bind(globalThis);
  const now = (options.now ?? (() => new Date()))();
  const nonce = (options.nonce ?? randomNonce)();
  const url = at(base, ATTESTATION_BUNDLE_PATH);
  url.searchParams.set('nonce', nonce);
  let response: Response;
  try {
    response = await transport(url, { headers: { accept: 'application/json' } });
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError(
      'GATEWAY_UNREACHABLE',
      `could not fetch the attestation bundle from ${base.origin}`,
      { cause },
    );
  }
  if (response.status !== 200) {
    throw new TresorError(
      'GATEWAY_UNREACHABLE',
      `the gateway answered ${response.status} for its attestation bundle`,
    );
  }
  const tlsSpki = options.tls?.observed(response);
  let bundleJson: unknown;
  try {
    bundleJson = JSON.parse(
      utf8Decode(await readLimited(response, MAX_BUNDLE_BYTES, 'the attestation bundle', base.origin)),
    );
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('VERIFICATION_FAILED', 'the attestation bundle is not JSON', { cause });
  }
  const bundle = parseAttestationBundle(bundleJson);
  const trustUrl = bundle.trustUrl;
  const documentKeys = await pinnedDocumentKeys(
    policy,
    trustUrl === undefined
      ? undefined
      : async () => {
          const res = await transport(new URL(DOCUMENT_KEYS_PATH, trustUrl), {
            headers: { accept: 'application/json' },
          });
          return JSON.parse(
            utf8Decode(await readLimited(res, 64 * 1024, 'the trust service JWKS', new URL(trustUrl).origin)),
          ) as unknown;
        },
  );
  const verified = await verifyAttestationBundle(bundle, {
    policy,
    nonce,
    now,
    documentKeys,
    ...(tlsSpki === undefined
      ? {
          tlsNotObservableReason:
            options.tls === undefined
              ? 'a browser cannot see the TLS certificate; requests are bound to the attested OHTTP key instead'
              : 'the TLS connection exposed no certificate',
        }
      : { gatewayTlsSpkiSha256: tlsSpki }),
    ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }),
  });
  return {
    bundle: verified,
    document: {
      version: VERIFICATION_DOCUMENT_VERSION,
      gatewayUrl: base.href.replace(/\/$/, ''),
      time: now.toISOString(),
      insecure: verified.insecure,
      ok: verified.ok,
      entries: verified.entries,
    },
  };
}

/** The error a failed verification throws: the first failed check's code, naming the check. */
export function verificationError(document: VerificationDocument): TresorError {
  const failed = failedChecks(document.entries);
  const first = failed[0];
  const code: ErrorCode = first?.code ?? 'VERIFICATION_FAILED';
  const names = failed.map((f) => `${f.component}${f.id === '' ? '' : ` ${f.id}`}: ${f.check}`);
  return new TresorError(
    code,
    `verification of ${document.gatewayUrl} failed (${names.join('; ')}): ${first?.seen ?? ''}; expected ${first?.expected ?? ''}. No request was sent`,
    { details: { checks: failed.map((f) => `${f.component}.${f.check}`), document } },
  );
}

interface Verified {
  readonly document: VerificationDocument;
  readonly bundle: BundleVerification;
  readonly keyConfig: OhttpKeyConfig;
  readonly keyConfigBytes: Uint8Array;
  readonly expiresAt: number;
}

const HOP_BY_HOP = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'accept-encoding',
]);
const MODEL_PATHS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings'];

/**
 * Verifies the gateway (see verifyGateway) and returns a client whose `fetch` sends every request
 * OHTTP-encapsulated to the attested key. Throws the failed check's code (VERIFICATION_FAILED when
 * it has none) naming it, before any request body is sent.
 */
export async function connect(gatewayUrl: string, options: ConnectOptions): Promise<TresorClient> {
  const policy = isPolicy(options.policy) ? options.policy : parseTresorPolicy(options.policy);
  const opts: ConnectOptions = { ...options, policy };
  const base = normaliseGatewayUrl(gatewayUrl);
  const transport = options.fetch ?? globalThis.fetch.bind(globalThis);
  const clock = options.now ?? (() => new Date());
  let lastReceipt: VerifiedReceipt | undefined;

  const verifyNow = async (): Promise<Verified> => {
    const { document, bundle } = await verifyGateway(base.href, opts);
    if (!document.ok || bundle === null) throw verificationError(document);
    const keyConfig = bundle.gateway.keyConfig;
    if (keyConfig === null) throw verificationError(document);
    options.tls?.pin(base.origin, bundle.gateway.tlsSpkiSha256);
    return {
      document,
      bundle,
      keyConfig,
      keyConfigBytes: base64ToBytes(bundle.gateway.hpkeKeyConfig),
      expiresAt: bundle.expiresAt.getTime(),
    };
  };
  let state = await verifyNow();
  let pending: Promise<Verified> | undefined;
  const reverify = async (): Promise<Verified> => {
    pending ??= verifyNow().finally(() => {
      pending = undefined;
    });
    state = await pending;
    return state;
  };
  const current = async (): Promise<Verified> => (clock().getTime() >= state.expiresAt ? reverify() : state);
  /**
   * A verification with another key than `stale`: the one another request already made since
   * (complete, with its own fresh nonce) when its key differs, else a new one now.
   */
  const newerThan = async (stale: Verified): Promise<Verified> =>
    state !== stale && !equalBytes(state.keyConfigBytes, stale.keyConfigBytes) ? state : reverify();

  const checkKeyConfig = async (): Promise<VerificationDocument> => {
    const res = await transport(at(base, OHTTP_KEYS_PATH), {
      headers: { accept: OHTTP_KEYS_MEDIA_TYPE },
    }).catch((cause: unknown) => {
      throw new TresorError('GATEWAY_UNREACHABLE', `could not fetch ${OHTTP_KEYS_PATH}`, { cause });
    });
    let served: OhttpKeyConfig[] = [];
    try {
      served = res.ok ? decodeKeyConfigList(new Uint8Array(await res.arrayBuffer())) : [];
    } catch {
      served = [];
    }
    const attested = state.keyConfigBytes;
    if (!served.some((c) => equalBytes(encodeKeyConfig(c), attested))) await reverify();
    return state.document;
  };

  const digestHex = options.sha256Hex ?? sha256Hex;
  const receiptOptions: ReceiptVerifyOptions =
    options.ed25519Verify === undefined ? {} : { ed25519Verify: options.ed25519Verify };
  const clientFetch: FetchFunction = async (input, init) => {
    const call = readFetchCall(input, init);
    const url = call.url;
    if (url.origin !== base.origin) {
      throw new TresorError(
        'USAGE_INVALID',
        `this client only sends to ${base.origin}, not ${url.origin}; nothing was sent`,
      );
    }
    // Verification first: a failure throws before the body is even read.
    let verified = await current();
    const body = (await call.body()) ?? new Uint8Array(0);
    const streaming = isStreamRequest(body);
    const headers: BhttpField[] = [];
    call.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) headers.push([name, value]);
    });
    const inner: BhttpRequest = {
      method: call.method,
      scheme: url.protocol.slice(0, -1),
      authority: url.host,
      path: `${url.pathname}${url.search}`,
      headers,
      content: body,
      trailers: [],
    };
    const expectsReceipt =
      policy.requireReceipts && call.method === 'POST' && MODEL_PATHS.includes(url.pathname);
    const requestSha256 = await digestHex(body);
    const accept = (receipt: VerifiedReceipt): void => {
      lastReceipt = receipt;
      options.onReceipt?.(receipt);
    };
    const checkReceipt = async (
      jws: string | null,
      responseSha256: string,
      status: number,
    ): Promise<void> => {
      if (status < 200 || status > 299) return;
      if (jws === null) {
        if (expectsReceipt)
          throw new TresorError(
            'RECEIPT_INVALID',
            'the response carries no receipt from the serving enclave',
          );
        return;
      }
      const expected = { requestSha256, responseSha256 };
      try {
        accept(await verifyReceipt(jws, verified.bundle.serving, expected, receiptOptions));
      } catch (error) {
        // A replica that restarted since this client verified signs with a new attested key under
        // the same id: verify the gateway again (its bundle carries every replica's evidence, fresh
        // for a new nonce) and check the receipt once more, against that verification only.
        if (!receiptNeedsFreshReplicas(error)) throw error;
        const fresh = await reverify();
        accept(await verifyReceipt(jws, fresh.bundle.serving, expected, receiptOptions));
      }
    };

    const aead: OhttpAeadOptions = options.ohttpAead === undefined ? {} : { aead: options.ohttpAead };
    for (let attempt = 0; ; attempt++) {
      const outer = streaming
        ? await sendChunked(transport, base, verified.keyConfig, inner, call.signal, aead)
        : await sendSingle(transport, base, verified.keyConfig, inner, call.signal, aead);
      if (outer.kind === 'refused' && attempt === 0 && UNOPENED_REFUSALS.has(outer.code)) {
        // Refused in the clear before the gateway could open the request (its key changed: a
        // rotation, or a restart): nothing was accepted, so verify the gateway again and send
        // once more, sealed to the newly attested key. A second refusal reaches the caller.
        verified = await newerThan(verified);
        continue;
      }
      if (outer.kind !== 'ok') return outer.response;
      const { status, headers: responseHeaders } = await outer.head;
      const out = new Headers();
      for (const [name, value] of responseHeaders)
        if (!HOP_BY_HOP.has(name.toLowerCase())) out.append(name, value);
      if (outer.whole !== undefined) {
        const content = await outer.whole;
        await checkReceipt(out.get(RECEIPT_HEADER), await digestHex(content), status);
        return new Response(nullBodyStatus(status) ? null : (content as BodyInit), { status, headers: out });
      }
      const isSse = (out.get('content-type') ?? '').startsWith('text/event-stream');
      let stream = outer.body;
      if (isSse) {
        stream = splitSseReceipt(
          stream,
          ({ receipt, responseSha256 }) => checkReceipt(receipt, responseSha256, status),
          { sha256Hex: digestHex },
        );
      } else if (expectsReceipt) {
        const content = await collect(stream);
        await checkReceipt(out.get(RECEIPT_HEADER), await digestHex(content), status);
        return new Response(content as BodyInit, { status, headers: out });
      }
      return new Response(stream, { status, headers: out });
    }
  };

  return {
    gatewayUrl: base.href.replace(/\/$/, ''),
    get document() {
      return state.document;
    },
    get lastReceipt() {
      return lastReceipt;
    },
    fetch: clientFetch,
    reverify: async () => (await reverify()).document,
    checkKeyConfig,
  };
}

function nullBodyStatus(status: number): boolean {
  return status === 204 || status === 205 || status === 304;
}

function isStreamRequest(body: Uint8Array): boolean {
  if (body.length === 0 || body.length > 16 * 1024 * 1024) return false;
  try {
    const value = JSON.parse(utf8Decode(body)) as unknown;
    return typeof value === 'object' && value !== null && (value as { stream?: unknown }).stream === true;
  } catch {
    return false;
  }
}

/**
 * Refusals that mean the gateway could not open the request at all (no key with that id, or the
 * key under that id is not the one it was sealed to): safe to send again, sealed to a new key.
 */
const UNOPENED_REFUSALS: ReadonlySet<string | undefined> = new Set([
  'OHTTP_KEY_ID_UNKNOWN',
  'OHTTP_DECRYPT_FAILED',
]);

type Outer =
  /** Answered in the clear (bad key id, rate limit, …), with the catalogue code of its body. */
  | { kind: 'refused'; code: string | undefined; response: Response }
  | {
      kind: 'ok';
      head: Promise<{ status: number; headers: readonly BhttpField[] }>;
      body: ReadableStream<Uint8Array>;
      whole?: Promise<Uint8Array>;
    };

async function post(
  transport: FetchFunction,
  base: URL,
  contentType: string,
  accept: string,
  body: Uint8Array,
  signal: AbortSignal | null,
): Promise<Response> {
  try {
    return await transport(at(base, OHTTP_PATH), {
      method: 'POST',
      headers: { 'content-type': contentType, accept },
      body: body as BodyInit,
      signal,
    });
  } catch (cause) {
    throw mapTransportError(cause, signal, (c) => noAnswer(base.origin, c));
  }
}

/** A response outside the encryption is the gateway's own refusal (bad key id, rate limit, …): passed on as is. */
async function outerError(response: Response, origin: string, signal: AbortSignal | null): Promise<Outer> {
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    throw mapTransportError(cause, signal, (c) => incompleteAnswer(origin, c));
  }
  const copy = new Response(text, { status: response.status, headers: response.headers });
  return { kind: 'refused', code: refusalCode(text), response: copy };
}

/** The `error.code` of an OpenAI-shaped error body, if it is one. */
function refusalCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

async function sendSingle(
  transport: FetchFunction,
  base: URL,
  keyConfig: OhttpKeyConfig,
  inner: BhttpRequest,
  signal: AbortSignal | null,
  aead: OhttpAeadOptions,
): Promise<Outer> {
  const { encapsulatedRequest, context } = await encapsulateRequest(
    keyConfig,
    encodeBhttpRequest(inner),
    aead,
  );
  const response = await post(
    transport,
    base,
    OHTTP_REQUEST_MEDIA_TYPE,
    OHTTP_RESPONSE_MEDIA_TYPE,
    encapsulatedRequest,
    signal,
  );
  if (!response.ok || !(response.headers.get('content-type') ?? '').startsWith(OHTTP_RESPONSE_MEDIA_TYPE)) {
    return outerError(response, base.origin, signal);
  }
  let sealed: Uint8Array;
  try {
    sealed = new Uint8Array(await response.arrayBuffer());
  } catch (cause) {
    throw mapTransportError(cause, signal, (c) => incompleteAnswer(base.origin, c));
  }
  if (sealed.length > MAX_RESPONSE_BYTES)
    throw new TresorError('OHTTP_MESSAGE_MALFORMED', 'the sealed response is too large');
  const message = decodeBhttpResponse(await context.decapsulateResponse(sealed)).message;
  return {
    kind: 'ok',
    head: Promise.resolve({ status: message.status, headers: message.headers }),
    body: new ReadableStream(),
    whole: Promise.resolve(message.content),
  };
}

async function sendChunked(
  transport: FetchFunction,
  base: URL,
  keyConfig: OhttpKeyConfig,
  inner: BhttpRequest,
  signal: AbortSignal | null,
  aead: OhttpAeadOptions,
): Promise<Outer> {
  const client = await createChunkedOhttpClient(keyConfig, aead);
  const encoded = encodeBhttpRequest(inner, { framing: 'indeterminate-length' });
  // The whole request is at hand: written straight into the sealing stream, without a source
  // stream and a pipe around it.
  const writer = client.requestEncapsulator.writable.getWriter();
  // A sealing failure errors the readable side too, and reaches the caller from there.
  Promise.all([writer.write(encoded), writer.close()]).catch(() => undefined);
  const sealed = await collect(client.requestEncapsulator.readable);
  const response = await post(
    transport,
    base,
    OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
    OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
    sealed,
    signal,
  );
  if (
    !response.ok ||
    response.body === null ||
    !(response.headers.get('content-type') ?? '').startsWith(OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE)
  ) {
    return outerError(response, base.origin, signal);
  }
  const received = mapBodyErrors(response.body, signal, (c) => incompleteAnswer(base.origin, c));
  const { head, body } = readStreamedBhttpResponse(received.pipeThrough(client.responseDecapsulator));
  await head;
  return { kind: 'ok', head, body };
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return concatBytes(...parts);
}
