const converted = new Map<string, string>();

/**
 * Rewrites the `?` placeholders the repositories write into PostgreSQL's `$1, $2, …`. Quoted
 * strings and identifiers are copied untouched, so a `?` inside a literal stays a character.
 */
export function postgresPlaceholders(sql: string): string {
  const cached = converted.get(sql);
  if (cached !== undefined) return cached;
  let out = '';
  let index = 0;
  let quote: string | null = null;
  for (const char of sql) {
    if (quote !== null) {
      if (char === quote) quote = null;
      out += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      out += char;
    } else if (char === '?') {
      index += 1;
      out += `$${index}`;
    } else {
      out += char;
    }
  }
  converted.set(sql, out);
  return out;
}
