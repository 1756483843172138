import { TresorError, isErrorCode, type ErrorCode } from '@tresor/protocol';
import { utf8Decode, utf8Encode } from '@tresor/crypto';
import type { KbsAttester } from './attester.js';
import {
  httpsTransport,
  type HttpsTransportOptions,
  type KbsTransport,
  type TransportResponse,
} from './client-transport.js';
import { KBS_ERROR_TYPE_PREFIX, KBS_PREFIX, KBS_PROTOCOL_VERSION, KBS_SESSION_COOKIE } from './protocol.js';
import { decryptFromKbs } from './jwe-decrypt.js';
import { additionalDeviceNonce, expectedReportData, primaryRuntimeData } from './runtime-data.js';
import type { TeePublicKeyJwk } from './tee-public-key.js';

/**
 * A KBS client speaking the protocol as guest-components' kbs_protocol does (RCAR: Request,
 * Challenge, Attestation, Response), for Tresor's own workloads — the serving service fetches its
 * model keys with it:
 *
 *   POST /auth {"version":"0.4.0","tee":…}            → nonce + kbs-session-id cookie
 *   POST /attest {runtime-data {nonce, tee-pubkey}, tee-evidence {primary_evidence, additional_evidence}}
 *   GET  /resource/<repository>/<type>/<tag>           → JWE, decrypted with the ephemeral private key
 *
 * The ephemeral key (EC P-256, guest-components' default) is generated per attestation and its
 * private half never leaves WebCrypto (non-extractable).
 */
export interface KbsClientOptions {
  /** The trust service, e.g. https://trust.tresor.internal:8443 */
  readonly url: string;
  readonly attester: KbsAttester;
  /** TLS settings for the default HTTPS transport. */
  readonly tls?: HttpsTransportOptions;
  /** Replaces the HTTPS transport (tests, other stacks). */
  readonly transport?: KbsTransport;
}

interface Attested {
  readonly cookie: string;
  readonly token: string;
  readonly privateKey: CryptoKey;
}

/** guest-components re-runs RCAR when a resource GET answers 401 (kbs_protocol rcar_client.rs). */
const RESOURCE_ATTEMPTS = 2;

const VARIANT_CODES: Readonly<Record<string, ErrorCode>> = {
  PolicyDeny: 'POLICY_DENIED',
  TokenNotFound: 'ATTESTATION_TOKEN_INVALID',
  TokenVerifierError: 'ATTESTATION_TOKEN_INVALID',
  InvalidRequestPath: 'RESOURCE_PATH_INVALID',
};

/** Parses `kbs:///<repository>/<type>/<tag>` or `<repository>/<type>/<tag>` into the request path. */
export function resourceRequestPath(uri: string): string {
  const path = uri.startsWith('kbs:///') ? uri.slice('kbs:///'.length) : uri;
  const segments = path.split('/');
  if (
    segments.length !== 3 ||
    segments.some((s) => !/^[A-Za-z0-9._-]{1,128}$/.test(s) || s === '.' || s === '..')
  ) {
    throw new TresorError('RESOURCE_PATH_INVALID', 'a resource URI is kbs:///<repository>/<type>/<tag>');
  }
  return `${KBS_PREFIX}/resource/${segments.join('/')}`;
}

function header(response: TransportResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string'
    ? value
    : Array.isArray(value)
      ? (value[0] as string | undefined)
      : undefined;
}

function sessionCookie(response: TransportResponse): string {
  const raw = response.headers['set-cookie'];
  const cookies = typeof raw === 'string' ? [raw] : (raw ?? []);
  for (const cookie of cookies) {
    const pair = cookie.split(';')[0] ?? '';
    if (pair.startsWith(`${KBS_SESSION_COOKIE}=`)) return pair;
  }
  throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS answer to /auth sets no kbs-session-id cookie');
}

function parseJson(body: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(utf8Decode(body)) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // handled below
  }
  throw new TresorError('KBS_RESPONSE_INVALID', `the KBS answer to ${what} is not a JSON object`);
}

