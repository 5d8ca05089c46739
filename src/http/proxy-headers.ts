// What the API proxy copies across, as pure functions of the headers: the request's on the way up, the
// upstream's on the way back.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy Keep-Alive and Proxy-Connection): they describe one
 * connection, so each side of the proxy has its own and neither is copied.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization',
]);

/**
 * Request headers never forwarded, besides the hop-by-hop ones:
 * - `Authorization` and `Cookie`: the caller's credentials. The upstream sees the sidecar's JWT and nothing else.
 * - `Host`: the upstream's own, set by undici from `--api-url`.
 * - `Expect`: node:http has already answered `100 Continue`.
 * - `Ek-Sidecar-Request`: the token API's own marker.
 * - `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `Via`, `Origin`: refused before the proxy is reached (guards.ts),
 *   and never added either: the upstream sees a client of its own, not a relay.
 */
const REQUEST_DROPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP, 'authorization', 'cookie', 'host', 'expect', 'ek-sidecar-request', 'forwarded', 'x-real-ip', 'via', 'origin',
]);

/**
 * The headers of the forwarded request, from the caller's raw header list (name, value, name, value, …, as
 * node:http keeps them: case and repeats preserved): everything end-to-end the caller sent (Accept,
 * Content-Type, Content-Length, User-Agent, Accept-Encoding, …) but what REQUEST_DROPPED and the caller's
 * `Connection` header name, then `Authorization: Bearer <jwt>`.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], jwt: string): string[] {
  const named = connectionNamed(rawHeaders);
  const headers: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const lower = name.toLowerCase();
    if (REQUEST_DROPPED.has(lower) || lower.startsWith('x-forwarded-') || named?.has(lower) === true) continue;
    headers.push(name, rawHeaders[i + 1] ?? '');
  }
  headers.push('authorization', `Bearer ${jwt}`);
  return headers;
}

/**
 * The headers of the answer passed back: the upstream's as it sent them (status aside: RateLimit-*, Retry-After,
 * Location, WWW-Authenticate, Content-*, …) but the hop-by-hop ones and those its `Connection` header names.
 * node:http frames the body anew (Content-Length when the upstream sent one, else chunked).
 */
export function clientResponseHeaders(upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const connection = upstream.connection;
  // `keep-alive` (the usual value) and `close` name no header.
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? undefined
    : tokens(Array.isArray(connection) ? connection.join(',') : connection);
  const headers: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name) === true) continue;
    headers[name] = value;
  }
  return headers;
}

/** The header names a raw list's `Connection` header(s) declare hop-by-hop; undefined without one (the usual case). */
function connectionNamed(rawHeaders: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const name of tokens(rawHeaders[i + 1] ?? '')) named.add(name);
  }
  return named;
}

function tokens(list: string): Set<string> {
  return new Set(list.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== ''));
}
