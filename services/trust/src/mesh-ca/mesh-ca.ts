import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TresorError } from '@tresor/protocol';
import { bytesToHex, toArrayBuffer } from '@tresor/crypto';
import type { AuditEntry, Clock } from '@tresor/storage';
import type { ReferenceValueKey } from '../reference-values/reference-value-set.js';
import type { MeasuredWorkload } from '../reference-values/match-reference-values.js';
import type { ResidencyFinding } from '../inventory/residency-check.js';
import type { AttestedWorkload } from './attested-workload.js';
import { caSigning, type CaSigner, type CaSigning } from './ca-signer.js';
import { parseCertificationRequest, thumbprintOf } from './certification-request.js';
import { meshSpiffeId } from './spiffe-id.js';

x509.cryptoProvider.set(globalThis.crypto);

/** Mesh certificates live minutes to hours: long enough for a pod's connections, short enough that no CRL is needed. */
export const MIN_CERTIFICATE_LIFETIME_SECONDS = 60;
export const MAX_CERTIFICATE_LIFETIME_SECONDS = 24 * 3600;
export const DEFAULT_CERTIFICATE_LIFETIME_SECONDS = 3600;
/** The CA certificate is re-made from the same key at every start; a year covers any uptime. */
const CA_CERTIFICATE_LIFETIME_MS = 365 * 24 * 3600 * 1000;
/** Back-dating absorbs clock skew between the trust service and the peers checking a certificate. */
const BACKDATE_MS = 60_000;

/** What the mesh CA consults: the reference values and the residency inventory (the stores). */
export interface MeshCaPolicy {
  requireReleased(workload: MeasuredWorkload, component?: string): ReferenceValueKey;
  requireResident(hardwareIds: readonly string[]): ResidencyFinding;
}

/** Where issued (and refused) certificates are recorded: the tamper-evident audit log. */
export interface MeshAuditLog {
  append(entry: AuditEntry): Promise<unknown>;
}

export interface MeshCaOptions {
  readonly signer: CaSigner;
  readonly policy: MeshCaPolicy;
  readonly audit: MeshAuditLog;
  readonly clock: Clock;
  /** The SPIFFE trust domain; default `tresor.local`. */
  readonly trustDomain: string;
  readonly certificateLifetimeSeconds: number;
  /** Random bytes for serial numbers; injectable for tests. */
  readonly randomBytes?: (length: number) => Uint8Array;
}

export interface CertificateRequest {
  /** PEM PKCS#10 request, signed with the attested key. */
  readonly csr: string;
  /** The component the caller wants to be named as; it must be the one its measurements are released as. */
  readonly component?: string;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** The CA certificate peers trust (the issuer of `certificatePem`). */
  readonly caCertificatePem: string;
  readonly spiffeId: string;
  /** Lowercase hex. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The release the workload was recognised as. */
  readonly release: ReferenceValueKey;
}

/**
 * The mesh CA: short-lived X.509 certificates for gateway↔serving mutual TLS, issued only to
 * attested workloads, for the very key their evidence bound, naming them by what their measurements
 * say they are (`spiffe://<domain>/<component>/<tenant>`), and only on hardware in the residency
 * inventory. The CA key stays in the keystore; every certificate is in the audit log before it is
 * handed out.
 */
export class MeshCa {
  readonly #options: MeshCaOptions;
  readonly #signing: CaSigning;
  readonly #caCertificate: x509.X509Certificate;
  readonly caCertificatePem: string;

  private constructor(options: MeshCaOptions, signing: CaSigning, caCertificate: x509.X509Certificate) {
    this.#options = options;
    this.#signing = signing;
    this.#caCertificate = caCertificate;
    this.caCertificatePem = caCertificate.toString('pem');
  }

