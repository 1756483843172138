/**
 * Attestation verification rate per core, against the physical floor measured in the same run
 * (issue #4): one ECDSA P-384 verify per SEV-SNP report, two ECDSA P-256 verifies per TDX quote
 * (quote signature by the attestation key, QE report by the PCK key).
 *
 *   npm run bench:attestation            (tsc -b && tsx bench/attestation.ts)
 *   BENCH_SECONDS=1 npm run bench:attestation   (shorter runs)
 *
 * Rates are verifications per CPU-second of this process (all threads: WebCrypto runs its work on
 * the libuv pool), i.e. per core, comparable with `openssl speed` (one core). The wall rate with
 * one verification in flight is printed beside it. Targets with cached chains: SNP >= 0.9x the
 * openssl P-384 verify rate, TDX >= 0.4x the P-256 rate.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  createSnpVerifier,
  createTdxVerifier,
  type SnpEndorsements,
  type TdxEndorsements,
  type VerificationResult,
  type Verifier,
} from '@tresor/attestation';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '3');
const TESTDATA = fileURLToPath(new URL('../../shared/testdata/attestation/', import.meta.url));
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(TESTDATA + rel));

interface Rate {
  readonly perCpuSecond: number;
  readonly perWallSecond: number;
  readonly count: number;
}

/** `openssl speed -seconds N ecdsap384 ecdsap256`: verify/s per curve (one core). */
function opensslEcdsaVerifyRates(seconds: number): { p256: number; p384: number } {
  const result = spawnSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap384', 'ecdsap256'], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`openssl speed failed: ${result.stderr}`);
  const rate = (curve: string): number => {
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  52565.6  16849.2": the last column is verify/s.
    const row = result.stdout.split('\n').find((l) => l.includes(`ecdsa (${curve})`));
    const verify = Number(row?.trim().split(/\s+/).at(-1));
    if (!Number.isFinite(verify) || verify <= 0)
      throw new Error(`unexpected openssl speed output:\n${result.stdout}`);
    return verify;
  };
  return { p256: rate('nistp256'), p384: rate('nistp384') };
}

async function measure(once: () => Promise<VerificationResult>, seconds: number): Promise<Rate> {
  for (let i = 0; i < 20; i++) await once(); // warm-up: JIT, caches
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let count = 0;
  let elapsed = 0;
  while (elapsed < seconds) {
    const result = await once();
    if (!result.valid) throw new Error(`verification failed during the bench: ${result.error}`);
    count++;
    if (count % 16 === 0) elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { perCpuSecond: count / ((used.user + used.system) / 1e6), perWallSecond: count / elapsed, count };
}

function verifyOnce<R, E>(verifier: Verifier<R, E>, evidence: Uint8Array, endorsements: E, now: Date) {
  return () => verifier.verify(verifier.parse(evidence), endorsements, { now });
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits);

const REFERENCE_RESULT: VerificationResult = {
  tee: 'sample',
  valid: true,
  error: null,
  checks: {},
  claims: null,
  appraisal: {
    tee: 'sample',
    insecure: true,
    debug: false,
    measurements: {},
    reportData: null,
    hardwareIds: [],
    tcb: {},
    vmpl: null,
    nonce: null,
    flags: {},
  },
};

/** One WebCrypto ECDSA verify of a fixed message, as a verification for `measure`. */
async function webCryptoVerify(
  namedCurve: 'P-256' | 'P-384',
  hash: 'SHA-256' | 'SHA-384',
  messageLength: number,
): Promise<() => Promise<VerificationResult>> {
  const algorithm = { name: 'ECDSA', hash };
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve }, false, ['sign', 'verify']);
  const message = new Uint8Array(messageLength);
  const signature = await crypto.subtle.sign(algorithm, keys.privateKey, message);
  return async () => {
    const ok = await crypto.subtle.verify(algorithm, keys.publicKey, signature, message);
    return ok
      ? REFERENCE_RESULT
      : { ...REFERENCE_RESULT, valid: false, error: 'ATTESTATION_SIGNATURE_INVALID' };
  };
}

