import { MessageChannel } from 'node:worker_threads';

/**
 * The size of the allocation that moves glibc's dynamic thresholds: above the default mmap
 * threshold (128 KiB) and at most DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit), chunk header and
 * page rounding included.
 */
export const RETENTION_PROBE_BYTES = 31 * 1024 * 1024;

/** Below this the churn is a scavenge or two: not worth a process-wide change. */
export const RETENTION_MIN_BYTES = 64 * 1024 * 1024;

let retained: Promise<void> | undefined;

/** {@link retainFreedHeap} for a pass over `plaintextLength` bytes: only when that is large. */
export function retainFreedHeapFor(plaintextLength: number): Promise<void> {
  return plaintextLength >= RETENTION_MIN_BYTES ? retainFreedHeap() : Promise.resolve();
}

/**
 * Makes glibc keep freed heap memory for reuse instead of returning it to the kernel, so the
 * model-file passes stop page-faulting fresh memory for every byte of AES-GCM output. Once per
 * process; resolves when done.
 *
 * Why: node:crypto's `update()` returns each piece of output in a new buffer (two allocations per
 * call in Node 20, one of them zero-filled and copied into). Those buffers die young but are freed
 * only when V8 scavenges, about every 32 MiB of them ("external memory pressure"). By default glibc
 * trims the top of its heap once more than 128 KiB is free there, so every scavenge hands those
 * 32 MiB back to the kernel and the next pieces fault them in again: one page fault per 4 KiB of
 * plaintext, which on a VM cost 2 to 5 times the AES-GCM itself (1 GiB: 60 000–220 000 faults,
 * 1.4–3.5 s of CPU time instead of about 0.6 s).
 *
 * How: glibc raises its mmap threshold to the size of an mmap-ed chunk that is freed, and its
 * trim threshold to twice that (malloc.c, "dynamic mmap threshold"; the same happens in any
 * process that frees a large buffer). A 31 MiB ArrayBuffer that is never touched costs no page
 * faults; it is freed at once, without waiting for a garbage collection, by sending it through a
 * MessageChannel that is closed before anybody receives it. Afterwards up to 62 MiB of freed heap
 * stay mapped for reuse and allocations under 31 MiB come from the heap. Elsewhere (musl, other
 * allocators, thresholds fixed by GLIBC_TUNABLES or MALLOPT) this is a no-op that costs an
 * untouched allocation.
 */
export function retainFreedHeap(): Promise<void> {
  retained ??= new Promise<void>((resolve) => {
    const probe = new ArrayBuffer(RETENTION_PROBE_BYTES);
    const { port1, port2 } = new MessageChannel();
    // 'close' comes after the queued message and its memory are destroyed.
    port2.once('close', () => {
      resolve();
    });
    port1.postMessage(probe, [probe]);
    port1.close();
    port2.close();
  });
  return retained;
}
