/**
 * Reads an OpenAI-style chat completion stream (SSE, `data: <json>` events, `data: [DONE]` at the
 * end; comment lines such as the serving receipt are skipped) into text deltas. Pure stream code:
 * the bytes come already decrypted from the sdk's fetch.
 */

export type StreamEvent =
  | { readonly kind: 'delta'; readonly text: string }
  | { readonly kind: 'done'; readonly finishReason: string | null }
  | { readonly kind: 'error'; readonly message: string; readonly code: string | null };

/** Parses one SSE event's data into events (an event may carry no text, e.g. the role chunk). */
export function parseEventData(data: string): StreamEvent[] {
  if (data === '[DONE]') return [{ kind: 'done', finishReason: null }];
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return [{ kind: 'error', message: 'the stream held an event that is not JSON', code: null }];
  }
  if (typeof value !== 'object' || value === null) return [];
  const v = value as Record<string, unknown>;
  if (typeof v.error === 'object' && v.error !== null) {
    const e = v.error as Record<string, unknown>;
    return [
      {
        kind: 'error',
        message: typeof e.message === 'string' ? e.message : 'the model failed',
        code: typeof e.code === 'string' ? e.code : null,
      },
    ];
  }
  const out: StreamEvent[] = [];
  const choices = Array.isArray(v.choices) ? (v.choices as unknown[]) : [];
  for (const choice of choices) {
    if (typeof choice !== 'object' || choice === null) continue;
    const c = choice as Record<string, unknown>;
    const delta = c.delta as Record<string, unknown> | undefined;
    if (typeof delta?.content === 'string' && delta.content !== '')
      out.push({ kind: 'delta', text: delta.content });
    if (typeof c.finish_reason === 'string') out.push({ kind: 'done', finishReason: c.finish_reason });
  }
  return out;
}

/**
 * Splits SSE text into events' data (WHATWG HTML §9.2.6: lines, `data:` fields joined by "\n",
 * an empty line ends an event). Stateful across chunks: feed it pieces, then `end()`.
 */
export class SseDataSplitter {
  #buffer = '';
  #data: string[] = [];

  push(text: string): string[] {
    this.#buffer += text;
    const events: string[] = [];
    for (;;) {
      const nl = this.#buffer.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      const line = this.#buffer.slice(0, nl);
      const width = this.#buffer.startsWith('\r\n', nl) ? 2 : 1;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (width === 1 && this.#buffer[nl] === '\r' && nl === this.#buffer.length - 1) break;
      this.#buffer = this.#buffer.slice(nl + width);
      this.#line(line, events);
    }
    return events;
  }

  end(): string[] {
    const events: string[] = [];
    if (this.#buffer !== '') this.#line(this.#buffer, events);
    this.#buffer = '';
    this.#line('', events);
    return events;
  }

  #line(line: string, events: string[]): void {
    if (line === '') {
      if (this.#data.length > 0) events.push(this.#data.join('\n'));
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
  }
}

/** The stream's events, in order. Stops at `[DONE]`; an abort of the underlying fetch ends it with an AbortError. */
export async function* streamEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const splitter = new SseDataSplitter();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const datas = done ? splitter.end() : splitter.push(decoder.decode(value, { stream: true }));
      for (const data of datas) {
        for (const event of parseEventData(data)) {
          yield event;
          if (event.kind === 'done' && data === '[DONE]') return;
        }
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}
