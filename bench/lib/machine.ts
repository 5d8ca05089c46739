// The machine a run was made on, for the results and the README section.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release } from 'node:os';

export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memory: string;
  readonly node: string;
  readonly kernel: string;
  /** 1, 5 and 15 minute load averages when the run started: how noisy the shared machine was. */
  readonly loadAverage: readonly number[];
}

function run(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): Machine {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  // `free -h`, its "Mem:" line: total, used, free, shared, buff/cache, available.
  const memLine = run('free', ['-h']).split('\n').find((line) => line.startsWith('Mem:')) ?? '';
  const [total = '?', , , , , available = '?'] = memLine.split(/\s+/).slice(1);
  return {
    nproc: Number(run('nproc', [])) || availableParallelism(),
    cpuModel: model,
    memory: `${total} total, ${available} available (free -h)`,
    node: process.version,
    kernel: release(),
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}
