import { createInterface } from 'node:readline';
import { TresorError } from '@tresor/protocol';
import { connect, type TresorClient } from '@tresor/sdk';
import type { CliIo } from '../io.js';
import { readPolicy, transportFor } from './verify-options.js';

interface Message {
  readonly role: 'user' | 'assistant';
  readonly content: string;
}

/** Sends one streaming chat completion and writes its tokens to stdout as they arrive; returns the answer. */
export async function streamChat(
  client: TresorClient,
  model: string,
  apiKey: string,
  messages: readonly Message[],
  write: (text: string) => void,
): Promise<string> {
  const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${apiKey}`,
      accept: 'text/event-stream',
    },
    body: JSON.stringify({ model, messages, stream: true }),
  });
  if (!response.ok || response.body === null) {
    const text = await response.text();
    let code = 'UPSTREAM_FAILED';
    let message = `the gateway answered ${response.status}`;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? code;
      message = parsed.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new TresorError(isCode(code) ? code : 'UPSTREAM_FAILED', message);
  }
  let answer = '';
  let pending = '';
  const decoder = new TextDecoder();
  for await (const piece of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(piece, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]' || data === '') continue;
      const event = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
      const token = event.choices?.[0]?.delta?.content ?? '';
      answer += token;
      write(token);
    }
  }
  return answer;
}

function isCode(code: string): code is TresorError['code'] {
  try {
    return new TresorError(code as TresorError['code']).code === code;
  } catch {
    return false;
  }
}

/** Typed alone on a line, ends the interactive chat (as do an empty line and end of input). */
export const EXIT_COMMAND = '/exit';

/** `tresor chat <gateway-url> --model <id> [prompt]`. */
export async function chatCommand(
  gatewayUrl: string,
  prompt: string | undefined,
  options: Record<string, string | undefined>,
  io: CliIo,
): Promise<void> {
  const model = options.model ?? '';
  const apiKey = options.apiKey ?? io.env.TRESOR_API_KEY;
  if (apiKey === undefined || apiKey === '') {
    throw new TresorError('API_KEY_MISSING', 'no API key: pass --api-key or set TRESOR_API_KEY');
  }
  const policy = await readPolicy(options.policy, io);
  const transport = await transportFor(options.ca, io);
  const client = await connect(gatewayUrl, { policy, ...transport, now: () => io.now() });
  if (client.document.insecure)
    io.stderr.write('INSECURE: the gateway runs in the sample TEE; no hardware protects this chat\n');
  const write = (text: string): void => void io.stdout.write(text);
  if (prompt !== undefined) {
    await streamChat(client, model, apiKey, [{ role: 'user', content: prompt }], write);
    io.stdout.write('\n');
    return;
  }
  // Interactive: one line per turn, the conversation kept in memory only.
  const input = (io as CliIo & { stdin?: NodeJS.ReadableStream }).stdin ?? process.stdin;
  const lines = createInterface({ input, terminal: false });
  const history: Message[] = [];
  io.stdout.write(`verified ${client.gatewayUrl}; type a message; /exit, an empty line or Ctrl-D ends\n> `);
  for await (const line of lines) {
    if (line.trim() === '' || line.trim() === EXIT_COMMAND) break;
    history.push({ role: 'user', content: line });
    const answer = await streamChat(client, model, apiKey, history, write);
    history.push({ role: 'assistant', content: answer });
    io.stdout.write('\n> ');
  }
  lines.close();
  io.stdout.write('\n');
}
