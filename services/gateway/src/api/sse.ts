/**
 * Server-sent events (WHATWG HTML §9.2) as the OpenAI streaming API uses them: blocks separated
 * by a blank line. The splitter hands over whole events, so each goes to the client as exactly one
 * sealed chunk and usage chunks can be seen (and dropped) whole.
 */
export class SseSplitter {
  #pending = '';
  readonly #decoder = new TextDecoder('utf-8');

  /** Complete events (without their terminating blank line) in `bytes` and what came before. */
  push(bytes: Uint8Array): string[] {
    this.#pending += this.#decoder.decode(bytes, { stream: true }).replaceAll('\r\n', '\n');
    const events: string[] = [];
    for (let end = this.#pending.indexOf('\n\n'); end >= 0; end = this.#pending.indexOf('\n\n')) {
      events.push(this.#pending.slice(0, end));
      this.#pending = this.#pending.slice(end + 2);
    }
    return events;
  }

  /** What is left at the end of the stream (an event without its blank line), if anything. */
  finish(): string | undefined {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = '';
    return rest.trim() === '' ? undefined : rest;
  }
}

/** The `data` of an event (its data lines joined), or undefined for comments and data-less events. */
export function eventData(event: string): string | undefined {
  // The usual event, one `data: ` line: no split (this runs once per streamed token).
  if (event.startsWith('data: ') && !event.includes('\n')) return event.slice(6);
  const lines = event
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).replace(/^ /, ''));
  return lines.length === 0 ? undefined : lines.join('\n');
}

/**
 * Whether the JSON text `data` can have a non-null `usage` member: some `"usage"` is not followed
 * by `:null` (OpenAI's chunks carry `"usage":null` under include_usage), or it has `\u` escapes
 * (a member name may be spelled with them; no other JSON escape yields a letter). Content chunks,
 * one per token, are then not parsed at all.
 */
export function mayHoldUsage(data: string): boolean {
  if (data.includes('\\u')) return true;
  for (let at = data.indexOf('"usage"'); at >= 0; at = data.indexOf('"usage"', at + 7)) {
    if (!data.startsWith(':null', at + 7)) return true;
  }
  return false;
}

/** Token counts in an OpenAI `usage` object. */
export interface UsageCounts {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export function usageOf(value: unknown): UsageCounts | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const usage = (value as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const { prompt_tokens: prompt, completion_tokens: completion } = usage as Record<string, unknown>;
  const count = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0);
  return { promptTokens: count(prompt), completionTokens: count(completion) };
}
