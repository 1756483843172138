import { request as httpsRequest } from 'node:https';
import { isErrorCode, type ErrorCode } from '@tresor/protocol';
import type { RunningGateway } from '@tresor/gateway';
import type { RunningServingService } from '@tresor/serving';
import {
  CLUSTER_MODEL,
  gatewayAdminCall,
  startGatewayCluster,
  type GatewayCluster,
} from '../../support/gateway-cluster.js';
import {
  decodeKnownLengthResponse,
  encapsulate,
  encodeKnownLengthRequest,
} from '../../support/rfc9458-client.js';
import { rawExchange, slowHttp2Body, type RawOutcome } from './raw-tls.js';

/**
 * The platform the gateway, serving and client rows attack: one process with a trust service
 * (KBS, mesh CA, signed reference values and inventory), a REAL serving replica (sealed model
 * released through the KBS, echo engine, sample TEE, mesh certificate) and a REAL gateway in front
 * of it (test/support/gateway-cluster.ts), with tenants, a Cedar policy and API keys set up through
 * the signed admin API. Started once, when the first row needs it.
 */

export const MODEL = CLUSTER_MODEL;
/** The gateway's limit on a whole request (server.requestTimeoutMs): slow bodies are cut at it. */
export const REQUEST_TIMEOUT_MS = 2_000;
export const OHTTP_BODY_BYTES = 256 * 1024;
export const INNER_BODY_BYTES = 64 * 1024;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface PlatformEnv {
  readonly cluster: GatewayCluster;
  readonly gateway: RunningGateway;
  readonly serving: RunningServingService;
  /** `application/ohttp-keys` of the gateway. */
  readonly keyList: Uint8Array;
  /** A key of tenant `acme` (all scopes; `acme` may use every model). */
  readonly apiKey: string;
  readonly documentKeys: readonly Record<string, unknown>[];
  /** A client policy that accepts this local platform (sample TEE, the trust service's keys). */
  policy(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** Moves the gateway's clock. */
  advance(ms: number): void;
  admin(operation: string, request: unknown): Promise<Record<string, unknown>>;
  newKey(request?: Record<string, unknown>): Promise<string>;
  /** POST /v1/ohttp (or another path) with exactly these bytes. */
  outer(type: string, bytes: Uint8Array, path?: string): Promise<HttpAnswer>;
  /** An inner request through the independent RFC 9458 client; the inner refusal's code. */
  sealed(
    path: string,
    options?: {
      readonly body?: unknown;
      readonly headers?: readonly [string, string][];
      readonly key?: string | null;
      readonly method?: string;
    },
  ): Promise<ErrorCode | null>;
  /** Slow-header and slow-body connections opened when the platform started (see rows-gateway.ts). */
  readonly slowHeaders: Promise<RawOutcome>;
  readonly slowBody: Promise<RawOutcome>;
  /** Whether the gateway reset an HTTP/2 stream whose body arrived a byte per 500 ms. */
  readonly slowHttp2Body: Promise<boolean>;
  close(): Promise<void>;
}

export function httpsCall(
  url: string,
  options: {
    readonly method: string;
    readonly ca?: string;
    /** Do not verify the server's certificate (an attacker probing a replica). */
    readonly insecure?: boolean;
    readonly headers?: Record<string, string | number>;
    readonly body?: Uint8Array;
    readonly cert?: string;
    readonly key?: string;
  },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.insecure === true ? { rejectUnauthorized: false } : {}),
        minVersion: 'TLSv1.3',
        agent: false,
        headers: {
          ...(options.headers ?? {}),
          ...(options.body === undefined ? {} : { 'content-length': options.body.length }),
        },
        ...(options.cert === undefined ? {} : { cert: options.cert }),
        ...(options.key === undefined ? {} : { key: options.key }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : Buffer.from(options.body));
  });
}

/** The catalogue code of a refused answer (header first, then the OpenAI-shaped body). */
export function codeOf(answer: {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}): ErrorCode | null {
  if (answer.status < 400) return null;
  const header = answer.headers['tresor-error-code'];
  const fromHeader = Array.isArray(header) ? header[0] : header;
  if (fromHeader !== undefined && isErrorCode(fromHeader)) return fromHeader;
  try {
    const code = (JSON.parse(answer.body.toString('utf8')) as { error?: { code?: unknown } }).error?.code;
    if (typeof code === 'string' && isErrorCode(code)) return code;
  } catch {
    // not JSON: fall through
  }
  throw new Error(
    `HTTP ${answer.status} without a catalogue code: ${answer.body.toString('utf8').slice(0, 200)}`,
  );
}

const NOT_STARTED: RawOutcome = { received: Buffer.alloc(0), closedByServer: false, statuses: [] };

