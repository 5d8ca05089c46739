// The fake Enkryptify API (testkit/fake-api/cli.ts) in its own process, so that it never shares an event
// loop with the bench; its request log is read through its control API.
import type { LogEntry } from '../../testkit/fake-api/server.ts';
import { FAKE_API_CLI } from './paths.ts';
import { spawnNode, type Child } from './processes.ts';
import { waitFor } from './wait.ts';

export type { LogEntry };

export interface FakeApiLog {
  readonly windowMs: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly maxInWindow: Readonly<Record<string, number>>;
  readonly entries: readonly LogEntry[];
}

export interface FakeApiProcessOptions {
  /** JWT lifetime in seconds (fractions allowed). */
  readonly lifetimeSec: number;
  /** Requests per token per window; default: high enough never to limit. */
  readonly limit?: number;
  readonly windowMs?: number;
  /** Requests per client IP per window; default: high enough never to limit (every daemon here is 127.0.0.1). */
  readonly ipLimit?: number;
  /** A JSON file of secrets to serve (the fake's --secrets). */
  readonly secretsFile?: string;
}

export interface FakeApiProcess {
  readonly url: string;
  readonly child: Child;
  log(): Promise<FakeApiLog>;
  /** Successful exchanges (status 200 on either exchange route) logged so far. */
  exchanges(): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeApiProcess(options: FakeApiProcessOptions): Promise<FakeApiProcess> {
  const child = spawnNode([
    FAKE_API_CLI,
    '--accept-any-token',
    '--lifetime', String(options.lifetimeSec),
    '--limit', String(options.limit ?? 1_000_000),
    '--window-ms', String(Math.round(options.windowMs ?? 60_000)),
    '--ip-limit', String(options.ipLimit ?? 1_000_000),
    ...(options.secretsFile === undefined ? [] : ['--secrets', options.secretsFile]),
  ]);
  let out = '';
  let err = '';
  child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
  child.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; });
  const url = await waitFor(() => {
    if (!child.alive()) throw new Error(`fake API exited: ${err}`);
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return line === undefined ? undefined : (JSON.parse(line) as { url: string }).url;
  }, 15_000, 'the fake API to listen');
  const log = async (): Promise<FakeApiLog> => {
    const response = await fetch(`${url}/__control/log`);
    if (!response.ok) throw new Error(`fake API control: ${response.status}`);
    return (await response.json()) as FakeApiLog;
  };
  return {
    url,
    child,
    log,
    async exchanges() {
      return (await log()).entries.filter((entry) => entry.status === 200 && (entry.route === 'exchange' || entry.route === 'oidc-exchange')).length;
    },
    async close() {
      await child.stop('SIGTERM', 2_000);
    },
  };
}
