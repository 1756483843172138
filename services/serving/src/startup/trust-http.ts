import { isErrorCode, TresorError, type ErrorCode } from '@tresor/protocol';
import type { KbsTransport, TransportResponse } from '@tresor/trust';

/** Reads one header of a transport answer. */
export function responseHeader(response: TransportResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string'
    ? value
    : Array.isArray(value)
      ? (value[0] as string | undefined)
      : undefined;
}

/** The catalogue code the trust service named for a refusal (`tresor-error-code`), if any. */
export function refusalCode(response: TransportResponse): ErrorCode | undefined {
  const named = responseHeader(response, 'tresor-error-code');
  return named !== undefined && isErrorCode(named) ? named : undefined;
}

/** A JSON object answer, or TRUST_SERVICE_UNREACHABLE naming what was asked. */
export function jsonObject(response: TransportResponse, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(new TextDecoder().decode(response.body)) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw new TresorError('KBS_RESPONSE_INVALID', `the trust service's answer to ${what} is not a JSON object`);
}

/** GET `path` from the trust service; its refusal as a TresorError carrying the service's code. */
export async function trustGet(
  transport: KbsTransport,
  path: string,
  accept: string,
): Promise<TransportResponse> {
  const response = await transport.request('GET', path, { accept });
  if (response.status !== 200) {
    throw new TresorError(
      refusalCode(response) ?? 'TRUST_SERVICE_UNREACHABLE',
      `GET ${path} answered ${response.status}`,
    );
  }
  return response;
}
