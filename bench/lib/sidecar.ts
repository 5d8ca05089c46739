// ek-sidecar under test: the built CLI (dist/bin.js) in its own Node 24 process, its JSON log lines parsed.
import { CLI } from './paths.ts';
import { spawnNode, type Child } from './processes.ts';
import { waitFor } from './wait.ts';
import { baseArgs } from '../../testkit/daemon-args.ts';

export const MSG_STARTED = 'ek-sidecar started';
export const MSG_EXCHANGED = 'exchanged the API token for a new JWT';
export const MSG_REUSED = 'reusing the JWT on disk; no exchange until its refresh point';

export interface LogLine {
  readonly msg?: string;
  readonly level?: string;
  readonly [field: string]: unknown;
  /** performance.now() in the bench when the line arrived. */
  readonly seenAtMs: number;
}

export interface SidecarOptions {
  readonly apiUrl: string;
  readonly tokenFile: string;
  readonly jwtFile: string;
  /** More flags after the common ones, e.g. `--rate-limit 10/600ms`. */
  readonly extra?: readonly string[];
  /** Extra Node options before the script, e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

export interface Sidecar extends Child {
  /** performance.now() just before spawn. */
  readonly spawnedAtMs: number;
  lines(): readonly LogLine[];
  waitForMsg(msg: string, timeoutMs?: number): Promise<LogLine>;
  /** Token API and metrics ports, from the start-up line. */
  ports(timeoutMs?: number): Promise<{ token: number; metrics: number | undefined; startedAtMs: number }>;
  stderr(): string;
}

export function startSidecar(options: SidecarOptions): Sidecar {
  const args = [
    ...(options.nodeArgs ?? []),
    CLI,
    ...baseArgs({ apiUrl: options.apiUrl, tokenFile: options.tokenFile, jwtFile: options.jwtFile, ...(options.extra === undefined ? {} : { extra: options.extra }) }),
  ];
  const spawnedAtMs = performance.now();
  const child = spawnNode(args, { ...(options.env === undefined ? {} : { env: options.env }) });
  const lines: LogLine[] = [];
  let partial = '';
  let err = '';
  child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const seenAtMs = performance.now();
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      if (!part.startsWith('{')) continue;
      try {
        lines.push({ ...(JSON.parse(part) as Record<string, unknown>), seenAtMs });
      } catch {
        // not a log line
      }
    }
  });
  child.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    // Only for error messages: keep the tail.
    err = (err + chunk).slice(-4_000);
  });
  const describe = (what: string): string => `${what} from ek-sidecar (pid ${child.pid}); stderr: ${err.trim() || '(empty)'}; last lines: ${lines.slice(-3).map((l) => l.msg).join(' | ')}`;
  const waitForMsg = async (msg: string, timeoutMs = 10_000): Promise<LogLine> => waitFor(() => {
    const line = lines.find((l) => l.msg === msg);
    if (line === undefined && !child.alive()) throw new Error(describe(`exited before "${msg}"`));
    return line;
  }, timeoutMs, describe(`"${msg}"`), 10);
  return {
    ...child,
    spawnedAtMs,
    lines: () => lines,
    waitForMsg,
    async ports(timeoutMs) {
      const line = await waitForMsg(MSG_STARTED, timeoutMs);
      const tokenApi = line.tokenApi as { port: number };
      const metrics = line.metrics as { port: number } | 'off';
      return { token: tokenApi.port, metrics: metrics === 'off' ? undefined : metrics.port, startedAtMs: line.seenAtMs };
    },
    stderr: () => err,
  };
}
