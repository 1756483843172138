import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import {
  createGatewayKey,
  decodeKeyConfig,
  encapsulateRequest,
  encodeBhttpRequest,
  HpkeKeyPair,
  OHTTP_REQUEST_MEDIA_TYPE,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import type { ComponentEvidence } from '@tresor/protocol';
import { startServingService } from '@tresor/serving';
import { SERVING_MEASUREMENT } from '../../support/serving-trust.js';
import type { Attack, Control, Expected } from './attack.js';
import type { MatrixEnv } from './env.js';
import { chat, codeOf, httpsCall, MODEL, type HttpAnswer, type PlatformEnv } from './platform-env.js';

/**
 * The serving replica over the wire, as something on the mesh network would reach it: mutual TLS
 * with the wrong identity or none, unsealed requests, requests sealed to another key; and replicas
 * that must refuse to start (model key not released, tampered sealed model, no evidence).
 */

const serving = 'serving' as const;

interface ServingTarget {
  readonly p: PlatformEnv;
  readonly hpke: OhttpKeyConfig;
  readonly gatewayCert: { readonly cert: string; readonly key: string };
  readonly servingCert: { readonly cert: string; readonly key: string };
  readonly foreignCert: { readonly cert: string; readonly key: string };
}

const targets = new WeakMap<PlatformEnv, Promise<ServingTarget>>();

/** A self-signed certificate naming the gateway's SPIFFE ID: the right name, not from the mesh CA. */
async function foreignGatewayCertificate(): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a',
    name: 'CN=gateway',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://tresor.local/gateway/_' }]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    cert: cert.toString('pem'),
    key: `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
  };
}

function target(env: MatrixEnv): Promise<ServingTarget> {
  return env.platform().then((p) => {
    let t = targets.get(p);
    if (t === undefined) {
      t = (async () => {
        const nonce = randomBytes(32).toString('hex');
        const evidence = JSON.parse(
          (await insecureGet(`${p.serving.url}/attestation?nonce=${nonce}`)).body.toString('utf8'),
        ) as ComponentEvidence;
        return {
          p,
          hpke: decodeKeyConfig(new Uint8Array(Buffer.from(evidence.runtimeData.hpkeKeyConfig, 'base64url'))),
          gatewayCert: await p.cluster.trust.meshClient('gateway'),
          servingCert: await p.cluster.trust.meshClient('serving'),
          foreignCert: await foreignGatewayCertificate(),
        };
      })();
      targets.set(p, t);
    }
    return t;
  });
}

/** The attacker does not need to verify the replica's certificate. */
function insecureGet(url: string): Promise<HttpAnswer> {
  return httpsCall(url, { method: 'GET', insecure: true });
}

function bhttpChat(): Uint8Array {
  return encodeBhttpRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'serving',
    path: '/v1/chat/completions',
    headers: [['content-type', 'application/json']],
    content: new TextEncoder().encode(JSON.stringify(chat('straight to serving'))),
    trailers: [],
  });
}

async function toServing(
  t: ServingTarget,
  options: {
    readonly type?: string;
    readonly body?: Uint8Array;
    readonly path?: string;
    readonly identity?: { readonly cert: string; readonly key: string } | null;
  },
): Promise<Expected | null> {
  const identity = options.identity === undefined ? t.gatewayCert : options.identity;
  const body = options.body ?? (await encapsulateRequest(t.hpke, bhttpChat())).encapsulatedRequest;
  return codeOf(
    await httpsCall(`${t.p.serving.url}${options.path ?? '/v1/ohttp'}`, {
      method: 'POST',
      insecure: true,
      headers: { 'content-type': options.type ?? OHTTP_REQUEST_MEDIA_TYPE },
      body,
      ...(identity ?? {}),
    }),
  );
}

/** Starts another replica against the platform's trust service with `edit` applied; the reason it is not ready. */
async function refusedStart(
  env: MatrixEnv,
  edit: (base: {
    readonly dir: string;
    readonly sealedModel: string;
    readonly modelKey: string;
  }) => Promise<{ file?: string; key?: string; signingKeyFile?: string }>,
): Promise<Expected | null> {
  const p = await env.platform();
  const dir = p.cluster.dir;
  const sealedModel = join(dir, `${MODEL}.tresor`);
  const changed = await edit({ dir, sealedModel, modelKey: `kbs:///models/key/${MODEL}` });
  const replica = await startServingService(
    {
      mode: 'local',
      replicaId: `matrix-${randomBytes(3).toString('hex')}`,
      listen: { host: '127.0.0.1', port: 0 },
      trust: { url: p.cluster.trust.url, caFile: p.cluster.trust.caFile },
      tee: {
        source: 'sample',
        signingKeyFile: changed.signingKeyFile ?? p.cluster.trust.sampleKeyFile,
        measurement: SERVING_MEASUREMENT,
      },
      models: [
        { id: MODEL, file: changed.file ?? sealedModel, key: changed.key ?? `kbs:///models/key/${MODEL}` },
      ],
      engine: { kind: 'echo' },
      workDir: join(dir, `matrix-work-${randomBytes(3).toString('hex')}`),
      logLevel: 'silent',
      shutdownGraceMs: 0,
    },
    {},
  );
  try {
    await replica.ready;
    return null;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code as Expected;
    throw err;
  } finally {
    await replica.close();
  }
}

