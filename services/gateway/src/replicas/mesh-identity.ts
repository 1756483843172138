import type { Logger } from 'pino';
import { isTresorError } from '@tresor/protocol';
import {
  MESH_KEY_ALGORITHM,
  requestMeshCertificate,
  type KbsAttester,
  type KbsTransport,
  type MeshCertificate,
} from '@tresor/trust';
import type { MeshTls } from './mesh-client.js';

/** Renew when this much of a certificate's lifetime is left (as serving does). */
const RENEW_AT_REMAINING = 1 / 3;
const RETRY_MS = 60_000;

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export interface TrustMeshIdentityOptions {
  readonly transport: KbsTransport;
  readonly attester: KbsAttester;
  /** PEM CA certificates to trust for replicas; the mesh CA's own certificate when undefined. */
  readonly ca?: string;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Called with every renewed identity (the replica pool switches its connections to it). */
  readonly onRenewed: (tls: MeshTls) => void;
}

/**
 * The gateway's mTLS client identity from the trust service's mesh CA: a P-256 key generated in
 * enclave memory (never written anywhere), attested to the trust service with the KBS protocol
 * (the attestation token names exactly that key), certified as `spiffe://<domain>/gateway/_`. A
 * fresh key is certified when a third of the lifetime is left; a failed renewal is retried every
 * minute while the current certificate lasts.
 */
export class TrustMeshIdentity {
  #tls: MeshTls;
  #certificate: MeshCertificate;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #options: TrustMeshIdentityOptions;

  private constructor(options: TrustMeshIdentityOptions, tls: MeshTls, certificate: MeshCertificate) {
    this.#options = options;
    this.#tls = tls;
    this.#certificate = certificate;
  }

  /** Attests and obtains the first certificate; refuses (with the trust service's code) when it cannot. */
  static async obtain(options: TrustMeshIdentityOptions): Promise<TrustMeshIdentity> {
    const { tls, certificate } = await TrustMeshIdentity.#issue(options);
    const identity = new TrustMeshIdentity(options, tls, certificate);
    identity.#schedule();
    return identity;
  }

  static async #issue(
    options: TrustMeshIdentityOptions,
  ): Promise<{ tls: MeshTls; certificate: MeshCertificate }> {
    const keys = await crypto.subtle.generateKey(MESH_KEY_ALGORITHM, true, ['sign', 'verify']);
    const certificate = await requestMeshCertificate({
      transport: options.transport,
      attester: options.attester,
      tlsKeys: keys,
      component: 'gateway',
    });
    const key = pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey));
    return {
      tls: { ca: options.ca ?? certificate.caCertificatePem, cert: certificate.certificatePem, key },
      certificate,
    };
  }

  get tls(): MeshTls {
    return this.#tls;
  }

  get spiffeId(): string {
    return this.#certificate.spiffeId;
  }

  get notAfter(): Date {
    return this.#certificate.notAfter;
  }

  /** Certifies a fresh key now and hands it to `onRenewed`. */
  async renew(): Promise<void> {
    const { tls, certificate } = await TrustMeshIdentity.#issue(this.#options);
    if (this.#closed) return;
    this.#tls = tls;
    this.#certificate = certificate;
    this.#options.onRenewed(tls);
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  #schedule(delayMs?: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const left = this.#certificate.notAfter.getTime() - this.#options.now().getTime();
    const wait = delayMs ?? Math.max(1_000, left * (1 - RENEW_AT_REMAINING));
    this.#timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        this.#options.logger.warn(
          { code: isTresorError(err) ? err.code : 'INTERNAL_ERROR' },
          'mesh certificate renewal failed; retrying',
        );
        this.#schedule(RETRY_MS);
      });
    }, wait);
    this.#timer.unref();
  }
}
