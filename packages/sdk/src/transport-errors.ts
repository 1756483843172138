import { TresorError } from '@tresor/protocol';

/**
 * Transport failures as catalogue errors. A connection that breaks — the gateway killed, a reset,
 * a proxy closing the socket — surfaces from Node as `Error: aborted`, `ECONNRESET`, `socket hang
 * up` or `ECONNREFUSED`, and from a browser's fetch as `TypeError: network error` (undici:
 * `terminated`). The client turns each into GATEWAY_UNREACHABLE saying what the caller has: no
 * answer at all, or an incomplete one. A caller's own abort (its AbortSignal) stays an AbortError,
 * and a TresorError (a refused TLS key, a failed decryption) keeps its code.
 */

/** True for the caller's own cancellation, which must reach it unchanged. */
export function isAbort(cause: unknown, signal?: AbortSignal | null): boolean {
  if (signal?.aborted === true) return true;
  return typeof cause === 'object' && cause !== null && (cause as { name?: unknown }).name === 'AbortError';
}

/** `ECONNRESET: aborted`, `TypeError: network error`: enough to tell failures apart, nothing of the payload. */
export function describeTransportFailure(cause: unknown): string {
  if (typeof cause !== 'object' || cause === null) return String(cause);
  const { code, name, message } = cause as { code?: unknown; name?: unknown; message?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : 'connection failed';
  const label = typeof code === 'string' && code !== '' ? code : typeof name === 'string' ? name : 'Error';
  return `${label}: ${text}`.slice(0, 200);
}

/** The connection broke before any answer arrived: the request may or may not have reached the gateway. */
export function noAnswer(origin: string, cause: unknown): TresorError {
  return new TresorError(
    'GATEWAY_UNREACHABLE',
    `the connection to ${origin} failed before an answer arrived (${describeTransportFailure(cause)}): there is no answer; check that the gateway is up and send the request again`,
    { cause },
  );
}

/** The connection broke while the answer was arriving: what was received is not the whole answer. */
export function incompleteAnswer(origin: string, cause: unknown): TresorError {
  return new TresorError(
    'GATEWAY_UNREACHABLE',
    `the connection to ${origin} broke while the answer was arriving (${describeTransportFailure(cause)}): the answer is incomplete, do not use it; send the request again once the gateway is back`,
    { cause },
  );
}

/** `error` as it should reach the caller: a catalogue error unchanged, its own abort as its signal's reason, else `map(error)`. */
export function mapTransportError(
  error: unknown,
  signal: AbortSignal | null | undefined,
  map: (cause: unknown) => TresorError,
): unknown {
  if (error instanceof TresorError) return error;
  // The caller cancelled: it gets its signal's reason (an AbortError), as from fetch.
  if (signal?.aborted === true) return (signal.reason as unknown) ?? error;
  if (isAbort(error)) return error;
  return map(error);
}

/**
 * The same bytes as `source`, but a failure while reading it errors the result with
 * `mapTransportError(failure, signal, map)`. Cancelling the result cancels `source`.
 */
export function mapBodyErrors(
  source: ReadableStream<Uint8Array>,
  signal: AbortSignal | null | undefined,
  map: (cause: unknown) => TresorError,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        controller.error(mapTransportError(error, signal, map));
        return;
      }
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