export const servingControls: readonly Control[] = [
  {
    component: serving,
    what: 'a request sealed to the replica’s attested key, over mTLS as the gateway, is answered',
    run: async (env) => toServing(await target(env), {}),
  },
  {
    component: serving,
    what: 'a second replica with the released model key and the sealed model becomes ready',
    run: (env) => refusedStart(env, () => Promise.resolve({})),
  },
];

export const servingAttacks: readonly Attack[] = [
  {
    component: serving,
    attack: 'no client certificate (not on the mesh)',
    expect: 'MESH_PEER_NOT_ALLOWED',
    run: async (env) => toServing(await target(env), { identity: null }),
  },
  {
    component: serving,
    attack: 'mesh certificate of another component (serving calling serving)',
    expect: 'MESH_PEER_NOT_ALLOWED',
    run: async (env) => {
      const t = await target(env);
      return toServing(t, { identity: t.servingCert });
    },
  },
  {
    component: serving,
    attack: 'self-signed certificate naming the gateway’s SPIFFE ID (not from the mesh CA)',
    expect: 'MESH_PEER_NOT_ALLOWED',
    run: async (env) => {
      const t = await target(env);
      return toServing(t, { identity: t.foreignCert });
    },
  },
  {
    component: serving,
    attack: 'unsealed JSON request to /v1/ohttp',
    expect: 'REQUEST_MEDIA_TYPE_UNSUPPORTED',
    run: async (env) =>
      toServing(await target(env), {
        type: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(chat('plaintext'))),
      }),
  },
  {
    component: serving,
    attack: 'unsealed request to /v1/chat/completions',
    expect: 'ROUTE_NOT_FOUND',
    run: async (env) =>
      toServing(await target(env), {
        type: 'application/json',
        path: '/v1/chat/completions',
        body: new TextEncoder().encode(JSON.stringify(chat('plaintext'))),
      }),
  },
  {
    component: serving,
    attack: 'Binary HTTP sent unsealed with the OHTTP media type',
    expect: 'OHTTP_KEY_ID_UNKNOWN',
    run: async (env) => {
      const t = await target(env);
      // The first byte of a known-length request (0x00) is read as the key id; pick one the replica does not have.
      const bhttp = bhttpChat();
      bhttp[0] = (t.hpke.keyId + 1) & 0xff;
      return toServing(t, { body: bhttp });
    },
  },
  {
    component: serving,
    attack: 'request sealed to another key under the replica’s key id',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async (env) => {
      const t = await target(env);
      const other = createGatewayKey(t.hpke.keyId, await HpkeKeyPair.generate());
      return toServing(t, {
        body: (await encapsulateRequest(other.config, bhttpChat())).encapsulatedRequest,
      });
    },
  },
  {
    component: serving,
    attack: 'request sealed to another key id',
    expect: 'OHTTP_KEY_ID_UNKNOWN',
    run: async (env) => {
      const t = await target(env);
      const other = createGatewayKey((t.hpke.keyId + 1) & 0xff, await HpkeKeyPair.generate());
      return toServing(t, {
        body: (await encapsulateRequest(other.config, bhttpChat())).encapsulatedRequest,
      });
    },
  },
  {
    component: serving,
    attack: 'sealed request with its authentication tag edited',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async (env) => {
      const t = await target(env);
      const sealed = (await encapsulateRequest(t.hpke, bhttpChat())).encapsulatedRequest;
      sealed[sealed.length - 1]! ^= 0x80;
      return toServing(t, { body: sealed });
    },
  },
  {
    component: serving,
    attack: 'replica asks for a model key the trust service does not release',
    expect: 'MODEL_KEY_NOT_RELEASED',
    run: (env) => refusedStart(env, () => Promise.resolve({ key: 'kbs:///models/key/not-released' })),
  },
  {
    component: serving,
    attack: 'sealed model tampered on disk (one bit of a chunk)',
    expect: 'SEALED_MODEL_TAMPERED',
    run: (env) =>
      refusedStart(env, async ({ dir, sealedModel }) => {
        const file = join(dir, 'tampered.tresor');
        const bytes = await readFile(sealedModel);
        bytes[bytes.length - 40]! ^= 1;
        await writeFile(file, bytes);
        return { file };
      }),
  },
  {
    component: serving,
    attack: 'sealed model truncated on disk',
    expect: 'SEALED_MODEL_TRUNCATED',
    run: (env) =>
      refusedStart(env, async ({ dir, sealedModel }) => {
        const file = join(dir, 'truncated.tresor');
        const bytes = await readFile(sealedModel);
        await writeFile(file, bytes.subarray(0, bytes.length - 100));
        return { file };
      }),
  },
  {
    component: serving,
    attack: 'no TEE evidence (sample signing key unreadable)',
    expect: 'EVIDENCE_UNAVAILABLE',
    run: (env) =>
      refusedStart(env, async ({ dir, sealedModel }) => {
        const copy = join(dir, 'copy.tresor');
        await copyFile(sealedModel, copy);
        return { file: copy, signingKeyFile: join(dir, 'no-such-sample-key.jwk') };
      }),
  },
];
