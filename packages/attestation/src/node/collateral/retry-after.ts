/**
 * Retry-After (RFC 9110 §10.2.3): `delay-seconds` (1*DIGIT) or an HTTP-date (§5.6.7, IMF-fixdate;
 * the obsolete RFC 850 and asctime forms are also accepted, as §5.6.7 asks recipients to).
 * Returns the wait in milliseconds from `now` (0 for a date already past), or undefined when the
 * header is absent or unparseable, so the caller falls back to its own backoff.
 */

const DELAY_SECONDS = /^\d+$/;
const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE =
  /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (DELAY_SECONDS.test(value)) {
    // Long digit strings parse to huge or infinite numbers: still "too long to wait", never NaN.
    return Number(value) * 1000;
  }
  if (!IMF_FIXDATE.test(value) && !RFC850_DATE.test(value) && !ASCTIME_DATE.test(value)) return undefined;
  // asctime carries no zone; RFC 9110 §5.6.7 says it is UTC.
  const at = Date.parse(ASCTIME_DATE.test(value) ? `${value} GMT` : value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}
