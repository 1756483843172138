import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { SampleSigningKey } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import type { AuditEntry } from '@tresor/storage';
import {
  buildTrustApp,
  KbsClient,
  keyStoreTokenSigner,
  MemoryResourceRepository,
  resourcePath,
  ResourceStore,
  sampleAttester,
  type EndorsementProvider,
  type KbsAttester,
  type ReferenceValueLookup,
  type ResidencyLookup,
  type TrustApp,
  type TrustConfigInput,
  type TrustPlugin,
} from '@tresor/trust';
import { createTestPki, type TestPki } from './test-pki.js';

/**
 * TEST-ONLY: a trust service on loopback TLS with a file keystore in a temporary directory
 * (resources sealed under a keystore KEK, tokens signed by a keystore ES256 key), an in-memory audit
 * sink, and a sample TEE installation key. Everything is generated at run time.
 */
export interface TrustFixture {
  readonly app: TrustApp;
  readonly url: string;
  readonly pki: TestPki;
  readonly sampleKey: SampleSigningKey;
  readonly audit: AuditEntry[];
  /** A KBS client over TLS 1.3 that trusts the fixture's CA. */
  client(attester?: KbsAttester): KbsClient;
  close(): Promise<void>;
}

export interface TrustFixtureOptions {
  readonly config?: Omit<Partial<TrustConfigInput>, 'server'> & { readonly server?: Record<string, unknown> };
  readonly now?: () => Date;
  readonly referenceValues?: ReferenceValueLookup;
  readonly residency?: ResidencyLookup;
  readonly endorsements?: EndorsementProvider;
  /** Resources to store before start, by `repository/type/tag`. */
  readonly resources?: Readonly<Record<string, Uint8Array>>;
  readonly logDestination?: DestinationStream;
  readonly plugins?: readonly TrustPlugin[];
  /** Default true: sign sample evidence with the fixture's installation key. */
  readonly sampleKey?: SampleSigningKey;
  /** Runs before each audit record is kept; a rejection is the audit sink failing (fault injection). */
  readonly auditFault?: (entry: AuditEntry) => Promise<void>;
}

let pkiOnce: Promise<TestPki> | undefined;

export async function startTrustFixture(options: TrustFixtureOptions = {}): Promise<TrustFixture> {
  const pki = await (pkiOnce ??= createTestPki('trust'));
  const dir = await mkdtemp(join(tmpdir(), 'tresor-trust-'));
  const keyStore = await FileKeyStore.open({
    path: join(dir, 'keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('test passphrase only')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const kek = await keyStore.createKek({ label: 'kbs resources' });
  const signingKey = await keyStore.createSigningKey('ES256', { label: 'attestation tokens' });
  const resources = await ResourceStore.open({
    keyStore,
    kekId: kek.id,
    repository: new MemoryResourceRepository(),
  });
  for (const [path, secret] of Object.entries(options.resources ?? {})) {
    const [repository, type, tag] = path.split('/');
    await resources.put(resourcePath(repository, type, tag), secret);
  }
  const sampleKey = options.sampleKey ?? SampleSigningKey.generate();
  const audit: AuditEntry[] = [];
  const { server: serverOverrides, attestation, ...rest } = options.config ?? {};
  const app = await buildTrustApp(
    {
      server: {
        port: 0,
        tls: { cert: pki.server.cert, key: pki.server.key },
        logLevel: 'warn',
        ...serverOverrides,
      },
      attestation: {
        sampleVerifyKey: sampleKey.verifyKey.hex,
        ...attestation,
        policy: { allowSampleTee: true, measurements: 'any', hardwareIds: 'any', ...attestation?.policy },
      },
      ...rest,
    },
    {
      keyStore,
      audit: {
        append: async (entry) => {
          await options.auditFault?.(entry);
          audit.push(entry);
        },
      },
      resources,
      tokenSigners: [await keyStoreTokenSigner(keyStore, signingKey.id)],
      ...(options.referenceValues === undefined ? {} : { referenceValues: options.referenceValues }),
      ...(options.residency === undefined ? {} : { residency: options.residency }),
      ...(options.endorsements === undefined ? {} : { endorsements: options.endorsements }),
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
      ...(options.plugins === undefined ? {} : { plugins: options.plugins }),
    },
  );
  const url = await app.listen();
  const clients: KbsClient[] = [];
  return {
    app,
    url,
    pki,
    sampleKey,
    audit,
    client(attester = sampleAttester({ signingKey: sampleKey })) {
      const client = new KbsClient({ url, attester, tls: { ca: pki.ca } });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await app.close();
      await keyStore.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
