/**
 * What the browser test page runs: a full OHTTP round trip (encapsulate a Binary HTTP request to
 * a gateway key, decapsulate it as the gateway, seal a response, open it) and policy parsing, on
 * the browser's own WebCrypto — the same code paths `connect()` uses.
 */
import {
  HpkeKeyPair,
  createGatewayKey,
  decapsulateRequest,
  decodeBhttpRequest,
  decodeBhttpResponse,
  encapsulateRequest,
  encodeBhttpRequest,
  encodeBhttpResponse,
  gatewayKeysById,
  runtimeDataHash,
  utf8Decode,
  utf8Encode,
} from '@tresor/crypto';
import { parseTresorPolicy } from '../index.js';

export async function ohttpRoundTrip(
  prompt: string,
): Promise<{ request: string; answer: string; reportData: number; policyAllowsSampleTee: boolean }> {
  const key = createGatewayKey(1, await HpkeKeyPair.generate());
  const body = utf8Encode(
    JSON.stringify({ model: 'tiny-chat', messages: [{ role: 'user', content: prompt }] }),
  );
  const { encapsulatedRequest, context } = await encapsulateRequest(
    key.config,
    encodeBhttpRequest({
      method: 'POST',
      scheme: 'https',
      authority: 'gateway.tresor.test',
      path: '/v1/chat/completions',
      headers: [['content-type', 'application/json']],
      content: body,
      trailers: [],
    }),
  );
  const gateway = await decapsulateRequest(gatewayKeysById([key]), encapsulatedRequest);
  const inner = decodeBhttpRequest(gateway.request).message;
  const sealed = await gateway.responder.encapsulateResponse(
    encodeBhttpResponse({
      informational: [],
      status: 200,
      headers: [],
      content: utf8Encode(`echo: ${prompt}`),
      trailers: [],
    }),
  );
  const answer = decodeBhttpResponse(await context.decapsulateResponse(sealed)).message;
  return {
    request: utf8Decode(inner.content),
    answer: utf8Decode(answer.content),
    reportData: (await runtimeDataHash({ nonce: 'n' })).length,
    policyAllowsSampleTee: parseTresorPolicy({
      version: 1,
      trustServiceKeys: [{ thumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' }],
      trustSignedReferenceValues: true,
    }).allowSampleTee,
  };
}
