import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleSigningKey } from '@tresor/attestation';
import { isTresorError } from '@tresor/protocol';
import { openMetadataDatabase, stateDirectoryDatabase } from '@tresor/storage';
import { KbsClient, sampleAttester } from '@tresor/trust';
import { httpsReadyProbe } from '../../apps/cli/src/platform/readiness.js';
import {
  alive,
  cliEnv,
  eventually,
  freePortTriple,
  runTresor,
  startTresor,
  startUp,
  stopProcess,
  type Running,
} from './up-support.js';

/**
 * Fault injection: `kill -9` of the trust service, as its own process, during key release (issue #13).
 * The state is the one `tresor up` sets up (first start, then stopped); the test then runs trust
 * (`tresor trust serve`) and serving (`tresor serving serve`) itself from that state, as separate
 * processes, with clients doing RCAR + key release in a loop as a serving replica does at start-up.
 *
 * Expectations:
 * - every release in flight at the kill, and every one after it, fails with TRUST_SERVICE_UNREACHABLE
 *   (a catalogue code, no hang) and no key reaches a client after the process is gone;
 * - a serving replica starting while trust is down stays not-ready, its /readyz naming
 *   MODEL_KEY_NOT_RELEASED with the refusal TRUST_SERVICE_UNREACHABLE, and becomes ready BY ITSELF
 *   once trust is restarted on the same state (no serving restart);
 * - the restarted trust's audit log verifies (`tresor audit verify`) and holds a success record for
 *   every release a client received (no acknowledged record lost).
 */

const WORKERS = 3;
/** Releases acknowledged before the kill, so the kill lands in a busy loop. */
const BEFORE_KILL = 12;

let work: string;
let stateDir: string;
let tmp: string;
let env: Record<string, string>;
let trustUrl: string;
let servingUrl: string;
let ca: string;
let trustEnv: Record<string, string>;
let attester: ReturnType<typeof sampleAttester>;
let keyUri: string;
let trust: Running | undefined;
let serving: Running | undefined;

/** Success records of key releases in trust's audit log (read-only, as `tresor audit verify` opens it). */
async function successRecords(): Promise<number> {
  const db = await openMetadataDatabase(
    stateDirectoryDatabase(join(stateDir, 'trust', 'state'), { mustExist: true }),
    { readOnly: true },
  );
  try {
    const [row] = await db.query(
      "SELECT count(*) AS n FROM audit_records WHERE action = 'kbs.resource.release' AND outcome = 'success'",
    );
    return Number(row?.n);
  } finally {
    await db.close();
  }
}

async function startTrust(): Promise<Running> {
  const running = startTresor(['trust', 'serve', '--config', join(stateDir, 'trust', 'deployment.json')], {
    cwd: stateDir,
    env: trustEnv,
  });
  const probe = httpsReadyProbe(trustUrl, ca);
  await eventually('trust ready', async () => {
    if (running.process.exitCode !== null) throw new Error(running.output());
    return probe(AbortSignal.timeout(5_000));
  });
  return running;
}

/** `MODEL_KEY_NOT_RELEASED: …` from serving's /readyz, or 'ready'. */
async function servingReadiness(): Promise<string> {
  try {
    return (await httpsReadyProbe(servingUrl, ca)(AbortSignal.timeout(5_000))) ? 'ready' : 'not ready';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tresor-trust-kill-'));
  stateDir = join(work, 'state');
  tmp = join(work, 'tmp');
  await mkdir(tmp, { mode: 0o700 });
  env = cliEnv(work, tmp);
  const port = await freePortTriple();
  const up = await startUp(stateDir, port, { cwd: work, env });
  up.process.kill('SIGINT');
  expect((await up.exit).code).toBe(0);
  const local = JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as Record<string, string>;
  trustUrl = local.trustUrl!;
  ca = await readFile(local.caCertFile!, 'utf8');
  servingUrl = `https://127.0.0.1:${String(port + 2)}`;
  const servingConfig = JSON.parse(await readFile(join(stateDir, 'serving', 'serving.json'), 'utf8')) as {
    tee: { measurement: string };
    models: { key: string }[];
  };
  keyUri = servingConfig.models[0]!.key;
  attester = sampleAttester({
    signingKey: SampleSigningKey.parse(await readFile(join(stateDir, 'secrets', 'sample-tee.jwk'), 'utf8')),
    measurement: Buffer.from(servingConfig.tee.measurement, 'hex'),
  });
  trustEnv = {
    ...env,
    TRESOR_KEYSTORE_PASSPHRASE: (
      await readFile(join(stateDir, 'secrets', 'keystore-passphrase'), 'utf8')
    ).trim(),
  };
}, 300_000);

