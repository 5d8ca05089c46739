// What a process costs, read from /proc (Linux): resident memory and CPU time.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/PID/stat (100 almost everywhere). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** VmRSS of /proc/PID/status, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** utime + stime of /proc/PID/stat (every thread, live or gone), in seconds; resolution 1/USER_HZ. */
export function cpuSecondsFromStat(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line are utime and stime: indices 11 and 12 after the name.
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
}

/** Time on CPU of the live threads, summed from /proc/PID/task/TID/schedstat, in seconds; nanosecond resolution. */
export function cpuSecondsFromSchedstat(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e9;
}

export interface CpuSample {
  readonly atMs: number;
  readonly statSec: number;
  readonly schedSec: number;
}

export function sampleCpu(pid: number): CpuSample {
  return { atMs: performance.now(), statSec: cpuSecondsFromStat(pid), schedSec: cpuSecondsFromSchedstat(pid) };
}

export function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}
