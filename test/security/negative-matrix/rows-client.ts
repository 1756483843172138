import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { connect, type FetchFunction } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import type { AttestationBundle } from '@tresor/protocol';
import { createTestCa, issueTestCertificate } from '../../support/test-pki.js';
import { refusal, type Attack, type Control, type Expected } from './attack.js';
import { chat, type PlatformEnv } from './platform-env.js';

/**
 * The client (`@tresor/sdk` `connect`, as `tresor verify`, `tresor chat` and the proxy use it)
 * against a real gateway, with someone in the middle: a TLS interceptor holding a certificate the
 * client trusts, a network that edits or replays the attestation bundle, a clock past the
 * evidence's freshness, and policies that do not accept what the platform runs.
 */

const client = 'client' as const;

async function connectTo(
  p: PlatformEnv,
  options: {
    readonly url?: string;
    readonly ca?: string;
    readonly policy?: Record<string, unknown>;
    readonly now?: () => Date;
    readonly edit?: (bundle: AttestationBundle & Record<string, unknown>) => unknown;
  } = {},
): Promise<Expected | null> {
  const transport = createNodeTransport({ ca: options.ca ?? p.cluster.gatewayCa });
  const edit = options.edit;
  const fetch: FetchFunction =
    edit === undefined
      ? transport.fetch
      : async (input, init) => {
          const response = await transport.fetch(input, init);
          if (!new Request(input).url.includes('/.well-known/tresor/attestation')) return response;
          const bundle = (await response.json()) as AttestationBundle & Record<string, unknown>;
          return new Response(JSON.stringify(edit(bundle)), {
            status: response.status,
            headers: { 'content-type': 'application/json' },
          });
        };
  return refusal(() =>
    connect(options.url ?? p.gateway.url, {
      policy: options.policy ?? p.policy(),
      fetch,
      // Bundles edited in flight are Responses the TLS binding did not see: verify as a browser would.
      ...(edit === undefined ? { tls: transport.tls } : {}),
      ...(options.now === undefined ? {} : { now: options.now }),
    }),
  );
}

