/**
 * The nginx baseline: Debian's nginx package (`apt-get install -y nginx-light` or `nginx`) started
 * with a private prefix and configuration on a free port, TLS 1.3 only, with a certificate made
 * for the run by `openssl`. Never touches the system service or /etc/nginx.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NGINX_BINARY = '/usr/sbin/nginx';
const TEMPLATE = fileURLToPath(new URL('./nginx.conf.template', import.meta.url));

export interface NginxConfigInput {
  readonly prefix: string;
  readonly port: number;
  readonly upstreamPort: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly workers: number;
}

/**
 * Fills the template's `${NAME}` placeholders. Throws when a value is missing or unsafe (a path
 * with whitespace, `;` or braces would change the configuration's meaning) or a placeholder stays.
 */
export function renderNginxConfig(template: string, input: NginxConfigInput): string {
  const values: Record<string, string> = {
    PREFIX: input.prefix,
    PORT: String(input.port),
    UPSTREAM_PORT: String(input.upstreamPort),
    CERT_FILE: input.certFile,
    KEY_FILE: input.keyFile,
    WORKERS: String(input.workers),
  };
  for (const port of [input.port, input.upstreamPort]) {
    if (!Number.isSafeInteger(port) || port < 1 || port > 65535)
      throw new RangeError(`bad port ${String(port)}`);
  }
  if (!Number.isSafeInteger(input.workers) || input.workers < 1 || input.workers > 64) {
    throw new RangeError(`bad worker count ${String(input.workers)}`);
  }
  for (const [name, value] of Object.entries(values)) {
    if (!/^[A-Za-z0-9/._-]+$/.test(value))
      throw new RangeError(`${name} is not a safe nginx value: ${value}`);
  }
  const rendered = template.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new RangeError(`unknown placeholder ${whole}`);
    return value;
  });
  return rendered;
}

export function nginxInstalled(): boolean {
  return existsSync(NGINX_BINARY);
}

/** A self-signed P-256 certificate for 127.0.0.1 (one day), written as cert.pem / key.pem. */
export function makeLoopbackCertificate(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}

/** Writes the configuration and the temp folders nginx needs under `input.prefix`; returns the config path. */
export async function writeNginxPrefix(input: NginxConfigInput): Promise<string> {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    await mkdir(join(input.prefix, sub), { recursive: true });
  }
  const config = join(input.prefix, 'nginx.conf');
  await writeFile(config, renderNginxConfig(readFileSync(TEMPLATE, 'utf8'), input));
  return config;
}

/** The arguments that start nginx in the foreground on the private prefix and configuration. */
export function nginxArgs(prefix: string, config: string): string[] {
  // -e: the error log before the configuration is read (otherwise /var/log/nginx/error.log).
  return ['-p', prefix, '-c', config, '-e', join(prefix, 'error.log')];
}
