import type { Logger } from 'pino';
import { startHook, type HookStream, type RunningHook } from './hook-process.ts';
import type { OutputLine } from './output-lines.ts';

/** A hook may not run longer than this: a stuck hook must not block every later run. */
export const HOOK_DEADLINE_MS = 60_000;
/** SIGTERM to SIGKILL, at the deadline and when a finished hook left processes behind. */
export const HOOK_KILL_GRACE_MS = 5_000;
/** SIGTERM to SIGKILL at daemon shutdown, which must end within 2 s. */
export const HOOK_SHUTDOWN_GRACE_MS = 500;
/** Bounds on what a chatty hook can put in the log: bytes of one line, lines of one run. */
export const HOOK_MAX_LINE_BYTES = 2_048;
export const HOOK_MAX_LINES_PER_RUN = 100;

export interface HookRunnerOptions {
  readonly argv: readonly string[];
  readonly jwtFile: string;
  readonly log: Logger;
  readonly deadlineMs?: number;
  readonly graceMs?: number;
  readonly maxLineBytes?: number;
  readonly maxLinesPerRun?: number;
  /** What the hook's environment is built from; the daemon's own by default. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface HookRunner {
  /** After a new JWT is written. Runs never overlap: a call during a run queues exactly one more run. */
  run(): void;
  /** Resolves when no run is in progress or queued. */
  idle(): Promise<void>;
  /** No more runs; every hook process group left is stopped (SIGKILL after `graceMs`). Resolves once they are gone. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Runs `--on-refresh` after each new JWT, contained (see hook-process.ts): its own process group, killed whole at
 * the deadline, at daemon shutdown (close(), and a synchronous SIGKILL on process 'exit' as the last net), and
 * its output logged line by line (stdout at info, stderr at warn), bounded, through the logger's redaction. Its
 * environment has EK_JWT_FILE and never EK_API_TOKEN. Its failure is logged, never fatal.
 */
export function createHookRunner(options: HookRunnerOptions): HookRunner {
  const { argv, jwtFile, log } = options;
  const command = argv[0] ?? '';
  let current: RunningHook | undefined;
  let again = false;
  let closed = false;
  let waiters: (() => void)[] = [];
  /** Every hook whose process group may still have members: the current one and leftovers being stopped. */
  const groups = new Set<RunningHook>();
  const killOnExit = (): void => { for (const hook of groups) hook.killNow(); };
  const track = (hook: RunningHook): void => {
    if (groups.size === 0) process.on('exit', killOnExit);
    groups.add(hook);
    void hook.gone.then(() => {
      groups.delete(hook);
      if (groups.size === 0) process.off('exit', killOnExit);
    });
  };

  const start = (): void => {
    const output = boundedOutput(log, options.maxLinesPerRun ?? HOOK_MAX_LINES_PER_RUN);
    const hook = startHook({
      argv,
      env: hookEnv(options.env ?? process.env, jwtFile),
      deadlineMs: options.deadlineMs ?? HOOK_DEADLINE_MS,
      graceMs: options.graceMs ?? HOOK_KILL_GRACE_MS,
      maxLineBytes: options.maxLineBytes ?? HOOK_MAX_LINE_BYTES,
      onLine: output.line,
    });
    current = hook;
    track(hook);
    void hook.result.then((result) => {
      output.finish(command);
      if (result.kind === 'not-started') log.error({ command }, `--on-refresh command could not start: ${result.error.message}`);
      else if (result.timedOut) log.error({ command, deadlineMs: options.deadlineMs ?? HOOK_DEADLINE_MS }, '--on-refresh command exceeded its deadline; its process group was killed');
      else if (result.code !== 0) log.error({ command, exitCode: result.code, signal: result.signal }, '--on-refresh command failed');
      else log.debug({ command }, '--on-refresh command succeeded');
    }).finally(() => {
      current = undefined;
      if (again && !closed) {
        again = false;
        start();
        return;
      }
      for (const resolve of waiters) resolve();
      waiters = [];
    });
  };

  const idle = (): Promise<void> => current === undefined ? Promise.resolve() : new Promise((resolve) => { waiters.push(resolve); });
  return {
    run() {
      if (closed) return;
      if (current !== undefined) again = true;
      else start();
    },
    idle,
    async close(graceMs = HOOK_SHUTDOWN_GRACE_MS) {
      closed = true;
      again = false;
      for (const hook of groups) hook.stop(graceMs);
      await Promise.all([idle(), ...[...groups].map((hook) => hook.gone)]);
    },
  };
}

/**
 * Tests shorten the deadline with EK_TEST_HOOK_DEADLINE_MS (the CLI keeps 60 s and has no option for it). It can
 * only shorten it, never lengthen it, and the kill grace shrinks with it.
 */
export function hookTimingFromEnv(env: NodeJS.ProcessEnv): { deadlineMs: number; graceMs: number } {
  const asked = Number(env.EK_TEST_HOOK_DEADLINE_MS);
  const deadlineMs = Number.isInteger(asked) && asked > 0 ? Math.min(asked, HOOK_DEADLINE_MS) : HOOK_DEADLINE_MS;
  return { deadlineMs, graceMs: Math.min(HOOK_KILL_GRACE_MS, deadlineMs) };
}

/** The hook needs the JWT file, never the API token: a development EK_API_TOKEN is not passed on. */
function hookEnv(base: NodeJS.ProcessEnv, jwtFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, EK_JWT_FILE: jwtFile };
  delete env.EK_API_TOKEN;
  return env;
}

/** Logs a run's output line by line, at most `maxLines` of it; says how much more there was. */
function boundedOutput(log: Logger, maxLines: number): { line: (stream: HookStream, line: OutputLine) => void; finish: (command: string) => void } {
  let logged = 0;
  let dropped = 0;
  return {
    line(stream, { text, truncated }) {
      if (text.trim() === '' && !truncated) return;
      if (logged >= maxLines) {
        dropped += 1;
        return;
      }
      logged += 1;
      const fields = truncated ? { hookOutput: stream, truncated } : { hookOutput: stream };
      if (stream === 'stderr') log.warn(fields, text);
      else log.info(fields, text);
    },
    finish(command) {
      if (dropped > 0) log.warn({ command, dropped }, `--on-refresh output beyond ${maxLines} lines was not logged`);
    },
  };
}
