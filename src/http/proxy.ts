// The API proxy (SPEC.md "Token API" → "The API proxy"): every other `/v1/…` request on the token listener is
// forwarded to the upstream with the held JWT and streamed both ways. The decisions are pure (proxy-rules.ts,
// proxy-headers.ts); this file only moves bytes, with undici's `stream()` writing the upstream's answer straight
// into the client's response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ProxyMode } from '../config/config.ts';
import { describeError } from '../core/errors.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ServedJwt } from '../refresh/served-jwt.ts';
import { bearerOf, isLoopbackPeer } from './guards.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './proxy-headers.ts';
import { CLIENT_CLOSED, MAX_PROXY_BODY_BYTES, decideProxyAccess, methodLabel, type ProxyAccess } from './proxy-rules.ts';
import { errorReply, hasBody, send, type Reply } from './reply.ts';
import { throttledWarning, type Logger } from './server.ts';

export interface ProxyOptions {
  /** `verify` or `inject`; with `off` the token API never hands the proxy a request. */
  readonly mode: ProxyMode;
  /** `--api-url`, without a trailing slash: its origin, and its path (if any) before every forwarded path. */
  readonly apiUrl: string;
  /** The upstream connection pool the exchange client uses too (`--ca-file`, proxy variables, timeouts). */
  readonly dispatcher: Dispatcher;
  /** `--timeout`: the longest wait for the upstream's response headers (a long streamed body is not cut). */
  readonly timeoutMs: number;
  readonly served: Pick<ServedJwt, 'servable' | 'held' | 'isIssuedAndValid' | 'retryAfterSeconds'>;
  /** Constant-time comparison with the sidecar's API token; always false with workload identity. */
  readonly isApiToken: (presented: string) => boolean;
  readonly metrics: Pick<Metrics, 'proxyRequests' | 'proxyDuration'>;
  /** The upstream answered 401 to the JWT held now (revoked?): the refresher checks it with one new exchange. */
  readonly onUpstreamUnauthorized: () => void;
  readonly log?: Logger | undefined;
}

export interface ApiProxy {
  /** Forward the request, or answer it here: 401, 403, 413, 502, 503, 504 with `{"message"}`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Send a refusal the listener's guards decided (Host, forwarding headers), counted as a proxied request. */
  refuse(req: IncomingMessage, res: ServerResponse, reply: Reply): void;
}

const CREDENTIAL_REQUIRED = 'the API proxy forwards only requests carrying "Authorization: Bearer" with this sidecar\'s API token or a JWT it obtained';
const REFUSAL: Readonly<Record<Exclude<ProxyAccess, 'forward'>, Reply>> = {
  'no-credential': errorReply(401, CREDENTIAL_REQUIRED, { 'WWW-Authenticate': 'Bearer' }),
  'wrong-credential': errorReply(401, CREDENTIAL_REQUIRED, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }),
  'remote-peer': errorReply(403, '--proxy inject answers only clients on a loopback address'),
  off: errorReply(404, 'not found'),
};
const REPLY = {
  tooLarge: errorReply(413, 'request body exceeds 1 MiB'),
  badGateway: errorReply(502, 'the upstream could not be reached, or failed before it answered'),
  gatewayTimeout: errorReply(504, 'the upstream did not answer within --timeout'),
};
const UNAVAILABLE = 'no JWT valid for more than --min-ttl is held yet; retry later';

class BodyTooLargeError extends Error {}

