import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../io.js';
import { run } from '../index.js';
import { captureIo } from '../../../../test/support/cli-io.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const bin = join(repoRoot, 'apps/cli/bin/tresor.js');

let dir: string;
const path = (name: string): string => join(dir, name);
const model = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff);
const keyHex = 'a1'.repeat(32);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-cli-model-'));
  writeFileSync(path('model.bin'), model);
  writeFileSync(path('model.key'), `${keyHex}\n`);
  writeFileSync(path('other.key'), new Uint8Array(32).fill(7));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tresor = async (...args: string[]) => {
  const io = captureIo();
  const code = await run(args, io);
  return { code, out: io.out(), err: io.err() };
};
const sealArgs = (input = 'model.bin', output = 'model.tresor', key = 'model.key', ...extra: string[]) => [
  'model',
  'seal',
  path(input),
  '-o',
  path(output),
  '--key-file',
  path(key),
  ...extra,
];
const unsealArgs = (input = 'model.tresor', output = 'model.out', key = 'model.key', ...extra: string[]) => [
  'model',
  'unseal',
  path(input),
  '-o',
  path(output),
  '--key-file',
  path(key),
  ...extra,
];
/** The stderr contract: exactly `error CODE: message` and `fix: action`. */
const failure = (code: string): RegExp => new RegExp(`^error ${code}: [^\\n]+\\nfix: [^\\n]+\\n$`);

