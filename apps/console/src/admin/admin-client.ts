import { TresorError, isErrorCode } from '@tresor/protocol';
import { ADMIN_MEDIA_TYPE, ADMIN_PREFIX, signAdminRequest, type ConsoleAdminKey } from './admin-signer.js';

export type AdminFetch = (input: string, init: RequestInit) => Promise<Response>;

export interface AdminClientOptions {
  /** Where `/admin/v0/…` lives (the page's own origin for the gateway and `tresor console`). */
  readonly baseUrl: string;
  readonly audience: string;
  readonly key: ConsoleAdminKey;
  readonly fetch?: AdminFetch;
  readonly now?: () => Date;
}

/** A refusal the admin API answered with (`{code, message, action}`), or an unreachable API. */
function refusal(status: number, body: unknown): TresorError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof b.code === 'string' && isErrorCode(b.code) ? b.code : undefined;
  const message = typeof b.message === 'string' ? b.message : `the admin API answered ${status}`;
  return new TresorError(code ?? (status === 404 ? 'ROUTE_NOT_FOUND' : 'INTERNAL_ERROR'), message);
}

/**
 * Sends signed admin operations (`POST /admin/v0/<operation>`, body a compact JWS). Every request
 * is signed afresh (new jti, current iat): the API refuses replays.
 */
export class AdminClient {
  readonly #o: AdminClientOptions;

  constructor(options: AdminClientOptions) {
    this.#o = options;
  }

  get keyId(): string {
    return this.#o.key.id;
  }

  async call<T>(operation: string, request: unknown = null): Promise<T> {
    const path = `${ADMIN_PREFIX}/${operation}`;
    const jws = await signAdminRequest(this.#o.key, {
      audience: this.#o.audience,
      path,
      request,
      now: (this.#o.now ?? (() => new Date()))(),
    });
    const transport = this.#o.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
    let response: Response;
    try {
      response = await transport(new URL(path, this.#o.baseUrl).href, {
        method: 'POST',
        headers: { 'content-type': ADMIN_MEDIA_TYPE, accept: 'application/json' },
        body: jws,
        cache: 'no-store',
      });
    } catch (cause) {
      throw new TresorError('GATEWAY_UNREACHABLE', `could not reach the admin API at ${this.#o.baseUrl}`, {
        cause,
      });
    }
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) throw refusal(response.status, body);
    return body as T;
  }
}
