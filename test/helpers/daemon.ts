import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after } from 'node:test';
import { dirname, join } from 'node:path';
import { CLI, PROJECT_ROOT } from '../../testkit/paths.ts';

export { CLI, PROJECT_ROOT } from '../../testkit/paths.ts';
export { baseArgs } from '../../testkit/daemon-args.ts';

/**
 * Which build the black-box tests start, from EK_TEST_BUILD (`npm test` runs the tier; `npm run test:slow` runs a
 * representative part of it again, test/plain/*.test.ts, which set EK_TEST_BUILD=plain: the command line, the
 * daemon, the endpoints, TLS and proxies, hooks):
 * - `snapshot` (default): dist/bin.js from the startup snapshot, as the image's ENTRYPOINT starts it
 *   (`node --snapshot-blob dist/snapshot.blob dist/bin.js …`), every command;
 * - `plain`: the plain bundle (`node dist/bin.js …` with EK_SIDECAR_SNAPSHOT=off, so that the launcher does not
 *   restart from the snapshot).
 * The launcher's own choices (restart, fallback) are tested in test/slow/snapshot.test.ts.
 */
export const BUILD: 'snapshot' | 'plain' = process.env.EK_TEST_BUILD === 'plain' ? 'plain' : 'snapshot';
export const SNAPSHOT_BLOB = join(PROJECT_ROOT, 'dist', 'snapshot.blob');

/** How to start the CLI: BUILD's two ways, or `launcher`: `node dist/bin.js` as it is, deciding by itself. */
export type Launch = typeof BUILD | 'launcher';

export interface StartOptions {
  readonly launch?: Launch;
  /** Another copy of dist/bin.js (the snapshot, if any, beside it). */
  readonly cli?: string;
}

/** Node options and environment that start the CLI as `how` says. */
export function launch(how: Launch = BUILD, cli: string = CLI): { nodeArgs: string[]; env: Record<string, string> } {
  if (how === 'snapshot') return { nodeArgs: ['--snapshot-blob', join(dirname(cli), 'snapshot.blob')], env: {} };
  return { nodeArgs: [], env: how === 'plain' ? { EK_SIDECAR_SNAPSHOT: 'off' } : {} };
}

/** Everything every daemon printed in this test process, for the leak checks. */
export const allOutput: string[] = [];

/**
 * Daemons still running. A test that fails before it stops its daemon must not leave it holding the test file's
 * process open (the runner would wait for ever): whatever is left is killed when the file's tests are done.
 */
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface Daemon {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  logs(): LogLine[];
  /** Resolves with the first log line matching, or rejects after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Token API and metrics addresses from the start-up line. */
  ports(): Promise<{ token: number; metrics: number | undefined }>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait; resolves with the exit code and how long the exit took. */
  stop(): Promise<{ code: number | null; ms: number }>;
  kill9(): Promise<void>;
}

/** Start `ek-sidecar` (the built CLI, as BUILD says) as a child process with only the given environment (plus PATH). */
export function startDaemon(args: readonly string[], env: Record<string, string> = {}, options: StartOptions = {}): Daemon {
  const cli = options.cli ?? CLI;
  const how = launch(options.launch, cli);
  const child = spawn(process.execPath, [...how.nodeArgs, cli, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...how.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  // Log lines parsed as they arrive (a wait polls them: parsing the whole output at every poll cost CPU).
  const parsed: LogLine[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    allOutput.push(chunk);
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) parsed.push(JSON.parse(line) as LogLine);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; allOutput.push(chunk); });
  running.add(child);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const logs = (): LogLine[] => [...parsed];
  const daemon: Daemon = {
    child,
    stdout: () => out,
    stderr: () => err,
    logs,
    waitForLog: (match, timeoutMs = 5_000) => waitFor(() => logs().find(match), timeoutMs, () => `log line not seen; stdout:\n${out}\nstderr:\n${err}`),
    async ports() {
      // Generous: a start is ~0.3 s, but a starved machine (CI, parallel test files) can take seconds.
      const line = await daemon.waitForLog((l) => l.msg === 'ek-sidecar started', 15_000);
      const tokenApi = line.tokenApi as { port: number };
      const metrics = line.metrics as { port: number } | 'off';
      return { token: tokenApi.port, metrics: metrics === 'off' ? undefined : metrics.port };
    },
    exited: () => exit,
    async stop() {
      const started = performance.now();
      child.kill('SIGTERM');
      const { code } = await exit;
      return { code, ms: performance.now() - started };
    },
    async kill9() {
      child.kill('SIGKILL');
      await exit;
    },
  };
  return daemon;
}

/** Run the CLI to completion (for `once`, `check` and bad flags). */
export async function runCli(args: readonly string[], env: Record<string, string> = {}, options: StartOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const daemon = startDaemon(args, env, options);
  const { code } = await daemon.exited();
  // Let the pipes drain.
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout: daemon.stdout(), stderr: daemon.stderr() };
}

/**
 * Poll `probe` until it returns something other than undefined/false. Observes; never a fixed sleep. The interval
 * starts at 10 ms and grows to 100 ms: a condition met at once is seen at once, and a wait of seconds does not spend
 * the CPU the daemons under test need (a /metrics probe costs the daemon and this process about 6 ms together).
 */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, describe: () => string = () => 'condition'): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let interval = 10; ; interval = Math.min(100, interval * 1.5)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export async function tempDir(prefix = 'ek-sidecar-test-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Assert that no secret appears in any byte the daemons printed. */
export function findLeaks(secrets: Iterable<string>, output: readonly string[] = allOutput): string[] {
  const text = output.join('');
  const leaks: string[] = [];
  for (const secret of secrets) {
    if (secret.length > 0 && text.includes(secret)) leaks.push(`${secret.slice(0, 12)}…`);
  }
  return leaks;
}

/** One sample of a daemon's /metrics, e.g. `ek_sidecar_ready` or `name{label="value"}`; 0 when absent. */
export async function scrapeSample(metricsPort: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
