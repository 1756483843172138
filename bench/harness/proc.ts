/**
 * CPU time and peak resident memory of server processes, read from /proc (proc(5)): utime and
 * stime of /proc/<pid>/stat (fields 14 and 15, in clock ticks), VmHWM ("high water mark", the
 * peak RSS) of /proc/<pid>/status. Writing 5 to /proc/<pid>/clear_refs resets VmHWM to the
 * current RSS, so each run reports its own peak rather than the process's lifetime peak.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly ppid: number;
  /** User + system CPU time in clock ticks. */
  readonly cpuTicks: number;
}

export interface ProcMemory {
  /** Peak resident set size (VmHWM) in KiB. */
  readonly peakRssKiB: number;
  /** Current resident set size (VmRSS) in KiB. */
  readonly rssKiB: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name is in parentheses and may itself contain
 * spaces and parentheses, so the fields are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) throw new SyntaxError('not a /proc/<pid>/stat line: no (comm)');
  const pid = Number(text.slice(0, open).trim());
  // Fields after the comm start at field 3 (state): ppid is field 4, utime 14, stime 15.
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  for (const [name, value] of [
    ['pid', pid],
    ['ppid', ppid],
    ['utime', utime],
    ['stime', stime],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new SyntaxError(`not a /proc/<pid>/stat line: ${name} is not a count`);
    }
  }
  return { pid, comm: text.slice(open + 1, close), ppid, cpuTicks: utime + stime };
}

function kibField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
  if (match === null) throw new SyntaxError(`no ${name} line in /proc/<pid>/status`);
  return Number(match[1]);
}

/** VmHWM and VmRSS of a /proc/<pid>/status text. Kernel threads have neither and are refused. */
export function parseProcStatus(text: string): ProcMemory {
  return { peakRssKiB: kibField(text, 'VmHWM'), rssKiB: kibField(text, 'VmRSS') };
}

let ticksPerSecond: number | undefined;

/** `getconf CLK_TCK` (100 on every Linux we run on), asked once. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    const answer = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    ticksPerSecond = Number.isSafeInteger(answer) && answer > 0 ? answer : 100;
  }
  return ticksPerSecond;
}

export function readProcStat(pid: number): ProcStat {
  return parseProcStat(readFileSync(`/proc/${String(pid)}/stat`, 'utf8'));
}

export function readProcMemory(pid: number): ProcMemory {
  return parseProcStatus(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
}

/** Resets the peak RSS of `pid` to its current RSS; false where the kernel refuses. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${String(pid)}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Every live descendant of `pid` (children, grandchildren, …), found by the ppid of every process. */
export function descendants(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: ProcStat;
    try {
      stat = readProcStat(Number(entry));
    } catch {
      continue; // exited while we looked
    }
    const list = byParent.get(stat.ppid) ?? [];
    list.push(stat.pid);
    byParent.set(stat.ppid, list);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const child of byParent.get(next) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** A server process whose usage a run reports, by role (`gateway`, `nginx worker`, …). */
export interface WatchedProcess {
  readonly role: string;
  readonly pid: number;
}

export interface ProcessUsage {
  readonly role: string;
  readonly cpuMs: number;
  readonly peakRssMiB: number;
}

/** CPU ticks of each process now, for the difference over a run. */
export function cpuSnapshot(processes: readonly WatchedProcess[]): Map<number, number> {
  const snapshot = new Map<number, number>();
  for (const p of processes) snapshot.set(p.pid, readProcStat(p.pid).cpuTicks);
  return snapshot;
}

/**
 * CPU time since `before` and peak RSS since the last reset, per role; processes sharing a role
 * (nginx workers) are summed (CPU and peak RSS alike: the sum of peaks bounds the peak of the sum).
 */
export function usageSince(
  processes: readonly WatchedProcess[],
  before: ReadonlyMap<number, number>,
): ProcessUsage[] {
  const tick = 1000 / clockTicksPerSecond();
  const byRole = new Map<string, { cpuMs: number; peakRssMiB: number }>();
  for (const p of processes) {
    const ticks = readProcStat(p.pid).cpuTicks - (before.get(p.pid) ?? 0);
    const peak = readProcMemory(p.pid).peakRssKiB / 1024;
    const row = byRole.get(p.role) ?? { cpuMs: 0, peakRssMiB: 0 };
    row.cpuMs += ticks * tick;
    row.peakRssMiB += peak;
    byRole.set(p.role, row);
  }
  return [...byRole].map(([role, u]) => ({ role, cpuMs: u.cpuMs, peakRssMiB: u.peakRssMiB }));
}
