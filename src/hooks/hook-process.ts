import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LineSplitter, type OutputLine } from './output-lines.ts';
import { ProcessGroup } from './process-group.ts';

/** After the group is gone, how long its output pipes may take to close (an escaped process may hold them). */
const DRAIN_MS = 1_000;

export type HookStream = 'stdout' | 'stderr';

export interface HookSpec {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** From start to SIGTERM of the whole group. */
  readonly deadlineMs: number;
  /** From SIGTERM to SIGKILL. */
  readonly graceMs: number;
  readonly maxLineBytes: number;
  readonly onLine: (stream: HookStream, line: OutputLine) => void;
}

export type HookResult =
  | { readonly kind: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly timedOut: boolean }
  | { readonly kind: 'not-started'; readonly error: Error };

export interface RunningHook {
  /** Settles once the hook has exited and its output has been read. */
  readonly result: Promise<HookResult>;
  /**
   * Settles once nothing of its process group is left (or SIGKILL has been sent to what is): after `result`, as
   * what the hook left behind is stopped in the background.
   */
  readonly gone: Promise<void>;
  /** Stop the whole group (SIGTERM, SIGKILL after `graceMs`). */
  stop(graceMs: number): void;
  /** SIGKILL the whole group synchronously (process 'exit'). */
  killNow(): void;
}

/**
 * Run one hook in a process group of its own (`detached`), its output piped (never inherited) and split into
 * bounded lines. The group, not just the hook, is what the deadline kills, and when the hook exits whatever it
 * left running in its group is stopped too: nothing it forked outlives the run by more than the kill grace.
 * (A process that leaves the group with setsid escapes this; only a cgroup could hold it.)
 */
export function startHook(spec: HookSpec): RunningHook {
  const [command = '', ...args] = spec.argv;
  const child = spawn(command, args, { env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const group = child.pid === undefined ? undefined : new ProcessGroup(child.pid);
  const output = readLines(child.stdout, child.stderr, spec);
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    void group?.stop(spec.graceMs);
  }, spec.deadlineMs);
  // While the hook lives its child handle keeps the event loop up; the deadline alone must not.
  deadline.unref();

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
    // `on`, not `once`: a second 'error' with no listener would throw.
    child.on('error', resolve);
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
  // Once the hook has exited, whatever it left in its group is stopped; the run need not wait for that (a zombie
  // nobody reaps would hold it for the whole grace period), but close() and the exit net do.
  const gone = exited.then((exit) => (exit instanceof Error || group === undefined ? undefined : group.stop(spec.graceMs)));
  const result = exited.then(async (exit): Promise<HookResult> => {
    clearTimeout(deadline);
    if (exit instanceof Error) {
      output.abandon();
      return { kind: 'not-started', error: exit };
    }
    await output.drained(DRAIN_MS);
    return { kind: 'exited', code: exit.code, signal: exit.signal, timedOut };
  });
  return {
    result,
    gone,
    stop: (graceMs) => { void group?.stop(graceMs); },
    killNow: () => { group?.killNow(); },
  };
}

interface LineReader {
  /** Resolves once both pipes have ended and their last lines are out, or after `ms`, then lets go of them. */
  drained(ms: number): Promise<void>;
  abandon(): void;
}

function readLines(stdout: Readable, stderr: Readable, spec: HookSpec): LineReader {
  const streams = [['stdout', stdout], ['stderr', stderr]] as const;
  const ended = streams.map(([name, stream]) => new Promise<void>((resolve) => {
    const splitter = new LineSplitter(spec.maxLineBytes);
    stream.on('data', (chunk: Buffer) => { for (const line of splitter.push(chunk)) spec.onLine(name, line); });
    stream.once('end', () => {
      for (const line of splitter.end()) spec.onLine(name, line);
      resolve();
    });
    stream.once('close', resolve);
    stream.on('error', () => { resolve(); });
  }));
  const abandon = (): void => { for (const [, stream] of streams) stream.destroy(); };
  return {
    async drained(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
      await Promise.race([Promise.all(ended), late]);
      clearTimeout(timer);
      abandon();
    },
    abandon,
  };
}