async function main(): Promise<void> {
  const floor = opensslEcdsaVerifyRates(2);

  const snpDir = 'snp/azure-genoa-v3/';
  const snpEvidence = read(`${snpDir}report.bin`);
  const snpEndorsements: SnpEndorsements = {
    signerCert: read(`${snpDir}vcek.pem`),
    caChain: read(`${snpDir}ask_ark.pem`),
  };
  const snpAt = new Date('2025-06-01T00:00:00Z');
  const tdxDir = 'tdx/dcap-qvl-v4-uptodate/';
  const tdxEvidence = read(`${tdxDir}quote.bin`);
  const tdxEndorsements: TdxEndorsements = { collateral: read(`${tdxDir}collateral.json`) };
  const tdxAt = new Date('2025-07-01T00:00:00Z');

  // The ceiling of a WebCrypto verifier: the signature verifies alone, key imported once.
  const p384 = await webCryptoVerify('P-384', 'SHA-384', 672);
  const p256 = await webCryptoVerify('P-256', 'SHA-256', 632);
  const rows = [
    {
      name: 'reference: WebCrypto ECDSA P-384 verify alone',
      rate: await measure(p384, SECONDS),
      floor: floor.p384,
      floorName: 'P-384',
      target: null,
    },
    {
      name: 'reference: 2 x WebCrypto ECDSA P-256 verify alone',
      rate: await measure(async () => {
        await p256();
        return p256();
      }, SECONDS),
      floor: floor.p256,
      floorName: 'P-256',
      target: null,
    },
    {
      name: 'SEV-SNP report (Genoa, VCEK), chain cached',
      rate: await measure(verifyOnce(createSnpVerifier(), snpEvidence, snpEndorsements, snpAt), SECONDS),
      floor: floor.p384,
      floorName: 'P-384',
      target: 0.9,
    },
    {
      name: 'SEV-SNP report (Genoa, VCEK), uncached',
      rate: await measure(
        verifyOnce(createSnpVerifier({ chainCache: null }), snpEvidence, snpEndorsements, snpAt),
        SECONDS,
      ),
      floor: floor.p384,
      floorName: 'P-384',
      target: null,
    },
    {
      name: 'TDX quote v4 + collateral, chain cached',
      rate: await measure(verifyOnce(createTdxVerifier(), tdxEvidence, tdxEndorsements, tdxAt), SECONDS),
      floor: floor.p256,
      floorName: 'P-256',
      target: 0.4,
    },
    {
      name: 'TDX quote v4 + collateral, uncached',
      rate: await measure(
        verifyOnce(createTdxVerifier({ cache: null }), tdxEvidence, tdxEndorsements, tdxAt),
        SECONDS,
      ),
      floor: floor.p256,
      floorName: 'P-256',
      target: null,
    },
  ];

  console.log(
    `attestation verification, ${SECONDS} s per row; ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `node ${process.version}; openssl speed -seconds 2 ecdsap384 ecdsap256: P-384 verify ${fmt(floor.p384)}/s, P-256 verify ${fmt(floor.p256)}/s`,
  );
  console.log('');
  console.log('| case | verifications/CPU-s | wall/s (1 in flight) | ratio to openssl verify/s | target |');
  console.log('|---|---:|---:|---:|---|');
  for (const row of rows) {
    const ratio = row.rate.perCpuSecond / row.floor;
    const verdict = row.target === null ? '-' : `>= ${row.target}x ${ratio >= row.target ? 'met' : 'MISSED'}`;
    console.log(
      `| ${row.name} | ${fmt(row.rate.perCpuSecond)} | ${fmt(row.rate.perWallSecond)} | ${fmt(ratio, 2)}x ${row.floorName} | ${verdict} |`,
    );
  }
}

await main();
