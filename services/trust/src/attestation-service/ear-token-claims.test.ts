import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { identityFromClaims } from './ear-token-claims.js';

const KEY = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'x', y: 'y' } as const;
const payload = {
  eat_profile: 'tag:github.com,2023:veraison/ear',
  iat: 1_700_000_000,
  exp: 1_700_000_300,
  jti: 'token-1',
  submods: {
    cpu0: {
      'ear.status': 'affirming',
      'tresor.tee': 'snp',
      'tresor.insecure': false,
      'tresor.debug': false,
      'tresor.measurements': { measurement: 'ab' },
      'tresor.hardware-ids': ['c1', 'b2'],
      'tresor.residency': 'CH',
      'tresor.tenant': 'acme',
      'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': KEY } },
    },
    gpu0: { 'ear.status': 'warning', 'tresor.hardware-ids': ['b2'] },
  },
};

describe('identityFromClaims', () => {
  it('reads the identity, with the worst submodule status as the overall one', () => {
    expect(identityFromClaims(payload)).toMatchObject({
      tokenId: 'token-1',
      status: 'warning',
      tee: 'snp',
      measurements: { measurement: 'ab' },
      hardwareIds: ['c1', 'b2'],
      residency: 'CH',
      tenant: 'acme',
      initDataHash: null,
      gpus: [{ status: 'warning', deviceId: 'b2' }],
      teePublicKey: KEY,
    });
  });

  it.each([
    ['another profile', { ...payload, eat_profile: 'tag:github.com,2024:confidential-containers/Trustee' }],
    ['no cpu0', { ...payload, submods: {} }],
    [
      'no tee-pubkey',
      { ...payload, submods: { cpu0: { ...payload.submods.cpu0, 'ear.veraison.annotated-evidence': {} } } },
    ],
    [
      'a private tee key',
      {
        ...payload,
        submods: {
          cpu0: {
            ...payload.submods.cpu0,
            'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': { ...KEY, d: 'x' } } },
          },
        },
      },
    ],
    [
      'a bad status',
      {
        ...payload,
        submods: { ...payload.submods, gpu0: { 'ear.status': 'great', 'tresor.hardware-ids': [] } },
      },
    ],
  ])('refuses %s (ATTESTATION_TOKEN_INVALID)', (_what, value) => {
    try {
      identityFromClaims(value);
      expect.unreachable();
    } catch (err) {
      expect(isTresorError(err) && err.code).toBe('ATTESTATION_TOKEN_INVALID');
    }
  });
});
