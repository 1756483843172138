import { expect, it } from 'vitest';
import { runCanaries } from './canaries/canary-run.js';

/**
 * Plaintext canaries without a packet capture (the integration suite's
 * test/integration/security-canaries.test.ts adds a tcpdump capture of loopback).
 */
it('no marker, API key or model key in any log, file, temp file, core dump or metrics output', async () => {
  const report = await runCanaries({ capture: false });
  console.log(report.summary);
  expect(report.controlHits).toBeGreaterThan(0);
  expect(report.searched.files).toBeGreaterThan(0);
  expect(report.searched.logLines).toBeGreaterThan(0);
  expect(report.hits).toEqual([]);
});
