import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { base64ToBytes, bytesToHex } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import { parseAttestationBundle, verifyReceipt, type ComponentIdentity } from '@tresor/sdk';
import type { CliIo } from '../io.js';

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the ${what} ${path}`, { cause });
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

/** What the receipt is checked against: the replicas of a bundle, or the key saved with the receipt. */
async function replicasFrom(
  bundleText: string | undefined,
  saved: Record<string, unknown>,
): Promise<ComponentIdentity[]> {
  if (bundleText !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(bundleText);
    } catch (cause) {
      throw new TresorError('INPUT_MALFORMED', 'the bundle file is not JSON', { cause });
    }
    const bundle = parseAttestationBundle(json);
    return Promise.all(
      bundle.serving.map(async (s) => ({
        component: s.component,
        id: s.id,
        tee: s.tee,
        insecure: s.tee === 'sample',
        releases: [],
        measurements: {},
        hardwareIds: [],
        keyConfig: null,
        hpkeKeyConfig: s.runtimeData.hpkeKeyConfig,
        tlsSpkiSha256: s.runtimeData.tlsSpkiSha256,
        receiptKey: s.runtimeData.receiptKey ?? null,
        models: s.runtimeData.models ?? [],
        evidenceSha256: await sha256Hex(base64ToBytes(s.evidence)),
      })),
    );
  }
  const key = saved.receiptKey as ComponentIdentity['receiptKey'] | undefined;
  const claims = saved.claims as
    { replica?: string; evidenceSha256?: string; modelSha256?: string; model?: string } | undefined;
  if (key === undefined || claims === undefined) {
    throw new TresorError(
      'USAGE_INVALID',
      "a bare receipt needs --bundle <file> to know the replica's attested key",
    );
  }
  return [
    {
      component: 'serving',
      id: claims.replica ?? '',
      tee: 'sample',
      insecure: false,
      releases: [],
      measurements: {},
      hardwareIds: [],
      keyConfig: null,
      hpkeKeyConfig: '',
      tlsSpkiSha256: '',
      receiptKey: key,
      models: [{ id: claims.model ?? '', sha256: claims.modelSha256 ?? '' }],
      evidenceSha256: claims.evidenceSha256 ?? '',
    },
  ];
}

/** `tresor verify-receipt <file> [--bundle <file>]`. */
export async function verifyReceiptCommand(
  file: string,
  options: { readonly bundle?: string },
  io: CliIo,
): Promise<void> {
  const text = (await readText(resolve(io.cwd, file), 'receipt file')).trim();
  let saved: Record<string, unknown> = {};
  let jws = text;
  if (text.startsWith('{')) {
    try {
      saved = JSON.parse(text) as Record<string, unknown>;
    } catch (cause) {
      throw new TresorError('INPUT_MALFORMED', 'the receipt file is neither a compact JWS nor JSON', {
        cause,
      });
    }
    if (typeof saved.jws !== 'string')
      throw new TresorError('INPUT_MALFORMED', 'the receipt JSON has no "jws" member');
    jws = saved.jws;
  }
  const bundleText =
    options.bundle === undefined ? undefined : await readText(resolve(io.cwd, options.bundle), 'bundle file');
  const receipt = await verifyReceipt(jws, await replicasFrom(bundleText, saved));
  const c = receipt.claims;
  io.stdout.write(
    [
      `receipt verified${options.bundle === undefined ? ' (against the key saved with it; pass --bundle to tie it to attested evidence)' : " against the bundle's attested replica"}`,
      `  replica:   ${c.replica}`,
      `  model:     ${c.model} (sha256 ${c.modelSha256})`,
      `  request:   sha256 ${c.requestSha256}`,
      `  response:  sha256 ${c.responseSha256}`,
      `  evidence:  sha256 ${c.evidenceSha256}`,
      `  issued:    ${new Date(c.iat * 1000).toISOString()}`,
      '',
    ].join('\n'),
  );
}
