import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparePageWithReleases, type ReleaseSet } from './page-reference.js';

const HASH = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);
const ok = { state: 'ok', pageHash: HASH, files: 3 } as const;
const release = (hash: string, name = 'local-abababababab', component = 'console'): ReleaseSet => ({
  component,
  release: name,
  measurements: { page_sha256: [hash] },
});
const gateway: ReleaseSet = {
  component: 'gateway',
  release: '1.0.0',
  measurements: { measurement: ['ef'.repeat(48)] },
};

describe('comparePageWithReleases', () => {
  it('matches the released console page and names its release', () => {
    expect(comparePageWithReleases(ok, [gateway, release(OTHER, 'old'), release(HASH, 'new')])).toEqual({
      state: 'match',
      pageHash: HASH,
      release: 'new',
    });
  });

  it('compares hex case-blind (the reference values are lowercase)', () => {
    expect(comparePageWithReleases({ ...ok, pageHash: HASH.toUpperCase() }, [release(HASH)]).state).toBe(
      'match',
    );
  });

  it('is a mismatch when console releases are listed but none has this hash', () => {
    expect(comparePageWithReleases(ok, [release(OTHER)])).toEqual({
      state: 'mismatch',
      pageHash: HASH,
      released: [OTHER],
    });
  });

  it('is a mismatch when a fetched file differs from the manifest, even if the hash were listed', () => {
    const edited = { state: 'mismatch', pageHash: HASH, file: 'assets/index-x.js' } as const;
    expect(comparePageWithReleases(edited, [release(HASH)]).state).toBe('mismatch');
  });

  it('does not take another component measuring the same value for a console release', () => {
    expect(comparePageWithReleases(ok, [release(HASH, 'x', 'gateway')]).state).toBe('unlisted');
  });

  it('is unlisted when the reference values name no console (or did not verify: empty)', () => {
    expect(comparePageWithReleases(ok, [gateway])).toEqual({ state: 'unlisted', pageHash: HASH });
    expect(comparePageWithReleases(ok, []).state).toBe('unlisted');
  });

  it('is pending without a page hash or without verified reference values', () => {
    expect(comparePageWithReleases(null, [release(HASH)]).state).toBe('pending');
    expect(comparePageWithReleases({ state: 'unknown', reason: 'offline' }, [release(HASH)])).toEqual({
      state: 'pending',
      reason: 'offline',
    });
    expect(comparePageWithReleases(ok, null).state).toBe('pending');
  });

  it('matches exactly when some console set lists the hash (property)', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
    fc.assert(
      fc.property(
        hex,
        fc.array(fc.tuple(fc.constantFrom('console', 'gateway'), fc.array(hex, { maxLength: 3 }))),
        (page, raw) => {
          const sets = raw.map(([component, hashes], i) => ({
            component,
            release: `r${i}`,
            measurements: { page_sha256: hashes },
          }));
          const result = comparePageWithReleases({ state: 'ok', pageHash: page, files: 1 }, sets);
          const listed = sets.some(
            (s) => s.component === 'console' && s.measurements.page_sha256.includes(page),
          );
          expect(result.state === 'match').toBe(listed);
        },
      ),
      { seed: 11, numRuns: 200 },
    );
  });
});
