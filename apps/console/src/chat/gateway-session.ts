import { TresorError } from '@tresor/protocol';
import {
  connect,
  verifyGateway,
  type FetchFunction,
  type TresorClient,
  type VerificationDocument,
} from '@tresor/sdk';
import type { ReleaseSet } from '../page-reference.js';
import { buildTrustView, type ComponentFacts, type TrustView } from '../trust/trust-view.js';

/** What the page learnt from one verification: the document, its view, and (if it passed) a client. */
export interface SessionState {
  readonly document: VerificationDocument;
  readonly view: TrustView;
  /** Present only when every check passed: the only way the page can send anything. */
  readonly client: TresorClient | null;
  /** The release sets of the reference values, when their signature verified (else empty). */
  readonly referenceValues: readonly ReleaseSet[];
}

/**
 * Verifies the gateway from the page (the sdk, WebCrypto, this page's own nonce), and only when
 * every check passed opens the encrypted client. Nothing is sent to the model before that.
 */
export async function openSession(
  gatewayUrl: string,
  policy: unknown,
  fetch?: FetchFunction,
): Promise<SessionState> {
  const transport = fetch === undefined ? {} : { fetch };
  const { document, bundle } = await verifyGateway(gatewayUrl, { policy, ...transport });
  const facts: ComponentFacts[] =
    bundle === null
      ? []
      : [bundle.gateway, ...bundle.serving].map((c) => ({
          component: c.component,
          id: c.id,
          tee: c.tee,
          insecure: c.insecure,
          releases: c.releases,
          measurements: c.measurements,
          hardwareIds: c.hardwareIds,
          models: c.models,
          tlsSpkiSha256: c.tlsSpkiSha256,
          hpkeKeyConfig: c.hpkeKeyConfig,
          evidenceSha256: c.evidenceSha256,
        }));
  const view = buildTrustView(document, facts);
  const referenceValues = bundle?.referenceValues ?? [];
  if (!view.ok) return { document, view, client: null, referenceValues };
  // connect() verifies once more with a fresh nonce and refuses, before any body, if anything changed.
  const client = await connect(gatewayUrl, { policy, ...transport });
  return { document: client.document, view: buildTrustView(client.document, facts), client, referenceValues };
}

export interface ModelInfo {
  readonly id: string;
}

async function failure(response: Response, what: string): Promise<TresorError> {
  let message = `${what}: the gateway answered ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { message?: unknown; code?: unknown } };
    if (typeof body.error?.message === 'string') message = `${what}: ${body.error.message}`;
  } catch {
    // The status alone says it.
  }
  const code =
    response.status === 401
      ? 'API_KEY_INVALID'
      : response.status === 429
        ? 'RATE_LIMITED'
        : 'UPSTREAM_FAILED';
  return new TresorError(code, message);
}

/** `GET /v1/models`, inside the encryption. */
export async function listModels(client: TresorClient, apiKey: string): Promise<ModelInfo[]> {
  const response = await client.fetch(`${client.gatewayUrl}/v1/models`, {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  if (!response.ok) throw await failure(response, 'listing the models failed');
  const body = (await response.json()) as { data?: unknown };
  const data = Array.isArray(body.data) ? (body.data as unknown[]) : [];
  return data
    .map((m) => (typeof m === 'object' && m !== null ? (m as { id?: unknown }).id : undefined))
    .filter((id): id is string => typeof id === 'string')
    .map((id) => ({ id }));
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** `POST /v1/chat/completions` with `stream: true`, inside the encryption; the decrypted SSE body. */
export async function streamChat(
  client: TresorClient,
  apiKey: string,
  model: string,
  messages: readonly ChatMessage[],
  maxTokens: number,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages, stream: true, max_completion_tokens: maxTokens }),
    signal,
  });
  if (!response.ok || response.body === null) throw await failure(response, 'the chat request failed');
  return response.body;
}
