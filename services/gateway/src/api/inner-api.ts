import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  TresorError,
  isTresorError,
  RECEIPT_HEADER,
  USAGE_REQUEST_HEADER,
  USAGE_SSE_PREFIX,
} from '@tresor/protocol';
import { utf8Encode, type BhttpField, type BhttpRequest } from '@tresor/crypto';
import type { ApiKeyRecord, TenantRecord, TenantRepository, UsageRepository } from '@tresor/storage';
import type { ApiKeyAuthenticator } from '../auth/api-key-authenticator.js';
import { bearerToken } from '../auth/api-key-secret.js';
import { GATEWAY_OPERATIONS, type GatewayAuthorizer } from '../auth/gateway-policy.js';
import { ExpiringCache } from '../expiring-cache.js';
import type { UsageLimiter } from '../limits/usage-limiter.js';
import { checkRequestDate } from '../ohttp/replay-cache.js';
import type { Replica, ReplicaPool } from '../replicas/replica-pool.js';
import { headerValue } from './bhttp-stream.js';
import { openAiErrorBody, openAiErrorHeaders } from './openai-error.js';
import { matchRoute, parseModelRequest, type ApiRoute, type ModelRequest } from './openai-requests.js';
import { eventData, mayHoldUsage, SseSplitter, usageOf, type UsageCounts } from './sse.js';
import { exchangeWithReplica } from './upstream-exchange.js';
import type { BhttpResponseEvent } from './bhttp-stream.js';

/** Where an inner response goes: sealed chunk by chunk, or buffered into one OHTTP response. */
export interface ResponseSink {
  head(status: number, headers: readonly BhttpField[]): Promise<void>;
  /** One piece of content; a streaming sink seals it as one chunk. */
  content(bytes: Uint8Array): Promise<void>;
  end(): Promise<void>;
  readonly started: boolean;
}

export interface InnerApiOptions {
  readonly authenticator: ApiKeyAuthenticator;
  readonly authorizer: GatewayAuthorizer;
  readonly limiter: UsageLimiter;
  readonly tenants: TenantRepository;
  readonly usage: UsageRepository;
  readonly pool: ReplicaPool;
  readonly now: () => Date;
  readonly logger: Logger;
  readonly innerBodyBytes: number;
  readonly replayWindowMs: number;
}

const JSON_HEADERS: readonly BhttpField[] = [
  ['content-type', 'application/json'],
  ['cache-control', 'no-store'],
];
const SSE_HEADERS: readonly BhttpField[] = [
  ['content-type', 'text/event-stream'],
  ['cache-control', 'no-store'],
];

interface Accounting {
  readonly key: ApiKeyRecord;
  readonly tenant: TenantRecord;
  readonly model: string;
  status: number;
  usage: UsageCounts;
  /** Set once the usage record is written (before the answer's last byte goes out). */
  recorded: boolean;
}

/**
 * The OpenAI-compatible API inside the encryption: authenticates the API key, routes, validates,
 * authorizes with the tenant's Cedar policy, applies rate limits and quotas, forwards to an attested
 * replica, streams the answer back, counts tokens and records the request's minimal metadata.
 * Nothing of a request's content is logged or stored.
 */
export class InnerApi {
  readonly #o: InnerApiOptions;
  /** Tenant records (limits, existence), read once per 5 s like API keys rather than per request. */
  readonly #tenants: ExpiringCache<TenantRecord | undefined>;

  constructor(options: InnerApiOptions) {
    this.#o = options;
    this.#tenants = new ExpiringCache((id) => options.tenants.get(id), 5_000);
  }