/** A TLS interceptor with its own certificate for localhost (from a CA the client was made to trust). */
async function startInterceptor(
  p: PlatformEnv,
): Promise<{ url: string; ca: string; close: () => Promise<void> }> {
  const ca = await createTestCa('mitm');
  const identity = await issueTestCertificate(ca, 'localhost', 'server', '77');
  const upstream = new URL(p.gateway.url);
  const sockets = new Set<{ destroy(): void }>();
  const server = createTlsServer(
    { cert: identity.cert, key: identity.key, minVersion: 'TLSv1.3' },
    (down) => {
      const up = tlsConnect({
        host: upstream.hostname,
        port: Number(upstream.port),
        ca: p.cluster.gatewayCa,
        servername: 'localhost',
      });
      sockets.add(up).add(down);
      down.pipe(up).pipe(down);
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('interceptor did not listen');
  return {
    url: `https://localhost:${address.port}`,
    ca: ca.cert.toString('pem'),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

function editedJws(jws: string): string {
  const [header, payload, signature] = jws.split('.');
  const json = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  json.matrix = 'edited in flight';
  return `${header}.${Buffer.from(JSON.stringify(json)).toString('base64url')}.${signature}`;
}

let capturedBundle: (AttestationBundle & Record<string, unknown>) | undefined;

export const clientControls: readonly Control[] = [
  {
    component: client,
    what: 'connect verifies the platform (Node transport, TLS key bound) and a chat completion is answered',
    run: async (env) => {
      const p = await env.platform();
      const transport = createNodeTransport({ ca: p.cluster.gatewayCa });
      const tresor = await connect(p.gateway.url, { policy: p.policy(), ...transport });
      const answer = await tresor.fetch(`${tresor.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(chat('client control')),
      });
      await answer.text();
      return answer.status === 200 && tresor.lastReceipt !== undefined ? null : 'RECEIPT_INVALID';
    },
  },
  {
    component: client,
    what: 'a bundle passed through unchanged by the network (browser-style, no TLS binding) verifies',
    run: async (env) =>
      connectTo(await env.platform(), {
        edit: (bundle) => {
          capturedBundle = bundle;
          return bundle;
        },
      }),
  },
];

export const clientAttacks: readonly Attack[] = [
  {
    component: client,
    attack: 'TLS interception with a certificate the client trusts (MITM)',
    expect: 'TLS_KEY_MISMATCH',
    run: async (env) => {
      const p = await env.platform();
      const mitm = await startInterceptor(p);
      try {
        return await connectTo(p, { url: mitm.url, ca: `${p.cluster.gatewayCa}\n${mitm.ca}` });
      } finally {
        await mitm.close();
      }
    },
  },
  {
    component: client,
    attack: 'stale evidence (client clock an hour past the evidence)',
    expect: 'EVIDENCE_STALE',
    run: async (env) => connectTo(await env.platform(), { now: () => new Date(Date.now() + 3_600_000) }),
  },
  {
    component: client,
    attack: 'replayed attestation bundle (an earlier nonce)',
    expect: 'EVIDENCE_STALE',
    run: async (env) => {
      const p = await env.platform();
      if (capturedBundle === undefined) await connectTo(p, { edit: (b) => (capturedBundle = b) });
      const old = capturedBundle;
      return connectTo(p, { edit: () => old });
    },
  },
  {
    component: client,
    attack: 'reference values edited in flight',
    expect: 'SIGNED_DOCUMENT_INVALID',
    run: async (env) =>
      connectTo(await env.platform(), {
        edit: (bundle) => ({ ...bundle, referenceValues: editedJws(bundle.referenceValues) }),
      }),
  },
  {
    component: client,
    attack: 'residency inventory edited in flight',
    expect: 'SIGNED_DOCUMENT_INVALID',
    run: async (env) =>
      connectTo(await env.platform(), {
        edit: (bundle) => ({ ...bundle, residencyInventory: editedJws(bundle.residencyInventory) }),
      }),
  },
  {
    component: client,
    attack: 'gateway OHTTP key swapped for the attacker’s in the bundle',
    expect: 'REPORT_DATA_MISMATCH',
    run: async (env) =>
      connectTo(await env.platform(), {
        edit: (bundle) => ({
          ...bundle,
          gateway: {
            ...bundle.gateway,
            runtimeData: {
              ...bundle.gateway.runtimeData,
              hpkeKeyConfig: bundle.serving[0]?.runtimeData.hpkeKeyConfig ?? '',
            },
          },
        }),
      }),
  },
  {
    component: client,
    attack: 'serving evidence swapped for the gateway’s',
    expect: 'VERIFICATION_FAILED',
    run: async (env) =>
      connectTo(await env.platform(), {
        edit: (bundle) => ({ ...bundle, serving: [bundle.gateway] }),
      }),
  },
  {
    component: client,
    attack: 'policy pins a release the platform does not run',
    expect: 'MEASUREMENT_NOT_ALLOWED',
    run: async (env) => {
      const p = await env.platform();
      return connectTo(p, {
        policy: p.policy({
          trustSignedReferenceValues: false,
          releases: [
            { component: 'gateway', release: '9.9.9' },
            { component: 'serving', release: '9.9.9' },
          ],
        }),
      });
    },
  },
  {
    component: client,
    attack: 'hardware outside the policy’s jurisdictions',
    expect: 'RESIDENCY_VIOLATION',
    run: async (env) => {
      const p = await env.platform();
      return connectTo(p, { policy: p.policy({ jurisdictions: ['DE'] }) });
    },
  },
  {
    component: client,
    attack: 'sample TEE under a policy that does not allow it',
    expect: 'SAMPLE_TEE_NOT_ALLOWED',
    run: async (env) => {
      const p = await env.platform();
      return connectTo(p, { policy: p.policy({ allowSampleTee: false, sampleVerifyKeys: [] }) });
    },
  },
  {
    component: client,
    attack: 'documents signed by a trust service the client did not pin',
    expect: 'SIGNED_DOCUMENT_INVALID',
    run: async (env) => {
      const p = await env.platform();
      const { publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ]);
      const jwk = await crypto.subtle.exportKey('jwk', publicKey);
      return connectTo(p, {
        policy: p.policy({ trustServiceKeys: [{ jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } }] }),
      });
    },
  },
];
