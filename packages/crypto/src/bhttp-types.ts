import { TresorError } from '@tresor/protocol';

/**
 * The message model of Binary HTTP (RFC 9292). It keeps what the encoding carries and nothing
 * else: field order and name case exactly as sent (no sorting, no lower-casing, `host` stays a
 * header field), so a decoded message re-encodes to the bytes it came from.
 */

/**
 * One field line (RFC 9292 §3.6). Name and value are byte strings: every character is one byte
 * (U+0000..U+00FF), the way WHATWG fetch `Headers` hold them, so any field value HTTP permits,
 * obs-text included, survives a round trip unchanged.
 */
export type BhttpField = readonly [name: string, value: string];

/** A request: control data (RFC 9292 §3.4), header section, content and trailer section. */
export interface BhttpRequest {
  /** Request method, a token (RFC 9110 §9.1); case is significant and preserved. */
  readonly method: string;
  /** `:scheme` (RFC 9113 §8.3.1); empty only for requests without one, such as CONNECT. */
  readonly scheme: string;
  /** `:authority`; empty when the host travels as a `host` header field (RFC 9292 §3.4). */
  readonly authority: string;
  /** `:path`: path and query string, never a fragment. */
  readonly path: string;
  readonly headers: readonly BhttpField[];
  readonly content: Uint8Array;
  readonly trailers: readonly BhttpField[];
}

/** An interim (1xx) response that precedes the final one (RFC 9292 §3.5.1). */
export interface BhttpInformationalResponse {
  /** 100..199. */
  readonly status: number;
  readonly headers: readonly BhttpField[];
}

/** A response: zero or more informational responses, then the final response. */
export interface BhttpResponse {
  readonly informational: readonly BhttpInformationalResponse[];
  /** Final status, 200..599 (RFC 9292 §3.5). */
  readonly status: number;
  readonly headers: readonly BhttpField[];
  readonly content: Uint8Array;
  readonly trailers: readonly BhttpField[];
}

/**
 * Known-length framing prefixes every section with its length (RFC 9292 §3.1, framing indicator
 * 0 or 1); indeterminate-length framing terminates sections with a zero and sends content in
 * chunks, for senders that stream (§3.2, framing indicator 2 or 3).
 */
export type BhttpFraming = 'known-length' | 'indeterminate-length';

/** How a message sits on the wire apart from its meaning. */
export interface BhttpLayout {
  readonly framing: BhttpFraming;
  /**
   * Trailing empty sections are left out (RFC 9292 §3.8): the trailer section when it is empty,
   * then the content when it is empty too, then the header section when it is empty too.
   */
  readonly truncated: boolean;
  /** Number of zero bytes after the message (RFC 9292 §3.8). */
  readonly padding: number;
}

/** Encoder choices; defaults: known-length, not truncated, no padding. */
export type BhttpEncodeOptions = Partial<BhttpLayout>;

/** A decoded message with the layout it was found in. */
export interface DecodedBhttp<Message> {
  readonly message: Message;
  /**
   * Re-encoding `message` with this layout reproduces the input whenever the input used
   * shortest-form integers and, if it was truncated, left out every trailing empty section
   * without padding — as every encoder here and every RFC 9292 example does. Padding after a
   * truncated message is read as empty sections, as §3.8 specifies.
   */
  readonly layout: BhttpLayout;
}

/**
 * Decoder limits (RFC 9292 §8: resource exhaustion). Exceeding one makes the message
 * BHTTP_MALFORMED; every limit is checked before anything is allocated for the item.
 */
export interface BhttpLimits {
  /** Field lines in the whole message: informational, header and trailer sections together. */
  readonly maxFieldLines: number;
  /** Bytes of one field line (name plus value) and of each control-data field. */
  readonly maxFieldSize: number;
  /** Bytes of content, all chunks together. */
  readonly maxContentSize: number;
  /** Informational (1xx) responses before the final response. */
  readonly maxInformationalResponses: number;
}

/**
 * Defaults sized for Tresor's inner API traffic: OpenAI-style JSON requests and responses
 * with ordinary header sets. A gateway that accepts larger uploads raises `maxContentSize`.
 */
export const DEFAULT_BHTTP_LIMITS: BhttpLimits = Object.freeze({
  maxFieldLines: 256,
  maxFieldSize: 16 * 1024,
  maxContentSize: 16 * 1024 * 1024,
  maxInformationalResponses: 16,
});

/**
 * Merges caller limits over the defaults. A limit that is not a non-negative integer would make
 * every comparison false (NaN) and so switch the check off; it is refused instead.
 */
export function resolveBhttpLimits(limits: Partial<BhttpLimits>): BhttpLimits {
  const resolved: BhttpLimits = { ...DEFAULT_BHTTP_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TresorError('CONFIG_INVALID', `Binary HTTP limit ${name} must be a non-negative integer`);
    }
  }
  return resolved;
}