/** `slowClients`: open the slow-header, slow-body and slow HTTP/2 connections at start (the matrix does). */
export async function startPlatform(
  options: { readonly slowClients?: boolean } = {},
): Promise<{ env: PlatformEnv; close: () => Promise<void> }> {
  const cluster = await startGatewayCluster();
  let skewMs = 0;
  try {
    const serving = await cluster.startServing();
    const gateway = await cluster.startGateway({
      replicaUrls: [serving.url],
      now: () => new Date(Date.now() + skewMs),
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      limits: { ohttpBodyBytes: OHTTP_BODY_BYTES, innerBodyBytes: INNER_BODY_BYTES },
    });
    const target = { url: gateway.url, ca: cluster.gatewayCa };
    // Opened first, so that the gateway's connection check (every 30 s in Node) has cut them by
    // the time their rows run: one header byte per 500 ms, one body byte per 500 ms, far slower than
    // any request should take, each on its own connection. They give up after 120 s.
    const slow = options.slowClients === true;
    const slowHeaders = !slow
      ? Promise.resolve(NOT_STARTED)
      : rawExchange(
          target,
          [
            'POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\n',
            ...[...Buffer.from('x-slow: a-very-long-header-value-sent-slowly'.repeat(10))].map((b) =>
              Buffer.from([b]),
            ),
          ],
          { gapMs: 500, giveUpMs: 120_000 },
        );
    const slowBody = !slow
      ? Promise.resolve(NOT_STARTED)
      : rawExchange(
          target,
          [
            'POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ncontent-length: 4096\r\n\r\n',
            ...Array.from({ length: 4096 }, () => Buffer.from([0x01])),
          ],
          { gapMs: 500, giveUpMs: 120_000 },
        );
    const slowH2 = slow
      ? slowHttp2Body(target, { gapMs: 500, giveUpMs: 60_000, bytes: 4096 })
      : Promise.resolve(false);
    const admin = async (operation: string, request: unknown): Promise<Record<string, unknown>> => {
      const answer = await gatewayAdminCall(
        gateway.url,
        cluster.gatewayCa,
        cluster.admin,
        operation,
        request,
      );
      if (answer.status !== 200) {
        throw new Error(
          `platform setup: ${operation} answered ${answer.status}: ${JSON.stringify(answer.json)}`,
        );
      }
      return answer.json;
    };
    await admin('tenants/create', { id: 'acme' });
    await admin('policies/set', {
      tenant: 'acme',
      policy: `permit(principal in Gateway::Tenant::"acme", action, resource);`,
    });
    await admin('tenants/create', { id: 'globex' });
    await admin('policies/set', {
      tenant: 'globex',
      policy: [
        `permit(principal in Gateway::Tenant::"globex", action, resource);`,
        `forbid(principal, action == Gateway::Action::"chat.completions", resource == Gateway::Model::"${MODEL}");`,
      ].join('\n'),
    });
    await admin('tenants/create', { id: 'initech' }); // no policy: default deny
    const newKey = async (request: Record<string, unknown> = {}): Promise<string> =>
      (await admin('api-keys/create', { tenant: 'acme', ...request })).key as string;
    const apiKey = await newKey();
    const keyList = new Uint8Array(
      (await httpsCall(`${gateway.url}/.well-known/ohttp-gateway`, { method: 'GET', ca: cluster.gatewayCa }))
        .body,
    );
    const documentKeys = (
      JSON.parse(
        (
          await httpsCall(`${cluster.trust.url}/trust/v0/document-keys`, {
            method: 'GET',
            ca: cluster.trust.caPem,
          })
        ).body.toString('utf8'),
      ) as { keys: Record<string, unknown>[] }
    ).keys;

    const outer: PlatformEnv['outer'] = (type, bytes, path = '/v1/ohttp') =>
      httpsCall(`${gateway.url}${path}`, {
        method: 'POST',
        ca: cluster.gatewayCa,
        headers: { 'content-type': type },
        body: bytes,
      });
    const env: PlatformEnv = {
      cluster,
      gateway,
      serving,
      keyList,
      apiKey,
      documentKeys,
      policy: (overrides = {}) => ({
        version: 1,
        trustServiceKeys: documentKeys.map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
        ...overrides,
      }),
      advance: (ms) => {
        skewMs += ms;
      },
      admin,
      newKey,
      outer,
      async sealed(path, options = {}) {
        const key = options.key === undefined ? apiKey : options.key;
        const body =
          options.body === undefined
            ? new Uint8Array(0)
            : options.body instanceof Uint8Array
              ? options.body
              : new TextEncoder().encode(JSON.stringify(options.body));
        const exchange = await encapsulate(
          keyList,
          encodeKnownLengthRequest({
            method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
            authority: 'gateway',
            path,
            headers: [
              ...(key === null ? [] : ([['authorization', `Bearer ${key}`]] as [string, string][])),
              ...(options.body === undefined
                ? []
                : ([['content-type', 'application/json']] as [string, string][])),
              ...(options.headers ?? []),
            ],
            body,
          }),
        );
        const answer = await outer('message/ohttp-req', exchange.request);
        if (answer.status !== 200) return codeOf(answer);
        const inner = decodeKnownLengthResponse(await exchange.openResponse(answer.body));
        return codeOf({ status: inner.status, headers: inner.headers, body: inner.body });
      },
      slowHeaders,
      slowBody,
      slowHttp2Body: slowH2,
      close: () => cluster.close(),
    };
    return { env, close: () => cluster.close() };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

/** A chat completion request body. */
export function chat(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, messages: [{ role: 'user', content }], ...extra };
}
