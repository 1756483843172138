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
export async function releaseModelKey(
  client: Pick<KbsClient, 'getResource'>,
  model: string,
  keyUri: string,
): Promise<Uint8Array> {
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

/**
 * Refusals that say the trust service is not there (yet) rather than that it refuses: worth asking
 * again. A deliberate refusal (policy, measurement, residency, evidence) is final at once.
 */
const TRANSIENT_REFUSALS: ReadonlySet<string> = new Set([
  'TRUST_SERVICE_UNREACHABLE',
  'SERVICE_NOT_READY',
  'STORAGE_UNAVAILABLE',
  // The trust service's HSM is down or reconnecting (it answers 503); the key comes once it is back.
  'KEYSTORE_UNAVAILABLE',
]);

export interface ReleaseRetryOptions {
  /** Aborted when the replica closes: the wait ends at once and the start-up stops. */
  readonly signal: AbortSignal;
  /** Attempts in all, the first included (default 12: about 5 minutes with the default delays). */
  readonly attempts?: number;
  /** Delay before the second attempt, doubled each time up to `maxDelayMs` (defaults 1 s, 30 s). */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Told of each transient refusal before the wait, so /readyz and the log can say why. */
  readonly onRetry?: (error: TresorError, delayMs: number) => void;
}

/**
 * {@link releaseModelKey}, asked again with a bounded exponential backoff while the trust service is
 * unreachable or not ready (a trust restart must not leave a replica not-ready for good). Any other
 * refusal, or the last attempt's, is thrown as it is.
 */
export async function releaseModelKeyRetrying(
  client: Pick<KbsClient, 'getResource'>,
  model: string,
  keyUri: string,
  options: ReleaseRetryOptions,
): Promise<Uint8Array> {
  const attempts = options.attempts ?? 12;
  let delay = options.initialDelayMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await releaseModelKey(client, model, keyUri);
    } catch (err) {
      const refusal = isTresorError(err) ? err.details?.refusal : undefined;
      if (!isTresorError(err) || typeof refusal !== 'string' || !TRANSIENT_REFUSALS.has(refusal)) throw err;
      if (attempt >= attempts || options.signal.aborted) throw err;
      options.onRetry?.(err, delay);
      await abortableDelay(delay, options.signal);
      if (isAborted(options.signal)) throw err;
      delay = Math.min(delay * 2, options.maxDelayMs ?? 30_000);
    }
  }
}

/** Read through a call: TypeScript narrows `signal.aborted` across an await as if it could not change. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveDelay) => {
    if (signal.aborted) {
      resolveDelay();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolveDelay();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
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
