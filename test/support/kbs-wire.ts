import { Agent, request } from 'undici';

/**
 * TEST-ONLY: raw KBS requests, byte for byte as guest-components' kbs_protocol sends them, so tests
 * exercise the wire format independently of Tresor's own KBS client.
 */
export interface WireResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  json(): Record<string, unknown>;
}

export interface KbsWire {
  post(path: string, body: string | Uint8Array, headers?: Record<string, string>): Promise<WireResponse>;
  get(path: string, headers?: Record<string, string>): Promise<WireResponse>;
  close(): Promise<void>;
}

export function kbsWire(url: string, ca: string): KbsWire {
  const agent = new Agent({ connect: { ca }, connections: 256 });
  const send = async (
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body?: string | Uint8Array,
  ): Promise<WireResponse> => {
    const res = await request(`${url}${path}`, {
      method,
      dispatcher: agent,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      headers: res.headers,
      text,
      json: () => JSON.parse(text) as Record<string, unknown>,
    };
  };
  return {
    post: (path, body, headers = { 'content-type': 'application/json' }) => send('POST', path, headers, body),
    get: (path, headers = {}) => send('GET', path, headers),
    close: () => agent.close(),
  };
}

/** The `kbs-session-id=<id>` pair of a Set-Cookie header. */
export function sessionCookieOf(response: WireResponse): string {
  const raw = response.headers['set-cookie'];
  const cookie = (Array.isArray(raw) ? raw[0] : raw) ?? '';
  return cookie.split(';')[0] ?? '';
}
