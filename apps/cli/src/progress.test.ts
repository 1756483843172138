import { describe, expect, it } from 'vitest';
import type { CliIo } from './io.js';
import { createProgress, formatBytes, renderProgressLine } from './progress.js';
import { captureIo } from '../../../test/support/cli-io.js';

describe('progress', () => {
  it('formats sizes in binary units', () => {
    expect([0, 1023, 1024, 1536, 256 * 1024 * 1024, 5 * 1024 ** 4].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '256.0 MiB',
      '5.0 TiB',
    ]);
  });

  it('renders bytes, percentage, rate and ETA', () => {
    const mib = 1024 * 1024;
    expect(renderProgressLine('sealing', 64 * mib, 256 * mib, 500)).toBe(
      'sealing   [######..................]  25%  64.0 MiB / 256.0 MiB  128.0 MiB/s  ETA 2s',
    );
    expect(renderProgressLine('unsealing', 0, 0, 0)).toContain('100%');
    expect(renderProgressLine('hashing', 1, 1000 * mib, 1000)).toContain('ETA ');
  });

  it('redraws at most every 100 ms but always shows completion, and clears the line at the end', () => {
    let err = '';
    let ms = 0;
    const io: CliIo = {
      ...captureIo(),
      stderr: { write: (s: string) => (err += s), isTTY: true },
      now: () => new Date(ms),
    };
    const progress = createProgress(io);
    for (let i = 1; i <= 10; i++) {
      ms += 10;
      progress.update('sealing', i, 10);
    }
    expect(err.split('\r\x1b[2K').filter((l) => l !== '')).toHaveLength(2);
    expect(err).toContain(' 100%');
    progress.finish();
    expect(err.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('writes nothing when stderr is not a terminal', () => {
    const io = captureIo();
    const progress = createProgress(io);
    progress.update('sealing', 5, 10);
    progress.finish();
    expect(io.err()).toBe('');
  });
});
