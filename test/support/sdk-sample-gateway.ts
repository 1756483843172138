/**
 * A stand-in Tresor gateway for client tests: a sample-TEE attestation bundle signed for real
 * (Ed25519 sample evidence over runtimeDataHash, ES256 trust documents, Ed25519 receipts) and an
 * OHTTP responder built on @tresor/crypto's decapsulation and chunked gateway exchange, answering
 * a tiny OpenAI-compatible API. Only the TEE hardware is simulated (the sample TEE). Every hook
 * lets a test break exactly one thing.
 */
import { CompactSign, exportJWK, generateKeyPair, type JWK } from 'jose';
import {
  ATTESTATION_BUNDLE_PATH,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  type AttestationBundle,
  type ComponentEvidence,
  type RuntimeData,
} from '@tresor/protocol';
import {
  HpkeKeyPair,
  OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
  OHTTP_KEYS_MEDIA_TYPE,
  OHTTP_RESPONSE_MEDIA_TYPE,
  acceptChunkedOhttpRequest,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  concatBytes,
  createGatewayKey,
  decapsulateRequest,
  decodeBhttpRequest,
  encodeBhttpResponse,
  encodeKeyConfig,
  encodeKeyConfigList,
  encodeVarint,
  gatewayKeysById,
  runtimeDataHash,
  utf8Decode,
  utf8Encode,
  type OhttpGatewayKey,
} from '@tresor/crypto';
import {
  SampleSigningKey,
  createSampleEvidenceAsync,
  sampleVerifier,
  createVerifierSet,
  type VerifierSet,
} from '@tresor/attestation';

export const MODEL_ID = 'tiny-chat';
export const GATEWAY_URL = 'https://gateway.tresor.test';
const DOCUMENT_KEY_ID = 'trust-documents-1';

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };

export interface SampleGatewayOptions {
  /** Edit a component's runtime data before its evidence is produced (the evidence binds the edit). */
  readonly runtimeData?: (rd: Mutable<RuntimeData>, component: 'gateway' | 'serving') => void;
  /** Edit the bundle after everything was signed (tampering in transit). */
  readonly bundle?: (bundle: Mutable<AttestationBundle>) => void;
  /** The measurement the gateway's sample evidence reports (48 bytes); default: the released one. */
  readonly gatewayMeasurement?: Uint8Array;
  /** Jurisdiction of the sample machine in the signed inventory (default CH); null leaves it out. */
  readonly machineJurisdiction?: string | null;
  /** Sign the trust documents with another key than the one the policy pins. */
  readonly signDocumentsWithUnpinnedKey?: boolean;
  /** Clock of the gateway (evidence producedAt). */
  readonly now?: () => Date;
  /** TLS SPKI hash the runtime data attests (default: a fixed value tests pass as "observed"). */
  readonly tlsSpkiSha256?: string;
  /** Leave the receipt off model responses. */
  readonly omitReceipts?: boolean;
  /** Sign receipts with a key other than the attested one. */
  readonly forgeReceipts?: boolean;
}

export interface SampleGateway {
  /** The transport: a fetch that answers as the gateway would, without a network. */
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /** Answers one HTTP request (for an http server wrapper). */
  readonly handle: (request: Request) => Promise<Response>;
  /** The policy (JSON value) a client trusting this local stack uses. */
  readonly policy: Record<string, unknown>;
  /** Requests seen, by path (e.g. `/v1/ohttp`). */
  readonly calls: string[];
  /** Authorization headers seen inside the encryption. */
  readonly innerAuthorizations: string[];
  /** Request bodies seen inside the encryption (test-only: what the client sent, e.g. a chat's history). */
  readonly innerBodies: string[];
  readonly tlsSpkiSha256: string;
  readonly sampleKey: SampleSigningKey;
  /**
   * Replace the gateway's OHTTP key (a key rotation). `sameKeyId`: keep the key id, as a gateway
   * restarted with a fixed id does (requests sealed to the old key then fail to decrypt).
   */
  rotateKey(options?: { readonly sameKeyId?: boolean }): Promise<void>;
  /** The serving replica restarts: a new attested receipt key under the same replica id. */
  restartServing(): Promise<void>;
  /** The most recent bundle served. */
  lastBundle(): AttestationBundle | undefined;
}

export const RELEASED_MEASUREMENT = new Uint8Array(48).fill(0x11);
const SERVING_MEASUREMENT = new Uint8Array(48).fill(0x22);
const MODEL_SHA256 = 'ab'.repeat(32);

