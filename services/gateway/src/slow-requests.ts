import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2';

interface NodeServer {
  requestTimeout?: number;
  headersTimeout?: number;
  on(event: 'stream', listener: (stream: ServerHttp2Stream) => void): unknown;
}

/**
 * Cuts requests that arrive too slowly (slowloris): fastify applies `requestTimeout` only to an
 * HTTP/1.1-only server. With HTTP/2 on (the gateway's default) its HTTP/1.1 fallback kept Node's
 * defaults (300 s for a request, 60 s for headers) and HTTP/2 streams had no limit but the 72 s idle
 * timeout, which a client sending a byte every few seconds never hits. So: the HTTP/1.1 limits are
 * set on the Node server itself (answered 408 and closed), and an HTTP/2 stream whose request body
 * has not ended `timeoutMs` after it opened is reset (CANCEL).
 */
export function limitSlowRequests(server: unknown, timeoutMs: number): void {
  const node = server as NodeServer;
  node.requestTimeout = timeoutMs;
  node.headersTimeout = Math.min(node.headersTimeout ?? timeoutMs, timeoutMs);
  node.on('stream', (stream) => {
    // A request without a body (END_STREAM on its headers) cannot be slow.
    if (stream.endAfterHeaders) return;
    const timer = setTimeout(() => {
      if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_CANCEL);
    }, timeoutMs);
    timer.unref();
    const clear = (): void => {
      clearTimeout(timer);
    };
    stream.once('end', clear);
    stream.once('close', clear);
  });
}
