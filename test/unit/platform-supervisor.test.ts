import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TresorError } from '@tresor/protocol';
import {
  LineRing,
  Supervisor,
  childExitOf,
  describeExit,
  renderChildExit,
  type ChildSpec,
} from '../../apps/cli/src/platform/supervisor.js';
import { httpsReadyProbe } from '../../apps/cli/src/platform/readiness.js';
import { createTestPki } from '../support/test-pki.js';

// Tiny fake children (`node -e`): they write a marker file when "ready", so readiness is observable
// without timing assumptions.

let dir: string;
let supervisors: Supervisor[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-supervisor-'));
  supervisors = [];
});

afterEach(async () => {
  for (const s of supervisors) await s.stop();
  await rm(dir, { recursive: true, force: true });
});

function supervisor(options: { graceMs?: number; readyTimeoutMs?: number } = {}): Supervisor {
  const s = new Supervisor({ logDir: join(dir, 'logs'), pollIntervalMs: 20, ...options });
  supervisors.push(s);
  return s;
}

function fileReady(name: string) {
  return () => Promise.resolve(existsSync(join(dir, `${name}.ready`)));
}

/** A child that prints lines, marks itself ready, then waits; `onTerm` decides what SIGTERM does. */
function child(name: string, script: string, ready = fileReady(name)): ChildSpec {
  return {
    name,
    command: process.execPath,
    args: ['-e', script],
    env: { ...process.env, READY_FILE: join(dir, `${name}.ready`) },
    cwd: dir,
    ready,
  };
}