export function createApiProxy(options: ProxyOptions): ApiProxy {
  const { mode, dispatcher, served, metrics, timeoutMs } = options;
  const base = new URL(options.apiUrl);
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/$/, '');
  const checks = { isApiToken: options.isApiToken, isIssuedJwt: (jwt: string) => served.isIssuedAndValid(jwt) };
  const warnUnreachable = throttledWarning(options.log, 'API proxy: the upstream could not be reached or did not answer in time');

  /** Every proxied request is counted once, with the status sent (or 499 when the client left before any). */
  const counter = (req: IncomingMessage): ((code: number) => void) => {
    let counted = false;
    return (code) => {
      if (counted) return;
      counted = true;
      metrics.proxyRequests.inc({ method: methodLabel(req.method), code: String(code) });
    };
  };

  const answer = (req: IncomingMessage, res: ServerResponse, reply: Reply, count: (code: number) => void): void => {
    res.setHeader('Cache-Control', 'no-store');
    // A body left unread (refused, or the upstream failed first) is not drained: the connection closes instead.
    if (hasBody(req) && !req.complete) res.setHeader('Connection', 'close');
    send(res, reply);
    count(reply.code);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, jwt: string, count: (code: number) => void): void => {
    const startedAt = performance.now();
    const abort = new AbortController();
    let cause: 'timeout' | 'client' | undefined;
    const timer = setTimeout(() => {
      cause = 'timeout';
      abort.abort();
    }, timeoutMs);
    // A client that leaves aborts the upstream request, whether it is still waiting for headers or reading the body.
    res.once('close', () => {
      if (res.writableFinished) return;
      cause ??= 'client';
      abort.abort();
    });
    const headersArrived = (): void => {
      clearTimeout(timer);
      metrics.proxyDuration.observe((performance.now() - startedAt) / 1000);
    };
    const request = {
      origin,
      path: prefix + (req.url ?? '/'),
      method: req.method ?? 'GET',
      headers: upstreamRequestHeaders(req.rawHeaders, jwt),
      body: hasBody(req) ? cappedBody(req) : null,
      signal: abort.signal,
    };
    void dispatcher.stream(request, ({ statusCode, headers }) => {
      headersArrived();
      res.writeHead(statusCode, clientResponseHeaders(headers));
      count(statusCode);
      // Only the JWT held now is worth checking: a 401 to one already replaced says nothing of the current one.
      if (statusCode === 401 && served.held()?.jwt === jwt) options.onUpstreamUnauthorized();
      return res;
    }).catch((error: unknown) => {
      // After the headers, undici has already cut the client's response short: nothing more can be said.
      if (res.headersSent) return;
      headersArrived();
      if (cause === 'client') {
        count(CLIENT_CLOSED);
        return;
      }
      const reply = cause === 'timeout' ? REPLY.gatewayTimeout : error instanceof BodyTooLargeError ? REPLY.tooLarge : REPLY.badGateway;
      if (reply !== REPLY.tooLarge) warnUnreachable(new Error(describeError(error)));
      answer(req, res, reply, count);
    });
  };

  return {
    handle(req, res) {
      const count = counter(req);
      const access = decideProxyAccess(mode, bearerOf(req.headers.authorization), checks, isLoopbackPeer(req.socket.remoteAddress));
      if (access !== 'forward') {
        answer(req, res, REFUSAL[access], count);
        return;
      }
      const held = served.servable();
      if (held === undefined) {
        answer(req, res, errorReply(503, UNAVAILABLE, { 'Retry-After': String(served.retryAfterSeconds()) }), count);
      } else if (Number(req.headers['content-length'] ?? 0) > MAX_PROXY_BODY_BYTES) {
        answer(req, res, REPLY.tooLarge, count);
      } else {
        forward(req, res, held.jwt, count);
      }
    },
    refuse(req, res, reply) {
      answer(req, res, reply, counter(req));
    },
  };
}

/**
 * The request body on its way up, counted as it streams so that a chunked body cannot pass 1 MiB. Piped rather
 * than handed to undici as is: undici destroys a failed body, and destroying the request would close the
 * connection before the 413 (or 502) could be sent.
 */
function cappedBody(req: IncomingMessage): Transform {
  let received = 0;
  const capped = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > MAX_PROXY_BODY_BYTES) callback(new BodyTooLargeError('request body exceeds 1 MiB'));
      else callback(null, chunk);
    },
  });
  req.once('error', (error) => capped.destroy(error));
  return req.pipe(capped);
}
