// Endpoints that exist only in the fake, for testing a proxy in front of it (SPEC.md, "The API proxy"). Like the
// secret reads they count in the per-IP window, carry RateLimit-* headers and take the 'reads' faults; unlike
// them they ask for no credential: they report the one they saw instead.
//   ANY /v1/echo[/…][?status=NNN]  200 (or NNN, 200–599 with a body) JSON: {method, target (the request-target as
//        received), path, query (raw, without "?"), headers (all but authorization), authorization: {present, kind,
//        fingerprint}, body: {bytes, sha256}}
//   GET /v1/stream?bytes=N&chunkBytes=M&intervalMs=T   200 application/octet-stream, chunked: N bytes (default 1 MiB,
//        at most 256 MiB) in chunks of M (default 64 KiB) every T ms (default 50). Byte i is i % 251 (streamBytes()).
//        A client that leaves early marks its log entry `aborted`.
//   ANY /v1/redirect?to=URL&status=NNN   NNN (301, 302 default, 303, 307, 308) with Location: URL (default: this
//        server's /v1/echo/redirected) and {"message"}; the fake never follows anything itself.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CredentialKind } from './log.ts';
import { jsonResponse, message, type CannedResponse } from './http.ts';

export const ECHO_PATH = '/v1/echo';
export const STREAM_PATH = '/v1/stream';
export const REDIRECT_PATH = '/v1/redirect';
export type ProbeRoute = 'echo' | 'stream' | 'redirect';

const MAX_STREAM_BYTES = 256 * 1024 * 1024;
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

export function probeRoute(path: string): ProbeRoute | undefined {
  if (path === ECHO_PATH || path.startsWith(`${ECHO_PATH}/`)) return 'echo';
  if (path === STREAM_PATH) return 'stream';
  if (path === REDIRECT_PATH) return 'redirect';
  return undefined;
}

export interface Echo {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly authorization: { readonly present: boolean; readonly kind: CredentialKind; readonly fingerprint: string | null };
  readonly body: { readonly bytes: number; readonly sha256: string };
}

/** Reads the whole body (hashed as it streams, never kept) and describes the request. */
export async function echoAnswer(req: IncomingMessage, url: URL, credential: { kind: CredentialKind; fingerprint: string | null }): Promise<CannedResponse> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const status = integerParam(url, 'status', 200);
  if (status === undefined || status < 200 || status > 599 || [204, 205, 304].includes(status)) {
    return message(400, 'status must be an integer 200-599 that allows a body');
  }
  const headers = Object.fromEntries(Object.entries(req.headers).filter(([name, value]) => name !== 'authorization' && value !== undefined));
  const echo: Echo = {
    method: req.method ?? 'GET',
    target: req.url ?? '',
    path: url.pathname,
    query: url.search.slice(1),
    headers: headers as Record<string, string | string[]>,
    authorization: { present: req.headers.authorization !== undefined, kind: credential.kind, fingerprint: credential.fingerprint },
    body: { bytes, sha256: hash.digest('hex') },
  };
  return jsonResponse(status, echo);
}

export function redirectAnswer(url: URL, base: string): CannedResponse {
  const status = integerParam(url, 'status', 302);
  if (status === undefined || !REDIRECT_STATUSES.includes(status)) return message(400, `status must be one of ${REDIRECT_STATUSES.join(', ')}`);
  const location = url.searchParams.get('to') ?? `${base}${ECHO_PATH}/redirected`;
  return message(status, status === 302 ? 'Found' : 'Redirect', { location });
}

export interface StreamPlan {
  readonly bytes: number;
  readonly chunkBytes: number;
  readonly intervalMs: number;
}

export function parseStreamPlan(url: URL): StreamPlan | CannedResponse {
  const bytes = integerParam(url, 'bytes', 1024 * 1024);
  const chunkBytes = integerParam(url, 'chunkBytes', 64 * 1024);
  const intervalMs = integerParam(url, 'intervalMs', 50);
  if (bytes === undefined || bytes < 0 || bytes > MAX_STREAM_BYTES) return message(400, 'bytes must be an integer 0-268435456');
  if (chunkBytes === undefined || chunkBytes < 1) return message(400, 'chunkBytes must be an integer >= 1');
  if (intervalMs === undefined || intervalMs < 0 || intervalMs > 10_000) return message(400, 'intervalMs must be an integer 0-10000');
  return { bytes, chunkBytes, intervalMs };
}

/** Bytes [offset, offset + length) of every stream: byte i is i % 251, so any cut of it is checkable. */
export function streamBytes(length: number, offset = 0): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) chunk[i] = (offset + i) % 251;
  return chunk;
}

/**
 * Writes the stream, waiting for the socket to drain and then `intervalMs` between chunks. Resolves true when it
 * all went out, false when the client left first (or `wait` rejected: the server is closing).
 */
export async function writeStream(res: ServerResponse, plan: StreamPlan, headers: Readonly<Record<string, string>>, wait: (ms: number) => Promise<void>): Promise<boolean> {
  res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' });
  try {
    for (let offset = 0; offset < plan.bytes; offset += plan.chunkBytes) {
      if (res.destroyed) return false;
      const written = res.write(streamBytes(Math.min(plan.chunkBytes, plan.bytes - offset), offset));
      if (!written) await drained(res);
      if (plan.intervalMs > 0 && offset + plan.chunkBytes < plan.bytes) await wait(plan.intervalMs);
    }
  } catch {
    return false;
  }
  if (res.destroyed) return false;
  res.end();
  return true;
}

/** Resolves on 'drain' or 'close', whichever comes first, leaving no listener behind. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

function integerParam(url: URL, name: string, fallback: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  return raw.trim() !== '' && Number.isInteger(value) ? value : undefined;
}
