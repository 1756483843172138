import type { CliIo } from './io.js';

/** A progress display for long byte-counting work (sealing, unsealing, downloads). */
export interface Progress {
  /** Reports `bytes` of `total` done in the phase called `label`; a new label restarts rate and ETA. */
  update(label: string, bytes: number, total: number): void;
  /** Clears the line; call on success and on failure. */
  finish(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Binary units with one decimal: `256.0 MiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${String(bytes)} B` : `${value.toFixed(1)} ${UNITS[unit]!}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.ceil(seconds);
  return s < 60 ? `${String(s)}s` : `${String(Math.floor(s / 60))}m${String(s % 60).padStart(2, '0')}s`;
}

const BAR_WIDTH = 24;
/** Redraw at most this often: a terminal write per 4 MiB chunk would cost more than it shows. */
const REDRAW_MS = 100;

/** The line the bar shows, e.g. `sealing [#########.......]  38%  97.3 MiB / 256.0 MiB  1.1 GiB/s  ETA 1s`. */
export function renderProgressLine(label: string, bytes: number, total: number, elapsedMs: number): string {
  const fraction = total > 0 ? Math.min(1, bytes / total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
  const eta = rate > 0 ? (total - bytes) / rate : Number.POSITIVE_INFINITY;
  return (
    `${label.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ` +
    `${String(Math.floor(fraction * 100)).padStart(3)}%  ${formatBytes(bytes)} / ${formatBytes(total)}  ` +
    `${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`
  );
}

/**
 * A one-line progress bar on stderr when stderr is a terminal; silent otherwise, so scripts and
 * logs never see carriage returns. Time comes from `io.now()`.
 */
export function createProgress(io: CliIo): Progress {
  if (io.stderr.isTTY !== true) return { update: () => undefined, finish: () => undefined };
  let phase = '';
  let phaseStart = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(label, bytes, total) {
      const now = io.now().getTime();
      if (label !== phase) {
        phase = label;
        phaseStart = now;
        lastDraw = Number.NEGATIVE_INFINITY;
      }
      if (now - lastDraw < REDRAW_MS && bytes < total) return;
      lastDraw = now;
      drawn = true;
      io.stderr.write(`\r\x1b[2K${renderProgressLine(label, bytes, total, now - phaseStart)}`);
    },
    finish() {
      if (drawn) io.stderr.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
