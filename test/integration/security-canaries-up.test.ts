import { expect, it } from 'vitest';
import { runUpCanaries } from '../security/canaries/canary-up.js';

/**
 * Plaintext canaries against `tresor up`'s real child processes (trust, serving, gateway), with the
 * SDK and with `tresor proxy` + the openai client, and a tcpdump capture of loopback (tcpdump from
 * Debian, installed by scripts/test-integration.sh; capturing needs root or CAP_NET_RAW).
 */
it('no marker, API key or model key in up state, child logs, temp files, metrics or loopback traffic', async () => {
  const report = await runUpCanaries({ capture: true });
  console.log(report.summary);
  expect(report.controlHits).toBeGreaterThan(0);
  expect(report.searched.packets).toBeGreaterThan(100);
  expect(report.searched.files).toBeGreaterThan(0);
  expect(report.hits).toEqual([]);
}, 600_000);