async function signDocument(key: CryptoKey, typ: string, body: Record<string, unknown>): Promise<string> {
  const payload = { ...body, iss: 'trust.tresor.test', iat: 1_700_000_000, version: 1 };
  return new CompactSign(utf8Encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', kid: DOCUMENT_KEY_ID, typ })
    .sign(key);
}

/** Verifiers whose sample TEE reports debug enabled: the stand-in for a debug-mode hardware TEE. */
export function debugTeeVerifiers(): VerifierSet {
  const set = createVerifierSet();
  return {
    ...set,
    sample: {
      ...sampleVerifier,
      async verify(report, endorsements, options) {
        const result = await sampleVerifier.verify(report, endorsements, options);
        return { ...result, appraisal: { ...result.appraisal, debug: true } };
      },
    },
  };
}

export async function createSampleGateway(options: SampleGatewayOptions = {}): Promise<SampleGateway> {
  const now = options.now ?? (() => new Date());
  const sampleKey = SampleSigningKey.generate();
  const documents = await generateKeyPair('ES256', { extractable: true });
  const other = await generateKeyPair('ES256', { extractable: true });
  const documentJwk: JWK = {
    ...(await exportJWK(documents.publicKey)),
    kid: DOCUMENT_KEY_ID,
    alg: 'ES256',
    use: 'sig',
  };
  let receipts = await generateKeyPair('EdDSA', { extractable: true });
  let receiptJwk = await exportJWK(receipts.publicKey);
  const forged = await generateKeyPair('EdDSA', { extractable: true });
  let gatewayKey: OhttpGatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
  let servingKey: OhttpGatewayKey = createGatewayKey(7, await HpkeKeyPair.generate());
  const tlsSpkiSha256 = options.tlsSpkiSha256 ?? 'c0'.repeat(32);
  const calls: string[] = [];
  const innerAuthorizations: string[] = [];
  const innerBodies: string[] = [];
  let last: AttestationBundle | undefined;

  const signer = options.signDocumentsWithUnpinnedKey === true ? other.privateKey : documents.privateKey;
  const referenceValues = await signDocument(signer, 'tresor-reference-values+jwt', {
    referenceValues: [
      {
        component: 'gateway',
        release: '1.0.0',
        tee: 'sample',
        measurements: { measurement: [bytesToHex(RELEASED_MEASUREMENT)] },
        imageDigests: [],
        initDataHashes: [],
        modelDigests: [],
      },
      {
        component: 'serving',
        release: '1.0.0',
        tee: 'sample',
        measurements: { measurement: [bytesToHex(SERVING_MEASUREMENT)] },
        imageDigests: [],
        initDataHashes: [],
        modelDigests: [MODEL_SHA256],
      },
    ],
  });
  const jurisdiction = options.machineJurisdiction === undefined ? 'CH' : options.machineJurisdiction;
  const residencyInventory = await signDocument(signer, 'tresor-residency-inventory+jwt', {
    hardware:
      jurisdiction === null
        ? []
        : [{ id: sampleKey.verifyKey.hex, kind: 'sample-machine', jurisdiction, site: 'test rack' }],
  });

  const component = async (
    which: 'gateway' | 'serving',
    nonce: string,
    key: OhttpGatewayKey,
    measurement: Uint8Array,
  ): Promise<Mutable<ComponentEvidence>> => {
    const rd: Mutable<RuntimeData> = {
      version: 1,
      component: which,
      nonce,
      hpkeKeyConfig: bytesToBase64Url(encodeKeyConfig(key.config)),
      tlsSpkiSha256: which === 'gateway' ? tlsSpkiSha256 : 'd0'.repeat(32),
      ...(which === 'serving'
        ? {
            models: [{ id: MODEL_ID, sha256: MODEL_SHA256 }],
            receiptKey: { kty: 'OKP', crv: 'Ed25519', x: receiptJwk.x ?? '' },
          }
        : {}),
    };
    options.runtimeData?.(rd, which);
    const evidence = await createSampleEvidenceAsync({
      reportData: await runtimeDataHash(rd),
      svn: 1,
      signingKey: sampleKey,
      measurement,
    });
    return {
      component: which,
      id: `${which}-1`,
      tee: 'sample',
      evidence: bytesToBase64(evidence),
      runtimeData: rd,
      producedAt: now().toISOString(),
    };
  };

  const servingEvidenceSha = async (bundle: AttestationBundle): Promise<string> => {
    const serving = bundle.serving[0];
    return serving === undefined
      ? ''
      : sha256Hex(Uint8Array.from(atob(serving.evidence), (c) => c.charCodeAt(0)));
  };

  const receipt = async (requestBody: Uint8Array, responseBytes: Uint8Array): Promise<string> => {
    const bundle = last;
    const claims = {
      requestSha256: await sha256Hex(requestBody),
      responseSha256: await sha256Hex(responseBytes),
      model: MODEL_ID,
      modelSha256: MODEL_SHA256,
      evidenceSha256: bundle === undefined ? '' : await servingEvidenceSha(bundle),
      replica: 'serving-1',
      iat: Math.floor(now().getTime() / 1000),
    };
    return new CompactSign(utf8Encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(options.forgeReceipts === true ? forged.privateKey : receipts.privateKey);
  };

  /** The OpenAI-compatible API inside the encryption: events for a stream, JSON otherwise. */
  const api = async (
    method: string,
    path: string,
    body: Uint8Array,
  ): Promise<{
    status: number;
    headers: [string, string][];
    events?: Uint8Array[];
    content?: Uint8Array;
  }> => {
    if (method === 'GET' && path === '/v1/models') {
      return {
        status: 200,
        headers: [['content-type', 'application/json']],
        content: utf8Encode(
          JSON.stringify({
            object: 'list',
            data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'tresor' }],
          }),
        ),
      };
    }
    if (method !== 'POST' || path !== '/v1/chat/completions') {
      return {
        status: 404,
        headers: [['content-type', 'application/json']],
        content: utf8Encode(
          '{"error":{"message":"not found","type":"invalid_request_error","code":"ROUTE_NOT_FOUND"}}',
        ),
      };
    }
    const request = JSON.parse(utf8Decode(body)) as { stream?: boolean; messages?: { content?: string }[] };
    const words = ['Grüezi', ' from', ' the', ' enclave'];
    const created = 1_700_000_000;
    if (request.stream === true) {
      const events = words.map((w, i) =>
        utf8Encode(
          `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created, model: MODEL_ID, choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: w } : { content: w }, finish_reason: null }] })}\n\n`,
        ),
      );
      events.push(
        utf8Encode(
          `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created, model: MODEL_ID, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
        ),
      );
      events.push(utf8Encode('data: [DONE]\n\n'));
      if (options.omitReceipts !== true) {
        events.push(utf8Encode(`${RECEIPT_SSE_PREFIX}${await receipt(body, concatBytes(...events))}\n\n`));
      }
      return { status: 200, headers: [['content-type', 'text/event-stream']], events };
    }
    const content = utf8Encode(
      JSON.stringify({
        id: 'chatcmpl-2',
        object: 'chat.completion',
        created,
        model: MODEL_ID,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: words.join('') },
            finish_reason: 'stop',
            logprobs: null,
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      }),
    );
    const headers: [string, string][] = [['content-type', 'application/json']];
    if (options.omitReceipts !== true) headers.push([RECEIPT_HEADER, await receipt(body, content)]);
    return { status: 200, headers, content };
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    calls.push(url.pathname);
    if (request.method === 'GET' && url.pathname === ATTESTATION_BUNDLE_PATH) {
      const nonce = url.searchParams.get('nonce') ?? '';
      const bundle: Mutable<AttestationBundle> = {
        version: 1,
        nonce,
        gateway: await component(
          'gateway',
          nonce,
          gatewayKey,
          options.gatewayMeasurement ?? RELEASED_MEASUREMENT,
        ),
        serving: [await component('serving', nonce, servingKey, SERVING_MEASUREMENT)],
        referenceValues,
        residencyInventory,
      };
      options.bundle?.(bundle);
      last = bundle;
      return Response.json(bundle);
    }
    if (request.method === 'GET' && url.pathname === '/.well-known/ohttp-gateway') {
      return new Response(encodeKeyConfigList([gatewayKey.config]) as BodyInit, {
        headers: { 'content-type': OHTTP_KEYS_MEDIA_TYPE },
      });
    }
    if (request.method === 'POST' && url.pathname === '/v1/ohttp') {
      const keys = gatewayKeysById([gatewayKey]);
      const type = request.headers.get('content-type') ?? '';
      if (type === 'message/ohttp-req') {
        let decapsulated;
        try {
          decapsulated = await decapsulateRequest(keys, new Uint8Array(await request.arrayBuffer()));
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'OHTTP_DECRYPT_FAILED';
          return Response.json({ error: { code, message: 'refused' } }, { status: 400 });
        }
        const inner = decodeBhttpRequest(decapsulated.request).message;
        const auth = inner.headers.find(([n]) => n.toLowerCase() === 'authorization');
        if (auth !== undefined) innerAuthorizations.push(auth[1]);
        innerBodies.push(utf8Decode(inner.content));
        const answer = await api(inner.method, inner.path, inner.content);
        const content = answer.content ?? concatBytes(...(answer.events ?? []));
        const sealed = await decapsulated.responder.encapsulateResponse(
          encodeBhttpResponse({
            informational: [],
            status: answer.status,
            headers: answer.headers,
            content,
            trailers: [],
          }),
        );
        return new Response(sealed as BodyInit, { headers: { 'content-type': OHTTP_RESPONSE_MEDIA_TYPE } });
      }
      if (type === 'message/ohttp-chunked-req' && request.body !== null) {
        let accepted;
        const parts: Uint8Array[] = [];
        try {
          // Read whole before answering, as the gateway does: a chunk that fails to open is refused in the clear.
          accepted = await acceptChunkedOhttpRequest(keys, request.body);
          for await (const part of accepted.request as unknown as AsyncIterable<Uint8Array>) parts.push(part);
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'OHTTP_DECRYPT_FAILED';
          return Response.json({ error: { code, message: 'refused' } }, { status: 400 });
        }
        const inner = decodeBhttpRequest(concatBytes(...parts)).message;
        const auth = inner.headers.find(([n]) => n.toLowerCase() === 'authorization');
        if (auth !== undefined) innerAuthorizations.push(auth[1]);
        innerBodies.push(utf8Decode(inner.content));
        const answer = await api(inner.method, inner.path, inner.content);
        // Indeterinate-length Binary HTTP (RFC 9292 §3.2), one content chunk per event.
        const field = (name: string, value: string): Uint8Array =>
          concatBytes(
            encodeVarint(name.length),
            utf8Encode(name),
            encodeVarint(utf8Encode(value).length),
            utf8Encode(value),
          );
        const pieces: Uint8Array[] = [
          concatBytes(
            encodeVarint(3),
            encodeVarint(answer.status),
            ...answer.headers.map(([n, v]) => field(n, v)),
            encodeVarint(0),
          ),
          ...(answer.events ?? [answer.content ?? new Uint8Array(0)]).map((e) =>
            concatBytes(encodeVarint(e.length), e),
          ),
          concatBytes(encodeVarint(0), encodeVarint(0)),
        ];
        const plain = new ReadableStream<Uint8Array>({
          start(controller) {
            for (const p of pieces) controller.enqueue(p);
            controller.close();
          },
        });
        return new Response(plain.pipeThrough(accepted.createResponseEncapsulator()), {
          headers: { 'content-type': OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE },
        });
      }
      return Response.json(
        { error: { code: 'REQUEST_MEDIA_TYPE_UNSUPPORTED', message: 'send message/ohttp-req' } },
        { status: 415 },
      );
    }
    return Response.json({ error: { code: 'ROUTE_NOT_FOUND', message: 'no such route' } }, { status: 404 });
  };

  return {
    fetch: (input, init) => handle(new Request(input, init)),
    handle,
    policy: {
      version: 1,
      trustServiceKeys: [{ jwk: documentJwk }],
      trustSignedReferenceValues: true,
      allowSampleTee: true,
      sampleVerifyKeys: [sampleKey.verifyKey.hex],
    },
    calls,
    innerAuthorizations,
    innerBodies,
    tlsSpkiSha256,
    sampleKey,
    async rotateKey(rotation = {}) {
      const same = rotation.sameKeyId === true;
      gatewayKey = createGatewayKey(same ? gatewayKey.config.keyId : 2, await HpkeKeyPair.generate());
      servingKey = createGatewayKey(same ? servingKey.config.keyId : 8, await HpkeKeyPair.generate());
    },
    async restartServing() {
      receipts = await generateKeyPair('EdDSA', { extractable: true });
      receiptJwk = await exportJWK(receipts.publicKey);
    },
    lastBundle: () => last,
  };
}
