import { describe, expect, it } from 'vitest';
import { SampleSigningKey } from '@tresor/attestation';
import { sampleAttester } from './attester.js';
import { KbsClient, resourceRequestPath } from './client.js';
import type { KbsTransport, TransportResponse } from './client-transport.js';

const json = (status: number, body: unknown, headers: Record<string, string> = {}): TransportResponse => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: new TextEncoder().encode(JSON.stringify(body)),
});

/** A scripted KBS: answers each request with the next response, recording what was sent. */
function scripted(
  responses: TransportResponse[],
): KbsTransport & { sent: { method: string; path: string; body?: unknown }[] } {
  const sent: { method: string; path: string; body?: unknown }[] = [];
  return {
    sent,
    request(method, path, _headers, body) {
      sent.push({
        method,
        path,
        ...(body === undefined ? {} : { body: JSON.parse(new TextDecoder().decode(body)) as unknown }),
      });
      const next = responses.shift();
      if (next === undefined) throw new Error('unexpected request');
      return Promise.resolve(next);
    },
    close: () => undefined,
  };
}

const challenge = json(
  200,
  { nonce: 'Hh459Yb8p3scemptkzC7Od5EBi16hbNUPTZzKRoFH/E=', 'extra-params': '' },
  {
    'set-cookie': 'kbs-session-id=0123456789abcdef0123456789abcdef; Expires=Thu, 01 Jan 2099 00:00:00 GMT',
  },
);
const attester = sampleAttester({ signingKey: SampleSigningKey.generate() });

describe('KbsClient', () => {
  it('maps kbs:/// URIs to resource paths and refuses anything else', () => {
    expect(resourceRequestPath('kbs:///default/key/model')).toBe('/kbs/v0/resource/default/key/model');
    expect(resourceRequestPath('a/b/c')).toBe('/kbs/v0/resource/a/b/c');
    for (const bad of ['kbs:///a/b', 'kbs:///a/b/c/d', 'kbs:///a/../c', 'kbs://host/a/b/c?x']) {
      expect(() => resourceRequestPath(bad)).toThrow(
        expect.objectContaining({ code: 'RESOURCE_PATH_INVALID' }) as Error,
      );
    }
  });

  it('sends the Request and Attestation as guest-components does', async () => {
    const transport = scripted([challenge, json(200, { token: 'a.b.c' })]);
    const client = new KbsClient({ url: 'https://kbs.example', attester, transport });
    expect(await client.attest()).toBe('a.b.c');
    expect(transport.sent[0]).toMatchObject({
      method: 'POST',
      path: '/kbs/v0/auth',
      body: { version: '0.4.0', tee: 'sample' },
    });
    const attestation = transport.sent[1]!.body as Record<string, Record<string, unknown>>;
    expect(Object.keys(attestation)).toEqual(['runtime-data', 'tee-evidence']);
    expect(attestation['runtime-data']).toMatchObject({
      nonce: 'Hh459Yb8p3scemptkzC7Od5EBi16hbNUPTZzKRoFH/E=',
      'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW' },
    });
    expect(attestation['tee-evidence']).toMatchObject({
      additional_evidence: '',
      primary_evidence: { svn: '1' },
    });
  });

  it('turns a refusal into the catalogue error the server names', async () => {
    const refusal = json(
      401,
      {
        type: 'https://github.com/confidential-containers/kbs/errors/AttestationError',
        detail: 'REPORT_DATA_MISMATCH: no',
      },
      {
        'tresor-error-code': 'REPORT_DATA_MISMATCH',
      },
    );
    const client = new KbsClient({
      url: 'https://kbs.example',
      attester,
      transport: scripted([challenge, refusal]),
    });
    await expect(client.attest()).rejects.toMatchObject({
      code: 'REPORT_DATA_MISMATCH',
      message: 'REPORT_DATA_MISMATCH: no',
    });
  });

  it('maps a plain Trustee refusal by its variant, and re-attests once when a resource answers 401', async () => {
    const tokenRefused = json(401, {
      type: 'https://github.com/confidential-containers/kbs/errors/TokenVerifierError',
      detail: 'x',
    });
    const transport = scripted([
      challenge,
      json(200, { token: 't1' }),
      tokenRefused,
      challenge,
      json(200, { token: 't2' }),
      tokenRefused,
    ]);
    const client = new KbsClient({ url: 'https://kbs.example', attester, transport });
    await expect(client.getResource('kbs:///a/b/c')).rejects.toMatchObject({
      code: 'ATTESTATION_TOKEN_INVALID',
    });
    expect(transport.sent.map((s) => s.path)).toEqual([
      '/kbs/v0/auth',
      '/kbs/v0/attest',
      '/kbs/v0/resource/a/b/c',
      '/kbs/v0/auth',
      '/kbs/v0/attest',
      '/kbs/v0/resource/a/b/c',
    ]);
  });

  it('does not re-attest after a policy denial, and refuses an answer that is not a JWE', async () => {
    const deny = json(401, {
      type: 'https://github.com/confidential-containers/kbs/errors/PolicyDeny',
      detail: 'no',
    });
    const denied = new KbsClient({
      url: 'https://kbs.example',
      attester,
      transport: scripted([challenge, json(200, { token: 't' }), deny]),
    });
    await expect(denied.getResource('kbs:///a/b/c')).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    const garbage = new KbsClient({
      url: 'https://kbs.example',
      attester,
      transport: scripted([challenge, json(200, { token: 't' }), json(200, { protected: 'x' })]),
    });
    await expect(garbage.getResource('kbs:///a/b/c')).rejects.toMatchObject({ code: 'KBS_RESPONSE_INVALID' });
    const noCookie = new KbsClient({
      url: 'https://kbs.example',
      attester,
      transport: scripted([json(200, { nonce: 'n' })]),
    });
    await expect(noCookie.attest()).rejects.toMatchObject({ code: 'KBS_RESPONSE_INVALID' });
  });

  it('refuses a non-https URL', () => {
    expect(() => new KbsClient({ url: 'http://kbs.example', attester })).toThrow(
      expect.objectContaining({ code: 'USAGE_INVALID' }) as Error,
    );
  });
});
