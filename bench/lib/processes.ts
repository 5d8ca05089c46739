// Every child process and temporary directory the bench makes is registered here, so that any exit of the bench
// (normal end, a thrown error, Ctrl-C, SIGTERM) kills the children by pid and removes the directories.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** True until the process has exited. */
  alive(): boolean;
  /** A signal, then SIGKILL if it has not exited after `graceMs`. Resolves once it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
}

export interface SpawnOptions {
  readonly env?: Record<string, string>;
  /** Whether to pipe stdout/stderr (default true); 'ignore' drops them. */
  readonly output?: 'pipe' | 'ignore';
}

/** Spawn a Node 24 process (`process.execPath`) with `args`; it is killed by pid whenever the bench exits. */
export function spawnNode(args: readonly string[], options: SpawnOptions = {}): Child {
  const output = options.output ?? 'pipe';
  const child = spawn(process.execPath, [...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', output, output],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${process.execPath} ${args.join(' ')}`);
  const pid = child.pid;
  children.add(child);
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    process: child,
    pid,
    exited,
    alive,
    async stop(signal = 'SIGTERM', graceMs = 3_000) {
      if (alive()) child.kill(signal);
      const timer = setTimeout(() => { if (alive()) child.kill('SIGKILL'); }, graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

/** A fresh directory under the system temp dir, removed when the bench exits (or earlier by `removeDir`). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ek-bench-${prefix}-`));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Kill every child still running (SIGKILL, by pid) and remove every temp dir. Synchronous: safe in 'exit'. */
export function cleanUpNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** Stop every child gracefully (SIGTERM, then SIGKILL) and wait for them; used between sections. */
export async function stopAll(): Promise<void> {
  const running = [...children];
  await Promise.all(running.map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  })));
}

export function runningChildren(): number {
  return children.size;
}

/** Install the exit handlers once: normal exit, signals and uncaught errors all clean up. */
export function installCleanup(): void {
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, cleaning up\n`);
      cleanUpNow();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`bench: uncaught ${error.stack ?? String(error)}\n`);
    cleanUpNow();
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`bench: unhandled rejection ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
    cleanUpNow();
    process.exit(1);
  });
}