const SERVE = `
  console.log('starting');
  console.error('a warning on stderr');
  require('node:fs').writeFileSync(process.env.READY_FILE, 'x');
  process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
  setInterval(() => {}, 1000);
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Supervisor', () => {
  it('starts children, waits for readiness, logs their output, and stops them all', async () => {
    const s = supervisor();
    await s.start(child('trust', SERVE));
    await s.start(child('gateway', SERVE));
    expect(s.running).toEqual(['trust', 'gateway']);
    const pids = [...s.pids];
    expect(pids.every(alive)).toBe(true);
    await s.stop();
    expect(s.running).toEqual([]);
    expect(pids.some(alive)).toBe(false);
    const log = await readFile(join(dir, 'logs', 'trust.log'), 'utf8');
    expect(log).toContain('starting');
    expect(log).toContain('a warning on stderr');
    expect(log).toContain('bye');
  });

  it('kills a child that ignores SIGTERM after the grace period', async () => {
    const s = supervisor({ graceMs: 200 });
    await s.start(
      child(
        'stubborn',
        `require('node:fs').writeFileSync(process.env.READY_FILE, 'x');
         process.on('SIGTERM', () => { console.log('ignoring'); });
         setInterval(() => {}, 1000);`,
      ),
    );
    const [pid] = s.pids;
    await s.stop();
    expect(alive(pid!)).toBe(false);
  });

  it('refuses a child that exits before it is ready, with its last lines', async () => {
    const s = supervisor();
    const err = await s
      .start(
        child(
          'serving',
          `console.log('loading model'); console.error('model key refused'); process.exit(3);`,
        ),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TresorError);
    expect((err as TresorError).code).toBe('CHILD_PROCESS_FAILED');
    expect((err as TresorError).message).toContain('serving exited before it was ready (exit code 3)');
    const exit = childExitOf(err);
    expect(exit?.lastLines).toEqual(['loading model', 'model key refused']);
    expect(renderChildExit(exit!)).toContain('  | model key refused');
  });

  it('stops a child that is not ready by the deadline', async () => {
    const s = supervisor({ readyTimeoutMs: 300, graceMs: 200 });
    const err = await s
      .start(child('slow', `console.log('never ready'); setInterval(() => {}, 1000);`))
      .catch((e: unknown) => e);
    expect((err as TresorError).code).toBe('CHILD_PROCESS_FAILED');
    expect((err as TresorError).message).toContain('slow was not ready within 0.3 s and was stopped');
    expect(s.running).toEqual([]);
    expect(s.pids.some(alive)).toBe(false);
  });

  it('names the last reason a child gave for not being ready', async () => {
    const s = supervisor({ readyTimeoutMs: 300, graceMs: 200 });
    const err = await s
      .start(child('loading', SERVE, () => Promise.reject(new Error('SERVICE_NOT_READY: engine: loading'))))
      .catch((e: unknown) => e);
    expect((err as TresorError).message).toContain('its last answer: SERVICE_NOT_READY: engine: loading');
  });

  it('refuses a command that cannot be started', async () => {
    const s = supervisor();
    const err = await s
      .start({ ...child('ghost', ''), command: join(dir, 'no-such-binary') })
      .catch((e: unknown) => e);
    expect((err as TresorError).code).toBe('CHILD_PROCESS_FAILED');
    expect(childExitOf(err)?.lastLines.join('\n')).toContain('could not be started');
  });

  it('reports a child that dies after start through `failed`, and not one that was stopped', async () => {
    const s = supervisor();
    await s.start(child('trust', SERVE));
    await s.start(
      child(
        'gateway',
        `require('node:fs').writeFileSync(process.env.READY_FILE, 'x');
         console.log('listening');
         setTimeout(() => { console.error('fatal: out of memory'); process.exit(7); }, 50);`,
      ),
    );
    const exit = await s.failed;
    expect(exit.name).toBe('gateway');
    expect(exit.code).toBe(7);
    expect(exit.lastLines).toEqual(['listening', 'fatal: out of memory']);
    expect(s.running).toEqual(['trust']);
    await s.stop();
    expect(s.running).toEqual([]);
  });

  it('does not count a stop as a failure', async () => {
    const s = supervisor();
    await s.start(child('trust', SERVE));
    await s.stop();
    const settled = await Promise.race([s.failed.then(() => 'failed'), Promise.resolve('pending')]);
    expect(settled).toBe('pending');
  });

  it('refuses to start once stopping', async () => {
    const s = supervisor();
    await s.stop();
    await expect(s.start(child('late', SERVE))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });

  it('keeps probing while the probe throws, then succeeds', async () => {
    const s = supervisor();
    let calls = 0;
    await s.start(
      child('flaky', SERVE, () => {
        calls += 1;
        if (calls < 3) return Promise.reject(new Error('ECONNREFUSED'));
        return Promise.resolve(true);
      }),
    );
    expect(calls).toBe(3);
  });
});

describe('LineRing', () => {
  it('keeps the last lines, joining partial writes', () => {
    const ring = new LineRing(2);
    ring.push('one\ntw');
    ring.push('o\nthree\nfo');
    expect(ring.lines()).toEqual(['three', 'fo']);
  });

  it('never holds more than its capacity, whatever is written', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.string({ maxLength: 30 })), (cap, writes) => {
        const ring = new LineRing(cap);
        for (const w of writes) ring.push(w);
        const lines = ring.lines();
        expect(lines.length).toBeLessThanOrEqual(cap);
        const all = writes.join('').split('\n');
        if (all.at(-1) === '') all.pop();
        expect(lines).toEqual(all.slice(-cap));
      }),
    );
  });

  it('cuts very long lines', () => {
    const ring = new LineRing(3);
    ring.push(`${'x'.repeat(5000)}\n`);
    expect(ring.lines()[0]!.length).toBeLessThanOrEqual(2001);
  });
});

describe('describeExit', () => {
  it('names the signal, the code or a failed start', () => {
    expect(describeExit({ code: null, signal: 'SIGKILL' })).toBe('signal SIGKILL');
    expect(describeExit({ code: 2, signal: null })).toBe('exit code 2');
    expect(describeExit({ code: null, signal: null })).toBe('it could not be started');
  });
});

describe('httpsReadyProbe', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => {
      if (server === undefined) r(undefined);
      else server.close(r);
    });
    server = undefined;
  });

  async function serve(status: number): Promise<{ url: string; ca: string }> {
    const pki = await createTestPki('probe');
    server = createServer(
      { cert: pki.server.cert, key: pki.server.key, minVersion: 'TLSv1.3' },
      (req, res) => {
        res.statusCode = req.url === '/readyz' ? status : 404;
        res.end(
          status === 503
            ? JSON.stringify({ code: 'SERVICE_NOT_READY', message: 'model-keys: waiting', action: 'retry' })
            : '{}',
        );
      },
    );
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    return { url: `https://127.0.0.1:${String(port)}`, ca: pki.ca };
  }

  it('is ready on 200 from /readyz with the local CA', async () => {
    const { url, ca } = await serve(200);
    expect(await httpsReadyProbe(url, ca)(AbortSignal.timeout(5000))).toBe(true);
  });

  it('is not ready on 503, with the reason the service gives', async () => {
    const { url, ca } = await serve(503);
    await expect(httpsReadyProbe(url, ca)(AbortSignal.timeout(5000))).rejects.toThrow(
      'SERVICE_NOT_READY: model-keys: waiting',
    );
  });

  it('is not ready on another status without a Tresor error body', async () => {
    const { url, ca } = await serve(500);
    await expect(httpsReadyProbe(url, ca)(AbortSignal.timeout(5000))).rejects.toThrow('HTTP 500');
  });

  it('is not ready when the certificate is from another CA', async () => {
    const { url } = await serve(200);
    const other = await createTestPki('other');
    await expect(httpsReadyProbe(url, other.ca)(AbortSignal.timeout(5000))).rejects.toThrow(/not answering/);
  });

  it('is not ready when nothing listens', async () => {
    const { url, ca } = await serve(200);
    await new Promise((r) => server!.close(r));
    server = undefined;
    await expect(httpsReadyProbe(url, ca)(AbortSignal.timeout(5000))).rejects.toThrow(/ECONNREFUSED/);
  });
});
