import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import { connect, type TLSSocket } from 'node:tls';

/**
 * Raw HTTP/1.1 over TLS 1.3 for the attacks a well-behaved client library refuses to send: request
 * smuggling (conflicting Content-Length / Transfer-Encoding) and slowloris (headers or body a byte
 * at a time). It writes bytes exactly as given and reads until the server closes the connection.
 */

export interface RawTarget {
  readonly url: string;
  readonly ca: string;
}

export interface RawOutcome {
  /** Every byte the server sent before it closed. */
  readonly received: Buffer;
  /** The server closed the connection (rather than the client giving up). */
  readonly closedByServer: boolean;
  /** Status codes of the HTTP/1.1 responses found in `received`, in order. */
  readonly statuses: number[];
}

function open(target: RawTarget): Promise<TLSSocket> {
  const url = new URL(target.url);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: target.ca,
      servername: 'localhost',
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['http/1.1'],
    });
    socket.once('secureConnect', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function statusesOf(bytes: Buffer): number[] {
  return [...bytes.toString('latin1').matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/**
 * Sends `parts` one after another, `gapMs` apart (0: all at once), stopping early when the server
 * closes; then waits for the close. `giveUpMs` bounds the whole exchange: a server that keeps the
 * connection open that long is reported as not closing (`closedByServer: false`).
 */
export async function rawExchange(
  target: RawTarget,
  parts: readonly (string | Buffer)[],
  options: { readonly gapMs?: number; readonly giveUpMs: number },
): Promise<RawOutcome> {
  const socket = await open(target);
  const received: Buffer[] = [];
  const state = { closed: false, givenUp: false };
  const closing = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      state.closed = true;
      resolve();
    });
  });
  const giveUp = setTimeout(() => {
    state.givenUp = true;
    socket.destroy();
  }, options.giveUpMs);
  const gap = options.gapMs ?? 0;
  for (const part of parts) {
    if (state.closed) break;
    socket.write(part);
    if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
  }
  await closing;
  clearTimeout(giveUp);
  const bytes = Buffer.concat(received);
  return { received: bytes, closedByServer: !state.givenUp, statuses: statusesOf(bytes) };
}

/** Whether a TLS client limited to `maxVersion` completes a handshake with the server. */
export function handshakeWith(
  target: RawTarget,
  maxVersion: 'TLSv1.2' | 'TLSv1.1' | 'TLSv1',
): Promise<boolean> {
  const url = new URL(target.url);
  return new Promise((resolve) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: target.ca,
      servername: 'localhost',
      minVersion: maxVersion,
      maxVersion,
    });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * An HTTP/2 request whose body arrives a byte every `gapMs`: whether the server reset the stream
 * (CANCEL) before the client finished. Gives up (false) after `giveUpMs`.
 */
export async function slowHttp2Body(
  target: RawTarget,
  options: { readonly gapMs: number; readonly giveUpMs: number; readonly bytes: number },
): Promise<boolean> {
  const session = http2Connect(target.url, { ca: target.ca, servername: 'localhost', minVersion: 'TLSv1.3' });
  session.on('error', () => undefined);
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/v1/ohttp',
      'content-type': 'message/ohttp-req',
      'content-length': String(options.bytes),
    });
    stream.on('error', () => undefined);
    const state = { closed: false };
    const closing = new Promise<number>((resolve) => {
      stream.once('close', () => {
        state.closed = true;
        resolve(stream.rstCode);
      });
    });
    stream.resume();
    const deadline = Date.now() + options.giveUpMs;
    for (let i = 0; i < options.bytes && !state.closed && Date.now() < deadline; i++) {
      stream.write(Buffer.from([1]));
      await new Promise((resolve) => setTimeout(resolve, options.gapMs));
    }
    if (!state.closed) return false;
    return (await closing) === http2Constants.NGHTTP2_CANCEL;
  } finally {
    session.destroy();
  }
}
