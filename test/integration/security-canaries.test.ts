import { expect, it } from 'vitest';
import { runCanaries } from '../security/canaries/canary-run.js';

/**
 * Plaintext canaries with a tcpdump capture of all loopback traffic (tcpdump from Debian, installed
 * by scripts/test-integration.sh; capturing needs root or CAP_NET_RAW).
 */
it('no marker, API key or model key anywhere, including a capture of every loopback packet', async () => {
  const report = await runCanaries({ capture: true });
  console.log(report.summary);
  expect(report.controlHits).toBeGreaterThan(0);
  expect(report.searched.packets).toBeGreaterThan(100);
  expect(report.hits).toEqual([]);
});
