import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { TresorError } from '@tresor/protocol';
import { bytesToBase64Url, utf8Encode } from '@tresor/crypto';
import type { TokenSigner } from './token-signer.js';

/**
 * Attestation tokens: EAR claims-sets (draft-fv-rats-ear) as JWTs (RFC 7519) in JWS compact form,
 * short-lived, signed by the first signer; older signers stay in the JWKS so tokens they signed keep
 * verifying until they expire (key rotation). The header names the key by `kid` and, as Trustee's
 * attestation service does, carries the public `jwk`; verification here ignores the header key and
 * uses only the service's own JWKS, so a token signed with any other key is refused.
 */
export interface TokenServiceOptions {
  /** The first signs; all are published. */
  readonly signers: readonly TokenSigner[];
  /** `iss` of every token. */
  readonly issuer: string;
  readonly lifetimeSeconds: number;
  readonly now: () => Date;
}

export interface IssuedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

const ALGORITHMS = ['ES256', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 5;
/** Tokens are a few KiB; anything far larger is not one of ours (and would not fit in a header). */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export class AttestationTokenService {
  readonly #options: TokenServiceOptions;
  readonly #jwks: JSONWebKeySet;
  readonly #keys: ReturnType<typeof createLocalJWKSet>;

  constructor(options: TokenServiceOptions) {
    if (options.signers.length === 0)
      throw new TresorError('CONFIG_INVALID', 'attestation tokens need a signing key');
    this.#options = options;
    this.#jwks = { keys: options.signers.map((s) => ({ ...s.publicJwk })) };
    this.#keys = createLocalJWKSet(this.#jwks);
  }

  get issuer(): string {
    return this.#options.issuer;
  }

  /** The token-signing keys (public), served as a JWKS (RFC 7517 §5). */
  jwks(): JSONWebKeySet {
    return { keys: this.#jwks.keys.map((k) => ({ ...k })) };
  }

  /** Signs `claims` with `iss`, `iat`, `exp` and a fresh `jti` added. */
  async issue(claims: Readonly<Record<string, unknown>>): Promise<IssuedToken> {
    const signer = this.#options.signers[0]!;
    const issuedAt = new Date(Math.floor(this.#options.now().getTime() / 1000) * 1000);
    const expiresAt = new Date(issuedAt.getTime() + this.#options.lifetimeSeconds * 1000);
    const tokenId = randomUUID();
    const { kid: _kid, use: _use, ...jwk } = signer.publicJwk;
    const header = { alg: signer.algorithm, typ: 'JWT', kid: signer.keyId, jwk };
    const payload = {
      ...claims,
      iss: this.#options.issuer,
      iat: issuedAt.getTime() / 1000,
      exp: expiresAt.getTime() / 1000,
      jti: tokenId,
    };
    const signingInput = `${bytesToBase64Url(utf8Encode(JSON.stringify(header)))}.${bytesToBase64Url(utf8Encode(JSON.stringify(payload)))}`;
    const signature = await signer.sign(utf8Encode(signingInput));
    return { token: `${signingInput}.${bytesToBase64Url(signature)}`, tokenId, issuedAt, expiresAt };
  }

  /**
   * Verifies a token this service issued: signature by one of its keys, `iss`, `exp` (and `iat` no
   * later than now), algorithm ES256 or EdDSA. Returns the payload, still to be parsed.
   *
   * @throws TresorError ATTESTATION_TOKEN_INVALID, ATTESTATION_TOKEN_EXPIRED
   */
  async verify(token: string): Promise<JWTPayload> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new TresorError(
        'ATTESTATION_TOKEN_INVALID',
        'the attestation token is empty or implausibly large',
      );
    }
    try {
      const { payload } = await jwtVerify(token, this.#keys, {
        algorithms: ALGORITHMS,
        issuer: this.#options.issuer,
        requiredClaims: ['iat', 'exp', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.#options.now(),
        maxTokenAge: this.#options.lifetimeSeconds + CLOCK_TOLERANCE_SECONDS,
      });
      return payload;
    } catch (cause) {
      if (cause instanceof errors.JWTExpired) {
        throw new TresorError(
          'ATTESTATION_TOKEN_EXPIRED',
          'the attestation token has expired; attest again',
          { cause },
        );
      }
      const code = cause instanceof errors.JOSEError ? cause.code : 'unreadable';
      throw new TresorError('ATTESTATION_TOKEN_INVALID', `the attestation token was refused (${code})`, {
        cause,
      });
    }
  }
}