/** The refusal of a KBS answer, as a TresorError: the Tresor code when the server names one. */
function refusal(response: TransportResponse, what: string): TresorError {
  let detail = `${what} answered ${response.status}`;
  let code: ErrorCode = 'KBS_RESPONSE_INVALID';
  try {
    const body = JSON.parse(utf8Decode(response.body)) as { type?: unknown; detail?: unknown };
    if (typeof body.detail === 'string') detail = body.detail.slice(0, 500);
    if (typeof body.type === 'string' && body.type.startsWith(`${KBS_ERROR_TYPE_PREFIX}/`)) {
      code = VARIANT_CODES[body.type.slice(KBS_ERROR_TYPE_PREFIX.length + 1)] ?? code;
    }
  } catch {
    // not a Trustee error body; keep the status
  }
  const named = header(response, 'tresor-error-code');
  if (named !== undefined && isErrorCode(named)) code = named;
  return new TresorError(code, detail, { details: { status: response.status } });
}

export class KbsClient {
  readonly #attester: KbsAttester;
  readonly #transport: KbsTransport;
  #attested: Attested | undefined;

  constructor(options: KbsClientOptions) {
    this.#attester = options.attester;
    this.#transport = options.transport ?? httpsTransport(options.url, options.tls);
  }

  /** The attestation token of the current session (after `attest` or a successful `getResource`). */
  get token(): string | undefined {
    return this.#attested?.token;
  }

  /** Runs RCAR: auth, then attest with fresh evidence bound to a fresh ephemeral key. */
  async attest(): Promise<string> {
    const auth = await this.#transport.request(
      'POST',
      `${KBS_PREFIX}/auth`,
      { 'content-type': 'application/json' },
      utf8Encode(
        JSON.stringify({
          version: KBS_PROTOCOL_VERSION,
          tee: this.#attester.tee,
          'extra-params': { 'supported-hash-algorithms': ['sha384'] },
        }),
      ),
    );
    if (auth.status !== 200) throw refusal(auth, '/auth');
    const cookie = sessionCookie(auth);
    const { nonce } = parseJson(auth.body, '/auth');
    if (typeof nonce !== 'string')
      throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS challenge has no nonce');

    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
      'deriveBits',
    ]);
    const exported = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const teePubkey: TeePublicKeyJwk = {
      kty: 'EC',
      crv: 'P-256',
      alg: 'ECDH-ES+A256KW',
      x: exported.x ?? '',
      y: exported.y ?? '',
    };
    const additional =
      this.#attester.additionalEvidence === undefined
        ? ''
        : JSON.stringify(
            await this.#attester.additionalEvidence({
              gpuNonce: additionalDeviceNonce(teePubkey, nonce),
            }),
          );
    const reportData = await expectedReportData(primaryRuntimeData(teePubkey, nonce, additional));
    const primary = await this.#attester.primaryEvidence({ reportData, nonce });
    const attestation = {
      ...(this.#attester.initData === undefined
        ? {}
        : { 'init-data': { format: 'toml', body: this.#attester.initData } }),
      'runtime-data': { nonce, 'tee-pubkey': teePubkey },
      'tee-evidence': { primary_evidence: primary, additional_evidence: additional },
    };
    const attest = await this.#transport.request(
      'POST',
      `${KBS_PREFIX}/attest`,
      { 'content-type': 'application/json', cookie },
      utf8Encode(JSON.stringify(attestation)),
    );
    if (attest.status !== 200) throw refusal(attest, '/attest');
    const { token } = parseJson(attest.body, '/attest');
    if (typeof token !== 'string')
      throw new TresorError('KBS_RESPONSE_INVALID', 'the KBS attest answer has no token');
    this.#attested = { cookie, token, privateKey: pair.privateKey };
    return token;
  }

  /**
   * Fetches and decrypts a resource (`kbs:///<repository>/<type>/<tag>`), attesting first when there
   * is no attested session, and once more when the session was refused (expired, restarted server).
   */
  async getResource(uri: string): Promise<Uint8Array> {
    const path = resourceRequestPath(uri);
    for (let attempt = 1; ; attempt++) {
      const attested = this.#attested ?? (await this.#attestAndKeep());
      const response = await this.#transport.request('GET', path, { cookie: attested.cookie });
      if (response.status === 200) {
        return decryptFromKbs(parseJson(response.body, 'the resource request'), attested.privateKey);
      }
      const error = refusal(response, `GET ${path}`);
      this.#attested = undefined;
      const sessionProblem = response.status === 401 && error.code !== 'POLICY_DENIED';
      if (!sessionProblem || attempt >= RESOURCE_ATTEMPTS) throw error;
    }
  }

  close(): void {
    this.#transport.close();
  }

  async #attestAndKeep(): Promise<Attested> {
    await this.attest();
    return this.#attested!;
  }
}
