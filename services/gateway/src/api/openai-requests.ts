import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import type { ApiKeyScope } from '@tresor/storage';
import type { GatewayOperation } from '../auth/gateway-policy.js';

/**
 * The OpenAI-compatible operations the gateway answers inside OHTTP, and the request bodies it
 * accepts: the members it relies on are checked (model, stream, stream_options, sizes), others pass
 * through to the engine unchanged, as OpenAI's API tolerates vendor extensions.
 */
export interface ApiRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly scope: ApiKeyScope;
  /** Absent for `GET /v1/models`, which the gateway answers itself. */
  readonly operation?: GatewayOperation;
  readonly schema?: z.ZodType<ModelRequest>;
}

/** What every model request has. */
export interface ModelRequest {
  readonly model: string;
  readonly stream?: boolean | null | undefined;
  readonly stream_options?: { readonly include_usage?: boolean | null | undefined } | null | undefined;
}

const modelId = z
  .string()
  .min(1)
  .max(256)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'a model id without control characters');
const streamOptions = z.looseObject({ include_usage: z.boolean().nullish() }).nullish();
const common = {
  model: modelId,
  stream: z.boolean().nullish(),
  stream_options: streamOptions,
  max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.number().int().min(1).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
};
const contentPart = z.looseObject({ type: z.string().min(1).max(64) });
const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPart).max(1024)]).nullish(),
  name: z.string().max(256).optional(),
});

const chatSchema = z.looseObject({
  ...common,
  messages: z.array(message).min(1).max(4096),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
});
const completionSchema = z.looseObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(64)]),
});
const embeddingSchema = z.looseObject({
  model: modelId,
  input: z.union([
    z.string(),
    z.array(z.string()).min(1).max(2048),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1).max(2048),
  ]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).max(65_536).optional(),
});

export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'POST',
    path: '/v1/chat/completions',
    scope: 'chat',
    operation: 'chat.completions',
    schema: chatSchema,
  },
  {
    method: 'POST',
    path: '/v1/completions',
    scope: 'completions',
    operation: 'completions',
    schema: completionSchema,
  },
  {
    method: 'POST',
    path: '/v1/embeddings',
    scope: 'embeddings',
    operation: 'embeddings',
    schema: embeddingSchema,
  },
  { method: 'GET', path: '/v1/models', scope: 'models' },
];

/** The route for an inner request's method and path (query ignored). @throws TresorError ROUTE_NOT_FOUND */
export function matchRoute(method: string, path: string): ApiRoute {
  const bare = path.split('?')[0] ?? '';
  const route = API_ROUTES.find((r) => r.path === bare);
  if (route?.method !== method) {
    throw new TresorError(
      'ROUTE_NOT_FOUND',
      `no endpoint ${method} ${bare.slice(0, 64)} inside OHTTP; the API has POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings and GET /v1/models`,
    );
  }
  return route;
}

/** Stateless for whole-buffer decodes, so one serves every request. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a JSON body for `route`. @throws TresorError API_REQUEST_INVALID naming the field (never its value) */
export function parseModelRequest(route: ApiRoute, body: Uint8Array): ModelRequest & Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body));
  } catch {
    throw new TresorError('API_REQUEST_INVALID', 'the request body is not UTF-8 JSON');
  }
  const parsed = route.schema?.safeParse(json);
  if (parsed === undefined) throw new TresorError('INTERNAL_ERROR', `${route.path} takes no body`);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue === undefined || issue.path.length === 0 ? 'the body' : issue.path.join('.');
    throw new TresorError(
      'API_REQUEST_INVALID',
      `the request field ${at} is invalid: ${issue?.message ?? 'wrong shape'}`,
    );
  }
  return parsed.data as ModelRequest & Record<string, unknown>;
}
