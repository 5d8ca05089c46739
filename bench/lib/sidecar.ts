// ek-sidecar under test: the built CLI (dist/bin.js) in its own Node 24 process, started as the image starts it
// unless told otherwise, its JSON log lines parsed.
import { imageStart } from './image.ts';
import { CLI, SNAPSHOT_BLOB } from './paths.ts';
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

/**
 * How the process is started:
 * - `image`: as the Dockerfile's ENTRYPOINT does (from the startup snapshot, with the image's node options and ENV);
 * - `snapshot`: from the startup snapshot, without the image's other options and ENV;
 * - `launcher`: `node dist/bin.js`, which restarts itself from the snapshot (npm users' start);
 * - `plain`: `node dist/bin.js` with EK_SIDECAR_SNAPSHOT=off: the plain bundle, no snapshot.
 */
export type Launch = 'image' | 'snapshot' | 'launcher' | 'plain';

export const LAUNCHES: Readonly<Record<Launch, string>> = {
  image: 'the image\'s start (node --snapshot-blob …, its ENTRYPOINT and ENV)',
  snapshot: 'from the snapshot, without the image\'s other settings',
  launcher: 'node dist/bin.js (restarts itself from the snapshot)',
  plain: 'the plain bundle (EK_SIDECAR_SNAPSHOT=off)',
};

/** Node options and environment for `launch`, before the script. */
export function launchArgs(launch: Launch): { nodeArgs: string[]; env: Record<string, string> } {
  switch (launch) {
    case 'image': {
      const image = imageStart();
      return { nodeArgs: [...image.nodeArgs], env: { ...image.env } };
    }
    case 'snapshot': return { nodeArgs: ['--snapshot-blob', SNAPSHOT_BLOB], env: {} };
    case 'launcher': return { nodeArgs: [], env: {} };
    case 'plain': return { nodeArgs: [], env: { EK_SIDECAR_SNAPSHOT: 'off' } };
  }
}

export interface SidecarOptions {
  readonly apiUrl: string;
  readonly tokenFile: string;
  readonly jwtFile: string;
  /** More flags after the common ones, e.g. `--rate-limit 10/600ms`. */
  readonly extra?: readonly string[];
  /** Default `image`. */
  readonly launch?: Launch;
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
  const how = launchArgs(options.launch ?? 'image');
  const args = [
    ...how.nodeArgs,
    ...(options.nodeArgs ?? []),
    CLI,
    ...baseArgs({ apiUrl: options.apiUrl, tokenFile: options.tokenFile, jwtFile: options.jwtFile, ...(options.extra === undefined ? {} : { extra: options.extra }) }),
  ];
  const spawnedAtMs = performance.now();
  const child = spawnNode(args, { env: { ...how.env, ...options.env } });
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