  async handle(request: BhttpRequest, sink: ResponseSink): Promise<void> {
    const startedMs = this.#o.now().getTime();
    let accounting: Accounting | undefined;
    try {
      checkRequestDate(headerValue(request.headers, 'date'), startedMs, this.#o.replayWindowMs);
      if (request.content.length > this.#o.innerBodyBytes) {
        throw new TresorError(
          'REQUEST_BODY_TOO_LARGE',
          `the inner request body is ${request.content.length} bytes; at most ${this.#o.innerBodyBytes} are accepted`,
        );
      }
      const key = await this.#o.authenticator.authenticate(
        bearerToken(headerValue(request.headers, 'authorization')),
      );
      const tenant = await this.#tenants.get(key.tenant, startedMs);
      if (tenant === undefined) throw new TresorError('API_KEY_INVALID', 'the API key belongs to no tenant');
      const route = matchRoute(request.method, request.path);
      requireScope(key, route);
      if (route.operation === undefined) {
        await this.#listModels(key, sink);
        return;
      }
      const type = headerValue(request.headers, 'content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        throw new TresorError('REQUEST_MEDIA_TYPE_UNSUPPORTED', 'send the request body as application/json');
      }
      const body = parseModelRequest(route, request.content);
      if (!this.#o.pool.knows(body.model) && !this.#o.pool.models().includes(body.model)) {
        throw new TresorError('MODEL_NOT_FOUND', `no model ${body.model}; GET /v1/models lists the models`);
      }
      accounting = {
        key,
        tenant,
        model: body.model,
        status: 200,
        usage: { promptTokens: 0, completionTokens: 0 },
        recorded: false,
      };
      await this.#o.authorizer.require(key, route.operation, body.model);
      await this.#o.limiter.admit(key, tenant, startedMs);
      await this.#forward(route, body, request, sink, accounting, startedMs);
    } catch (err) {
      const error = toRefusal(err);
      if (accounting !== undefined) accounting.status = error.status;
      if (error.code === 'INTERNAL_ERROR') {
        this.#o.logger.error(
          { code: error.code, errorName: err instanceof Error ? err.name : typeof err },
          'inner request failed',
        );
      }
      await this.#refuse(error, sink);
    } finally {
      if (accounting !== undefined) await this.#account(accounting, startedMs);
    }
  }

  async #listModels(key: ApiKeyRecord, sink: ResponseSink): Promise<void> {
    const data: unknown[] = [];
    for (const id of this.#o.pool.models()) {
      let allowed = false;
      for (const operation of GATEWAY_OPERATIONS)
        allowed ||= await this.#o.authorizer.allows(key, operation, id);
      if (allowed) data.push({ id, object: 'model', created: 0, owned_by: 'tresor' });
    }
    await sink.head(200, JSON_HEADERS);
    await sink.content(utf8Encode(JSON.stringify({ object: 'list', data })));
    await sink.end();
  }

  async #forward(
    route: ApiRoute,
    body: ModelRequest & Record<string, unknown>,
    request: BhttpRequest,
    sink: ResponseSink,
    accounting: Accounting,
    startedMs: number,
  ): Promise<void> {
    let replica = this.#o.pool.pick(body.model);
    // The body goes to the replica exactly as the client sent it (its receipt's requestSha256 is
    // the client's own). Token counts of streams come from the `: tresor-usage` line the replica
    // appends after its receipt when asked by header; the gateway removes that line again.
    const upstream: BhttpRequest = {
      method: 'POST',
      scheme: 'https',
      authority: replica.client.url.host,
      path: route.path,
      headers: [
        ['content-type', 'application/json'],
        [USAGE_REQUEST_HEADER, '1'],
      ],
      content: request.content,
      trailers: [],
    };
    const splitter = new SseSplitter();
    let sse = false;
    let buffered: Uint8Array[] = [];
    let headHeaders: BhttpField[] = [];
    const passEvent = async (event: string): Promise<void> => {
      if (event.startsWith(USAGE_SSE_PREFIX)) {
        const usage = usageOf({ usage: parseJson(event.slice(USAGE_SSE_PREFIX.length)) });
        if (usage !== undefined) accounting.usage = usage;
        return;
      }
      const data = eventData(event);
      if (data !== undefined && data !== '[DONE]' && mayHoldUsage(data)) {
        // A client that asked for include_usage gets the usage chunk; it counts too.
        const usage = usageOf(parseJson(data));
        if (usage !== undefined) accounting.usage = usage;
      }
      await sink.content(utf8Encode(`${event}\n\n`));
    };
    // A replica that did not answer at all is out of rotation now; the request goes to the next
    // one (it never reached a model, so nothing runs twice), at most once per configured replica.
    let events: AsyncGenerator<BhttpResponseEvent> | undefined;
    let first: IteratorResult<BhttpResponseEvent> | undefined;
    const tried = new Set<Replica>();
    for (let attempt = 0; ; attempt++) {
      events = exchangeWithReplica(
        this.#o.pool,
        replica,
        { ...upstream, authority: replica.client.url.host },
        // Streams are sealed event by event; every other answer is buffered here anyway, so it
        // travels as one sealed message each way (no stream pipeline per request on either side).
        body.stream === true ? 'chunked' : 'single',
      );
      try {
        first = await events.next();
        break;
      } catch (err) {
        const unanswered = isTresorError(err) && err.details?.unanswered === true;
        if (!unanswered || attempt >= this.#o.pool.replicas.length) throw err;
        // A replica restarting its engine stays in rotation: not back to it for this request.
        // When none is left, its own REPLICA_UNAVAILABLE (with its Retry-After) is the answer.
        tried.add(replica);
        try {
          replica = this.#o.pool.pick(body.model, tried);
        } catch (none) {
          throw isTresorError(err) && err.code === 'REPLICA_UNAVAILABLE' ? err : none;
        }
      }
    }
    const rest: AsyncIterable<BhttpResponseEvent> = {
      [Symbol.asyncIterator]: () => events,
    };
    const all = (async function* () {
      if (first.done !== true) yield first.value;
      yield* rest;
    })();
    for await (const event of all) {
      if (event.kind === 'head') {
        accounting.status = event.status;
        sse = /^text\/event-stream/i.test(headerValue(event.headers, 'content-type') ?? '');
        const receipt = headerValue(event.headers, RECEIPT_HEADER);
        headHeaders = [
          ...(sse ? SSE_HEADERS : JSON_HEADERS),
          ...(receipt === undefined ? [] : [[RECEIPT_HEADER, receipt] as BhttpField]),
        ];
        if (sse) await sink.head(event.status, headHeaders);
      } else if (event.kind === 'content') {
        if (sse) {
          for (const e of splitter.push(event.bytes)) await passEvent(e);
        } else {
          buffered.push(event.bytes);
        }
      } else {
        if (sse) {
          const rest = splitter.finish();
          if (rest !== undefined) await passEvent(rest);
        } else {
          const content = new Uint8Array(Buffer.concat(buffered));
          buffered = [];
          try {
            const usage = usageOf(JSON.parse(Buffer.from(content).toString('utf8')));
            if (usage !== undefined) accounting.usage = usage;
          } catch {
            // Not JSON (an engine error page): passed on as is, counted as zero tokens.
          }
          await sink.head(accounting.status, headHeaders);
          await sink.content(content);
        }
        // Recorded before the last byte: a client that got a complete answer has a usage record,
        // even if this gateway dies right after (a crash in between costs a duplicate at worst).
        await this.#account(accounting, startedMs);
        await sink.end();
      }
    }
  }

  async #refuse(error: TresorError, sink: ResponseSink): Promise<void> {
    const body = utf8Encode(JSON.stringify(openAiErrorBody(error)));
    try {
      if (sink.started) {
        // Mid-stream: the client gets a sealed error event, then the end of the stream.
        await sink.content(utf8Encode(`event: error\ndata: ${Buffer.from(body).toString('utf8')}\n\n`));
        await sink.end();
        return;
      }
      const headers = Object.entries(openAiErrorHeaders(error)) as BhttpField[];
      await sink.head(error.status, [...JSON_HEADERS, ['tresor-error-code', error.code], ...headers]);
      await sink.content(body);
      await sink.end();
    } catch (err) {
      this.#o.logger.warn(
        { code: isTresorError(err) ? err.code : 'INTERNAL_ERROR' },
        'could not deliver a refusal',
      );
    }
  }

  async #account(a: Accounting, startedMs: number): Promise<void> {
    if (a.recorded) return;
    a.recorded = true;
    const now = this.#o.now();
    try {
      await this.#o.limiter.consume(a.key, a.usage.promptTokens + a.usage.completionTokens, now.getTime());
      await this.#o.usage.record({
        id: randomUUID(),
        tenant: a.tenant.id,
        apiKeyId: a.key.id,
        model: a.model,
        promptTokens: a.usage.promptTokens,
        completionTokens: a.usage.completionTokens,
        latencyMs: Math.max(0, now.getTime() - startedMs),
        status: a.status,
        time: now,
      });
    } catch (err) {
      this.#o.logger.error({ code: isTresorError(err) ? err.code : 'INTERNAL_ERROR' }, 'usage record failed');
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function requireScope(key: ApiKeyRecord, route: ApiRoute): void {
  if (!key.scopes.includes(route.scope)) {
    throw new TresorError('POLICY_DENIED', `API key ${key.id} has no ${route.scope} scope for ${route.path}`);
  }
}

function toRefusal(err: unknown): TresorError {
  if (isTresorError(err)) return err;
  return new TresorError('INTERNAL_ERROR', 'the gateway failed unexpectedly', { cause: err });
}
