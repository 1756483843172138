import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseInitDataToml } from './initdata-toml.js';

function code(text: string): string {
  try {
    parseInitDataToml(text);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

// The shape CoCo writes (kbs/docs/initdata.md): quoted file-name keys with multi-line literal strings.
const COCO = `algorithm = "sha384"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs]
[token_configs.kbs]
url = "https://trust.example:8443"
'''

"policy.rego" = '''
package agent_policy
default AllowRequestsFailingPolicy := true
'''
tresor-tenant = "acme" # the tenant
`;

describe('initdata TOML', () => {
  it('reads the initdata document of examples/03-attestation.json', () => {
    expect(parseInitDataToml('algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\n')).toEqual({
      algorithm: 'sha384',
      version: '0.1.0',
      data: {},
    });
  });

  it('reads CoCo-style documents: quoted keys, multi-line literal strings, comments', () => {
    const doc = parseInitDataToml(COCO);
    expect(doc.algorithm).toBe('sha384');
    expect(Object.keys(doc.data)).toEqual(['aa.toml', 'policy.rego', 'tresor-tenant']);
    expect(doc.data['aa.toml']).toBe(
      '[token_configs]\n[token_configs.kbs]\nurl = "https://trust.example:8443"\n',
    );
    expect(doc.data['tresor-tenant']).toBe('acme');
  });

  it('reads every TOML string form with its escapes (TOML 1.0 §String)', () => {
    const doc = parseInitDataToml(
      [
        "version = '0.1.0'",
        'algorithm = "sha256"',
        '[data]',
        'a = "tab\\there \\"q\\" \\\\ \\u00e9 \\U0001F600"',
        "b = 'C:\\path\\no-escapes'",
        'c = """',
        'line one \\',
        '    continued',
        'end""""',
        "d = '''two '' quotes''''",
        '"e f" = ""',
      ].join('\r\n'),
    );
    expect(doc.data).toEqual({
      a: 'tab\there "q" \\ é 😀',
      b: 'C:\\path\\no-escapes',
      c: 'line one continued\r\nend"',
      d: "two '' quotes'",
      'e f': '',
    });
  });

  it.each([
    ['a number', 'version = "0.1.0"\nalgorithm = "sha384"\n[data]\nx = 1\n'],
    ['an array', 'version = "0.1.0"\nalgorithm = "sha384"\n[data]\nx = ["a"]\n'],
    ['another table', 'version = "0.1.0"\nalgorithm = "sha384"\n[other]\n'],
    ['an array of tables', 'version = "0.1.0"\nalgorithm = "sha384"\n[[data]]\n'],
    ['a dotted key', 'version = "0.1.0"\nalgorithm = "sha384"\n[data]\na.b = "x"\n'],
    ['a repeated key', 'version = "0.1.0"\nversion = "0.2.0"\nalgorithm = "sha384"\n'],
    ['[data] twice', 'version = "0.1.0"\nalgorithm = "sha384"\n[data]\n[data]\n'],
    ['an unknown top-level key', 'version = "0.1.0"\nalgorithm = "sha384"\nextra = "x"\n'],
    ['no algorithm', 'version = "0.1.0"\n'],
    ['an unterminated string', 'version = "0.1.0\nalgorithm = "sha384"\n'],
    ['a bad escape', 'version = "\\x41"\nalgorithm = "sha384"\n'],
    ['a surrogate escape', 'version = "\\uD800"\nalgorithm = "sha384"\n'],
    ['text after a value', 'version = "0.1.0" "x"\nalgorithm = "sha384"\n'],
    ['a control character', 'version = "a\u0001"\nalgorithm = "sha384"\n'],
  ])('refuses %s (INIT_DATA_MALFORMED)', (_what, text) => {
    expect(code(text)).toBe('INIT_DATA_MALFORMED');
  });

  it('reads back any [data] strings written as basic strings (property)', () => {
    const key = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/);
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.string({ unit: 'grapheme', maxLength: 40 }), { maxKeys: 8 }),
        (data) => {
          const lines = Object.entries(data).map(
            ([k, v]) => `${k} = ${JSON.stringify(v).replace(/\u007f/g, '\\u007f')}`,
          );
          const text = `version = "0.1.0"\nalgorithm = "sha512"\n[data]\n${lines.join('\n')}\n`;
          expect(parseInitDataToml(text).data).toEqual(data);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but INIT_DATA_MALFORMED for arbitrary text (property)', () => {
    const pieces = fc.constantFrom(
      'version',
      'algorithm',
      ' = ',
      '"',
      "'",
      "'''",
      '"""',
      '[data]',
      '\n',
      '\\',
      '#',
      'x',
      '.',
      '[',
      ']',
      '\r\n',
      '\\u00',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(pieces, { maxLength: 30 }).map((p) => p.join('')),
        ),
        (text) => ['accepted', 'INIT_DATA_MALFORMED'].includes(code(text)),
      ),
      { numRuns: 1000 },
    );
  });
});
