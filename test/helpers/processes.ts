import { readFile } from 'node:fs/promises';

/**
 * True when no live process has this pid. A zombie counts as gone: it runs nothing, and whether it is reaped depends
 * on who is PID 1 on the machine running the tests, not on us.
 */
export async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  // Format: `pid (comm) S …`; comm may hold spaces and parentheses, the state follows the last `)`.
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** Pids written one per line by a test's hook script. */
export async function readPids(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => /^\d+$/.test(line)).map(Number);
}
