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
  const lines = event
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).replace(/^ /, ''));
  return lines.length === 0 ? undefined : lines.join('\n');
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