describe('tresor model (in process)', () => {
  it('seal -> inspect -> unseal round trips, quietly on a non-terminal', async () => {
    const sealed = await tresor(
      ...sealArgs(
        'model.bin',
        'model.tresor',
        'model.key',
        '--chunk-size',
        '64KiB',
        '--name',
        'demo',
        '--meta',
        'rev=7',
      ),
    );
    expect(sealed).toMatchObject({ code: 0, err: '' });
    expect(sealed.out).toMatch(
      /^sealed .* 300000 bytes in 5 chunks of 64\.0 KiB, key id key-fingerprint:[0-9a-f]{32}\n$/,
    );

    const inspected = await tresor('model', 'inspect', path('model.tresor'), '--json');
    expect(inspected.code).toBe(0);
    const header = JSON.parse(inspected.out) as Record<string, unknown>;
    expect(header).toMatchObject({
      version: 1,
      algorithm: 'AES-256-GCM-HKDF-SHA256-STREAM',
      chunkSize: 65536,
      plaintextLength: 300000,
      metadata: { name: 'demo', rev: '7' },
    });
    expect(Object.keys(header).sort()).toEqual([
      'algorithm',
      'chunkSize',
      'keyFingerprint',
      'keyId',
      'metadata',
      'noncePrefix',
      'plaintextLength',
      'plaintextSha256',
      'salt',
      'version',
    ]);
    const human = await tresor('model', 'inspect', path('model.tresor'));
    expect(human.out).toContain('key fingerprint  ');
    expect(human.out).toContain('metadata         name=demo');
    expect(human.out).toContain('not authenticated');
    expect(human.out).not.toContain(keyHex);

    const unsealed = await tresor(...unsealArgs());
    expect(unsealed).toMatchObject({ code: 0, err: '' });
    expect(unsealed.out).toContain(`sha256 ${String(header.plaintextSha256)} verified`);
    expect(Buffer.compare(readFileSync(path('model.out')), model)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([
      'model.bin',
      'model.key',
      'model.out',
      'model.tresor',
      'other.key',
    ]);
  });

  it('refuses a wrong key (exit 1) and a tampered file (exit 1), leaving no output and no temporary file', async () => {
    expect((await tresor(...sealArgs())).code).toBe(0);
    const tampered = readFileSync(path('model.tresor'));
    tampered[tampered.length - 1000]! ^= 0x10;
    writeFileSync(path('tampered.tresor'), tampered);
    const before = readdirSync(dir).sort();

    const wrongKey = await tresor(...unsealArgs('model.tresor', 'model.out', 'other.key'));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toMatch(failure('SEALED_MODEL_WRONG_KEY'));

    const modified = await tresor(...unsealArgs('tampered.tresor'));
    expect(modified.code).toBe(1);
    expect(modified.err).toMatch(failure('SEALED_MODEL_TAMPERED'));
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('exits 2 for unreadable input, bad keys, foreign files and usage errors', async () => {
    writeFileSync(path('short.key'), 'abcd\n');
    const cases: [string[], string][] = [
      [sealArgs('missing.bin'), 'INPUT_UNREADABLE'],
      [unsealArgs('missing.tresor'), 'INPUT_UNREADABLE'],
      [['model', 'inspect', path('missing.tresor')], 'INPUT_UNREADABLE'],
      [sealArgs('model.bin', 'x.tresor', 'short.key'), 'SEALED_MODEL_KEY_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'missing.key'), 'INPUT_UNREADABLE'],
      [unsealArgs('model.bin'), 'SEALED_MODEL_MALFORMED'],
      [['model', 'inspect', path('model.bin')], 'SEALED_MODEL_MALFORMED'],
      [['model', 'seal', path('model.bin'), '--key-file', path('model.key')], 'USAGE_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'model.key', '--chunk-size', '0'), 'USAGE_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'model.key', '--chunk-size', '65MiB'), 'USAGE_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'model.key', '--meta', 'novalue'), 'USAGE_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'model.key', '--meta', 'bad key=1'), 'USAGE_INVALID'],
      [sealArgs('model.bin', 'x.tresor', 'model.key', '--key-id', 'two words'), 'USAGE_INVALID'],
      [sealArgs('model.bin', 'no-such-dir/x.tresor'), 'OUTPUT_UNWRITABLE'],
    ];
    for (const [args, code] of cases) {
      const result = await tresor(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.err, args.join(' ')).toMatch(failure(code));
    }
    expect(readdirSync(dir).sort()).toEqual(['model.bin', 'model.key', 'other.key', 'short.key']);
  });

  it('refuses to overwrite an existing output without --force', async () => {
    writeFileSync(path('model.tresor'), 'precious');
    const refused = await tresor(...sealArgs());
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(failure('USAGE_INVALID'));
    expect(refused.err).toContain('--force');
    expect(readFileSync(path('model.tresor'), 'utf8')).toBe('precious');
    expect((await tresor(...sealArgs('model.bin', 'model.tresor', 'model.key', '--force'))).code).toBe(0);
    expect((await tresor(...unsealArgs())).code).toBe(0);
    expect((await tresor(...unsealArgs())).code).toBe(2);
    expect((await tresor(...unsealArgs('model.tresor', 'model.out', 'model.key', '--force'))).code).toBe(0);
  });

  it('draws a progress bar on stderr only when stderr is a terminal', async () => {
    let err = '';
    let tick = 0;
    const tty: CliIo = {
      ...captureIo(),
      stderr: { write: (s: string) => (err += s), isTTY: true },
      // Each reading of the clock advances 50 ms, so throttled redraws still happen.
      now: () => new Date(Date.UTC(2025, 5, 1) + 50 * tick++),
    };
    expect(await run(sealArgs('model.bin', 'model.tresor', 'model.key', '--chunk-size', '16KiB'), tty)).toBe(
      0,
    );
    expect(err).toMatch(
      new RegExp(
        String.raw`\r\x1b\[2Ksealing +\[#+\.*\] +\d+% {2}[\d.]+ KiB \/ 293\.0 KiB {2}[\d.]+ [KMG]?i?B\/s {2}ETA \d+s`,
      ),
    );
    expect(err.endsWith('\r\x1b[2K')).toBe(true);
  });
});

describe('tresor model (spawned bin)', () => {
  const spawnTresor = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

  it('exits 0, 1 and 2 with the code and a fix line on stderr', () => {
    expect(existsSync(join(repoRoot, 'apps/cli/dist/index.js')), 'run `npx tsc -b` first').toBe(true);
    const ok = spawnTresor(...sealArgs());
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    const refused = spawnTresor(...unsealArgs('model.tresor', 'model.out', 'other.key'));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(failure('SEALED_MODEL_WRONG_KEY'));
    const missing = spawnTresor(...unsealArgs('missing.tresor'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(failure('INPUT_UNREADABLE'));
    expect(readdirSync(dir).sort()).toEqual(['model.bin', 'model.key', 'model.tresor', 'other.key']);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a large seal leaves neither the output nor a partial file`, async () => {
      // 64-byte chunks make sealing a few MiB take seconds, so the signal surely lands mid-way.
      writeFileSync(path('large.bin'), new Uint8Array(8 * 1024 * 1024));
      const child = spawn(
        process.execPath,
        [bin, ...sealArgs('large.bin', 'large.tresor', 'model.key', '--chunk-size', '64')],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on('exit', (code, sig) => {
          resolve({ code, signal: sig });
        });
      });
      const deadline = Date.now() + 20_000;
      while (!readdirSync(dir).some((f) => f.endsWith('.partial')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(
        readdirSync(dir).some((f) => f.endsWith('.partial')),
        'the seal never started',
      ).toBe(true);
      child.kill(signal);
      const result = await exited;
      // Re-raised after cleanup: the parent sees death by the same signal (a shell shows 130/143).
      expect(result).toEqual({ code: null, signal });
      expect(stderr).toContain(`interrupted by ${signal}: no output was written`);
      expect(readdirSync(dir).sort()).toEqual(['large.bin', 'model.bin', 'model.key', 'other.key']);
    });
  }
});