  /** Makes the CA certificate (self-signed by the keystore key). */
  static async open(options: MeshCaOptions): Promise<MeshCa> {
    const lifetime = options.certificateLifetimeSeconds;
    if (
      !Number.isSafeInteger(lifetime) ||
      lifetime < MIN_CERTIFICATE_LIFETIME_SECONDS ||
      lifetime > MAX_CERTIFICATE_LIFETIME_SECONDS
    ) {
      throw new TresorError(
        'CONFIG_INVALID',
        `meshCa.certificateLifetimeSeconds must be ${MIN_CERTIFICATE_LIFETIME_SECONDS} to ${MAX_CERTIFICATE_LIFETIME_SECONDS}`,
      );
    }
    const signing = caSigning(options.signer);
    const now = options.clock.now().getTime();
    const publicKey = new x509.PublicKey(toArrayBuffer(signing.subjectPublicKeyInfo));
    const name = `CN=Tresor mesh CA ${options.trustDomain},O=Tresor`;
    const caCertificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(options),
        subject: name,
        issuer: name,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + CA_CERTIFICATE_LIFETIME_MS),
        publicKey,
        signingKey: signing.signingKey,
        signingAlgorithm: signing.signingAlgorithm,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(publicKey),
        ],
      },
      signing.crypto,
    );
    return new MeshCa(options, signing, caCertificate);
  }

  /**
   * Issues a certificate to an attested workload. Checks, in order: the request is a valid CSR
   * (MESH_CSR_INVALID), its key is the attested key (MESH_KEY_NOT_ATTESTED), the hardware is in the
   * inventory (RESIDENCY_VIOLATION), the measurements are a released component, the requested one if
   * named (MEASUREMENT_NOT_ALLOWED). Refusals after the CSR parsed are audited as `denied`.
   */
  async issue(request: CertificateRequest, workload: AttestedWorkload): Promise<IssuedCertificate> {
    const csr = await parseCertificationRequest(request.csr);
    const attestedKey = await thumbprintOf(workload.teePublicKey);
    let release: ReferenceValueKey;
    try {
      if (csr.thumbprint !== attestedKey) {
        throw new TresorError(
          'MESH_KEY_NOT_ATTESTED',
          'the CSR is for another key than the one the attestation bound',
        );
      }
      this.#options.policy.requireResident(workload.hardwareIds);
      release = this.#options.policy.requireReleased(workload, request.component);
    } catch (err) {
      await this.#audit(workload, attestedKey, 'denied', '', {
        reason: err instanceof TresorError ? err.code : 'INTERNAL_ERROR',
        ...(request.component === undefined ? {} : { component: request.component }),
      });
      throw err;
    }
    const spiffeId = meshSpiffeId({
      trustDomain: this.#options.trustDomain,
      component: release.component,
      tenant: workload.tenant,
    });
    const now = this.#options.clock.now().getTime();
    const notBefore = new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
    const notAfter = new Date(
      Math.floor(now / 1000) * 1000 + this.#options.certificateLifetimeSeconds * 1000,
    );
    const publicKey = new x509.PublicKey(toArrayBuffer(csr.subjectPublicKeyInfo));
    const certificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(this.#options),
        subject: `CN=${release.component}`,
        issuer: this.#caCertificate.subject,
        notBefore,
        notAfter,
        publicKey,
        signingKey: this.#signing.signingKey,
        signingAlgorithm: this.#signing.signingAlgorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
          await x509.SubjectKeyIdentifierExtension.create(publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(this.#caCertificate),
        ],
      },
      this.#signing.crypto,
    );
    const issued: IssuedCertificate = {
      certificatePem: certificate.toString('pem'),
      caCertificatePem: this.caCertificatePem,
      spiffeId,
      serialNumber: certificate.serialNumber.toLowerCase(),
      notBefore,
      notAfter,
      release,
    };
    // Logged before it is handed out: a certificate the log does not hold is never returned.
    await this.#audit(workload, attestedKey, 'success', spiffeId, {
      serialNumber: issued.serialNumber,
      notAfter: notAfter.toISOString(),
      component: release.component,
      release: release.release,
    });
    return issued;
  }

  async #audit(
    workload: AttestedWorkload,
    keyThumbprint: string,
    outcome: 'success' | 'denied',
    target: string,
    details: Record<string, string>,
  ): Promise<void> {
    await this.#options.audit.append({
      actor: { type: 'workload', id: `urn:tresor:tee-key:${keyThumbprint}` },
      action: 'mesh.certificate.issue',
      target,
      outcome,
      details: { ...details, tee: workload.tee, hardwareIds: [...workload.hardwareIds] },
    });
  }
}

/** 128 random bits, top bit clear so the DER INTEGER is positive (RFC 5280 §4.1.2.2: at most 20 octets). */
function serialNumber(options: Pick<MeshCaOptions, 'randomBytes'>): string {
  const bytes = (options.randomBytes ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n))))(16);
  if (bytes.length !== 16)
    throw new TresorError('INTERNAL_ERROR', 'the random source returned the wrong number of bytes');
  const serial = Uint8Array.from(bytes);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return bytesToHex(serial);
}
