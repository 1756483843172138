/**
 * How many requests each run sends: bounded counts per engine and concurrency, so that a run
 * never goes on "for a while".
 */
import { FAST_RESPONSE_TOKENS } from './configurations.js';
import type { EngineName } from './results.js';

/** Measured requests and warm-up requests per run (bounded: a run never goes on "for a while"). */
export function requestCounts(
  engine: EngineName,
  concurrency: number,
  quick: boolean,
): { requests: number; warmup: number } {
  if (engine === 'fast') {
    if (quick) return { requests: Math.max(40, concurrency * 2), warmup: Math.max(10, concurrency) };
    return { requests: Math.max(400, concurrency * 30), warmup: Math.max(100, concurrency * 2) };
  }
  // llama.cpp on 2 cores: a few tokens per second per sequence, 4 sequences at once. Above 4 in
  // flight requests queue in the engine, so more of them measure the queue, not the path.
  if (quick) return { requests: Math.max(4, Math.min(concurrency, 8)), warmup: 2 };
  return { requests: Math.max(24, Math.min(concurrency * 2, 128)), warmup: Math.min(concurrency, 8) };
}

/** Completion tokens asked for per request (the fast engine answers exactly this many). */
export function maxTokensFor(engine: EngineName): number {
  return engine === 'fast' ? FAST_RESPONSE_TOKENS : 16;
}
