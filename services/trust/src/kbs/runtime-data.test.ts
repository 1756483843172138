import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToHex, canonicalJson, runtimeDataHash } from '@tresor/crypto';
import { additionalDeviceNonce, expectedReportData, primaryRuntimeData } from './runtime-data.js';
import type { TeePublicKeyJwk } from './tee-public-key.js';

interface Vector {
  readonly name: string;
  readonly input: Record<string, unknown>;
  readonly jcs: string;
  readonly digest: string;
  readonly report_data_64?: string;
}
const vectors = (
  JSON.parse(
    readFileSync(
      new URL(
        '../../../../../shared/testdata/protocol/kbs/runtime-data-binding-vectors.json',
        import.meta.url,
      ),
      'utf8',
    ),
  ) as { vectors: Vector[] }
).vectors;
const realToken = vectors.find((v) => v.report_data_64 !== undefined)!;

describe('runtime data binding (KBS.md, runtime-data-binding-vectors.json)', () => {
  it('reproduces the real Trustee token: report_data = SHA-384(JCS({additional-evidence, nonce, tee-pubkey})) || 16 zero bytes', async () => {
    const {
      nonce,
      'tee-pubkey': key,
      'additional-evidence': additional,
    } = realToken.input as {
      nonce: string;
      'tee-pubkey': TeePublicKeyJwk;
      'additional-evidence': string;
    };
    // Built from the Attestation's members in the order they arrive; JCS orders them.
    const bound = primaryRuntimeData(key, nonce, additional);
    expect(canonicalJson(bound)).toBe(realToken.jcs);
    expect(bytesToHex(await expectedReportData(bound))).toBe(realToken.report_data_64);
  });

  it('fails to reproduce it when "additional-evidence" is left out, as the vector warns', async () => {
    const { nonce, 'tee-pubkey': key } = realToken.input as { nonce: string; 'tee-pubkey': TeePublicKeyJwk };
    expect(bytesToHex(await runtimeDataHash({ nonce, 'tee-pubkey': key }))).not.toBe(
      realToken.report_data_64,
    );
  });

  it('derives the GPU nonce from {nonce, tee-pubkey} only: 32 bytes of SHA-384', () => {
    const { nonce, 'tee-pubkey': key } = realToken.input as { nonce: string; 'tee-pubkey': TeePublicKeyJwk };
    const gpuNonce = additionalDeviceNonce(key, nonce);
    expect(gpuNonce).toMatch(/^[0-9a-f]{64}$/);
    expect(gpuNonce).toBe(
      createHash('sha384')
        .update(canonicalJson({ nonce, 'tee-pubkey': key }))
        .digest('hex')
        .slice(0, 64),
    );
  });

  it('binds every member: changing the nonce, the key or the additional evidence changes the report data (property)', async () => {
    const key = realToken.input['tee-pubkey'] as TeePublicKeyJwk;
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.string(), fc.string(), async (nonce, other, additional) => {
        const base = bytesToHex(await expectedReportData(primaryRuntimeData(key, nonce, additional)));
        const changedNonce = bytesToHex(
          await expectedReportData(primaryRuntimeData(key, nonce + other + 'x', additional)),
        );
        const changedEvidence = bytesToHex(
          await expectedReportData(primaryRuntimeData(key, nonce, `${additional}${other}y`)),
        );
        return base.endsWith('0'.repeat(32)) && base !== changedNonce && base !== changedEvidence;
      }),
      { numRuns: 1000 },
    );
  });
});