afterAll(async () => {
  await stopProcess(serving, 'SIGTERM');
  await stopProcess(trust, 'SIGTERM');
  await rm(work, { recursive: true, force: true });
});

interface Attempt {
  readonly startedAfterKill: boolean;
  readonly outcome: string;
}

describe('kill -9 of the trust service during key release', () => {
  it('refuses with TRUST_SERVICE_UNREACHABLE, serving recovers by itself, the audit log keeps every acknowledged release', async () => {
    const before = await successRecords();
    trust = await startTrust();
    const attempts: Attempt[] = [];
    let killed = false;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const startedAfterKill = killed;
        const client = new KbsClient({ url: trustUrl, attester, tls: { ca } });
        try {
          const key = await client.getResource(keyUri);
          attempts.push({ startedAfterKill, outcome: key.length === 32 ? 'key' : 'bad key' });
        } catch (err) {
          attempts.push({ startedAfterKill, outcome: isTresorError(err) ? err.code : String(err) });
          // After the kill every worker keeps trying a little (as a retrying client would).
          if (killed) await new Promise((r) => setTimeout(r, 50));
        } finally {
          client.close();
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, worker);
    await eventually('releases before the kill', () =>
      Promise.resolve(attempts.filter((a) => a.outcome === 'key').length >= BEFORE_KILL),
    );
    const trustPid = trust.pid;
    trust.process.kill('SIGKILL');
    await trust.exit;
    expect(alive(trustPid)).toBe(false);
    killed = true;
    await eventually('every worker refused after the kill', () =>
      Promise.resolve(attempts.filter((a) => a.startedAfterKill).length >= WORKERS * 3),
    );
    stop = true;
    await Promise.all(workers);

    const acknowledged = attempts.filter((a) => a.outcome === 'key').length;
    const afterKill = attempts.filter((a) => a.startedAfterKill);
    expect(
      afterKill.every((a) => a.outcome === 'TRUST_SERVICE_UNREACHABLE'),
      JSON.stringify(afterKill),
    ).toBe(true);
    // In flight at the kill: either the key (answered before it) or the same clean code, nothing else.
    const other = attempts.filter((a) => a.outcome !== 'key' && a.outcome !== 'TRUST_SERVICE_UNREACHABLE');
    expect(other).toEqual([]);

    // A replica starting while trust is down: listening, not ready, saying exactly why.
    serving = startTresor(['serving', 'serve', '--config', join(stateDir, 'serving', 'serving.json')], {
      cwd: stateDir,
      env,
    });
    let refusal = '';
    await eventually('serving names the refusal', async () => {
      refusal = await servingReadiness();
      return refusal.startsWith('MODEL_KEY_NOT_RELEASED');
    });
    expect(refusal).toContain('TRUST_SERVICE_UNREACHABLE');
    expect(serving.process.exitCode).toBeNull();

    // Trust back on the same state: serving becomes ready without being restarted.
    trust = await startTrust();
    const servingPid = serving.pid;
    await eventually(
      'serving ready after trust is back',
      async () => (await servingReadiness()) === 'ready',
      180_000,
    );
    expect(serving.pid).toBe(servingPid);
    expect(serving.process.exitCode).toBeNull();
    const client = new KbsClient({ url: trustUrl, attester, tls: { ca } });
    expect((await client.getResource(keyUri)).length).toBe(32);
    client.close();

    await stopProcess(serving, 'SIGTERM');
    await stopProcess(trust, 'SIGTERM');
    const audit = await runTresor(['audit', 'verify', '--dir', join(stateDir, 'trust', 'state')], {
      cwd: work,
      env,
    });
    expect(audit.code, audit.output).toBe(0);
    expect(audit.output).toContain('audit log intact');
    // Every release a client received is recorded: the loop's, serving's own, and the last control.
    const recorded = (await successRecords()) - before;
    expect(recorded).toBeGreaterThanOrEqual(acknowledged + 2);
    console.log(
      `trust kill -9: ${String(attempts.length)} release attempts by ${String(WORKERS)} workers, ` +
        `${String(acknowledged)} keys received (all recorded: ${String(recorded)} success records incl. serving + control), ` +
        `${String(afterKill.length)} attempts after the kill all TRUST_SERVICE_UNREACHABLE`,
    );
  });
});
