import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { TresorError } from '@tresor/protocol';
import { writeFileAtomic } from '@tresor/keystore';

/**
 * The local platform's own CA: one self-signed P-256 CA in `<dir>/tls/`, and one certificate per
 * service for localhost / 127.0.0.1 / ::1, which also names the service's mesh identity
 * (`spiffe://tresor.local/<service>/_`, the SPIFFE ID the trust service's mesh CA would give it):
 * in local mode the gateway uses its certificate as its mesh client certificate towards serving.
 * Clients trust `ca.pem` (what `local.json` names as `caCertFile`). Private keys are PKCS#8 PEM
 * files of mode 0600 inside the 0700 state directory; this CA exists for one machine's loopback
 * and is never a production CA.
 */
x509.cryptoProvider.set(globalThis.crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
/** Server certificates stay under the 398 days browsers and Apple's TLS stack accept. */
const LEAF_DAYS = 397;
/** A certificate this close to expiry, or already expired, is issued again at start. */
const RENEW_BEFORE_DAYS = 30;

export const TLS_DIR = 'tls';
export const CA_CERT_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca.key';
/** The trust domain of mesh identities (services/trust DEFAULT_TRUST_DOMAIN). */
export const LOCAL_TRUST_DOMAIN = 'tresor.local';

/** `spiffe://tresor.local/<component>/_`: a platform component, not bound to a tenant. */
export function localSpiffeId(component: string): string {
  return `spiffe://${LOCAL_TRUST_DOMAIN}/${component}/_`;
}

export interface ServerTlsFiles {
  /** PEM certificate chain (leaf, CA). */
  readonly certFile: string;
  /** PEM PKCS#8 private key (0600). */
  readonly keyFile: string;
}

export interface LocalTls {
  readonly caCertFile: string;
  /** The CA certificate, PEM. */
  readonly caCert: string;
  readonly servers: Readonly<Record<string, ServerTlsFiles>>;
  /** Names of what was (re)issued in this call, for progress lines. */
  readonly issued: readonly string[];
}

interface Ca {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
}

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function pemBody(text: string, label: string): Uint8Array<ArrayBuffer> {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(text);
  if (match?.[1] === undefined) throw new Error(`no ${label} PEM block`);
  return new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'));
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}`, { cause });
  }
}

function fresh(cert: x509.X509Certificate, now: Date): boolean {
  return cert.notBefore <= now && cert.notAfter.getTime() - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS;
}

async function loadCa(dir: string, now: Date): Promise<Ca | undefined> {
  const certText = await readOptional(join(dir, CA_CERT_FILE));
  const keyText = await readOptional(join(dir, CA_KEY_FILE));
  if (certText === undefined || keyText === undefined) return undefined;
  try {
    const cert = new x509.X509Certificate(certText);
    const privateKey = await crypto.subtle.importKey(
      'pkcs8',
      pemBody(keyText, 'PRIVATE KEY'),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    return fresh(cert, now) ? { cert, privateKey } : undefined;
  } catch (cause) {
    throw new TresorError(
      'CONFIG_INVALID',
      `the local CA in ${dir} cannot be read; delete the state directory to set the platform up again`,
      { cause },
    );
  }
}

async function createCa(dir: string, now: Date): Promise<Ca> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=Tresor local CA (this machine only)',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writeFileAtomic(
    join(dir, CA_KEY_FILE),
    pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  );
  await writeFileAtomic(join(dir, CA_CERT_FILE), cert.toString('pem'), 0o644);
  return { cert, privateKey: keys.privateKey };
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER (RFC 5280 §4.1.2.2)
  return Buffer.from(bytes).toString('hex');
}

async function issueServer(ca: Ca, name: string, files: ServerTlsFiles, now: Date): Promise<void> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${name}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + LEAF_DAYS * DAY_MS),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
        { type: 'url', value: localSpiffeId(name) },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  await writeFileAtomic(
    files.keyFile,
    pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  );
  await writeFileAtomic(files.certFile, `${cert.toString('pem')}\n${ca.cert.toString('pem')}\n`, 0o644);
}

async function serverIsCurrent(ca: Ca, files: ServerTlsFiles, now: Date): Promise<boolean> {
  const certText = await readOptional(files.certFile);
  const keyText = await readOptional(files.keyFile);
  if (certText === undefined || keyText === undefined) return false;
  try {
    const cert = new x509.X509Certificate(certText);
    return fresh(cert, now) && (await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }));
  } catch {
    return false;
  }
}

/**
 * Makes sure `<stateDir>/tls` holds a CA and a current server certificate for every name: reuses
 * what is there, (re)issues what is missing, expiring, or from another CA. Idempotent.
 */
export async function ensureLocalTls(
  stateDir: string,
  names: readonly string[],
  now: Date = new Date(),
): Promise<LocalTls> {
  const dir = join(stateDir, TLS_DIR);
  const issued: string[] = [];
  let ca = await loadCa(dir, now);
  if (ca === undefined) {
    ca = await createCa(dir, now);
    issued.push('local CA');
  }
  const servers: Record<string, ServerTlsFiles> = {};
  for (const name of names) {
    const files = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
    if (!(await serverIsCurrent(ca, files, now))) {
      await issueServer(ca, name, files, now);
      issued.push(`${name} certificate`);
    }
    servers[name] = files;
  }
  return { caCertFile: join(dir, CA_CERT_FILE), caCert: ca.cert.toString('pem'), servers, issued };
}
