import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { requireProtocolVersion } from './protocol-version.js';

function outcome(version: string): string {
  try {
    requireProtocolVersion(version);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('requireProtocolVersion', () => {
  it('accepts exactly 0.4.0, as guest-components sends it', () => {
    expect(outcome('0.4.0')).toBe('accepted');
  });

  it('ignores build metadata, as semver matching does (SemVer §10)', () => {
    expect(outcome('0.4.0+build.7')).toBe('accepted');
  });

  it.each([
    '0.1.1',
    '0.1.0',
    '0.4.1',
    '1.0.0',
    '0.4.0-rc1',
    '00.4.0',
    'v0.4.0',
    '0.4',
    ' 0.4.0',
    '0.4.0 ',
    '',
  ])('refuses %j (the stale prose-document versions included)', (version) => {
    expect(outcome(version)).toBe('KBS_PROTOCOL_VERSION_UNSUPPORTED');
  });

  it('refuses every other semantic version (property)', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.nat(20), fc.nat(20), (major, minor, patch) => {
        const version = `${major}.${minor}.${patch}`;
        return outcome(version) === (version === '0.4.0' ? 'accepted' : 'KBS_PROTOCOL_VERSION_UNSUPPORTED');
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but KBS_PROTOCOL_VERSION_UNSUPPORTED for arbitrary strings (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (version) => {
        const result = outcome(version);
        return result === 'accepted'
          ? version.startsWith('0.4.0')
          : result === 'KBS_PROTOCOL_VERSION_UNSUPPORTED';
      }),
      { numRuns: 1000 },
    );
  });
});
