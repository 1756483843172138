import { parseModelKeyFile } from '@tresor/crypto';
import { isTresorError, TresorError } from '@tresor/protocol';
import type { KbsClient } from '@tresor/trust';

/**
 * Fetches one model key through the KBS protocol (RCAR; the first call attests, later ones reuse
 * the attested session). Any refusal — evidence refused, measurement not released, residency,
 * policy deny, trust service unreachable — becomes MODEL_KEY_NOT_RELEASED carrying the trust
 * service's own code in `details.refusal`, so /readyz says exactly why.
 *
 * The answer is the raw 32-byte key (or 64 hex digits); the caller zeroes it after importing.
 */
export async function releaseModelKey(client: KbsClient, model: string, keyUri: string): Promise<Uint8Array> {
  let resource: Uint8Array;
  try {
    resource = await client.getResource(keyUri);
  } catch (cause) {
    const refusal = isTresorError(cause) ? cause.code : 'INTERNAL_ERROR';
    throw new TresorError(
      'MODEL_KEY_NOT_RELEASED',
      `the trust service did not release the key of model ${model} (${keyUri}): ${refusal}`,
      { cause, details: { model, key: keyUri, refusal } },
    );
  }
  try {
    return parseModelKeyFile(resource);
  } catch (cause) {
    throw new TresorError(
      'MODEL_KEY_NOT_RELEASED',
      `the resource ${keyUri} released for model ${model} is not a 256-bit model key`,
      { cause, details: { model, key: keyUri, refusal: 'SEALED_MODEL_KEY_INVALID' } },
    );
  } finally {
    resource.fill(0);
  }
}

/** The claims of an EAR token this replica received (read, not verified: it came from the trust service over TLS). */
export function tokenRelease(token: string): {
  readonly component?: string;
  readonly release?: string;
  readonly tee?: string;
} {
  try {
    const payload = token.split('.')[1] ?? '';
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      submods?: { cpu0?: Record<string, unknown> };
    };
    const cpu = claims.submods?.cpu0 ?? {};
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const component = str(cpu['tresor.component']);
    const release = str(cpu['tresor.release']);
    const tee = str(cpu['tresor.tee']);
    return {
      ...(component === undefined ? {} : { component }),
      ...(release === undefined ? {} : { release }),
      ...(tee === undefined ? {} : { tee }),
    };
  } catch {
    return {};
  }
}
