import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { isLoopbackHost } from '../config/config.ts';
import type { Clock } from '../core/clock.ts';
import {
  TOKEN_MAX_CONNECTIONS,
  createHttpServer,
  startServer,
  type Bind,
  type HttpTimeouts,
  type Logger,
  type RunningServer,
} from './server.ts';
import {
  JSON_TYPE,
  declaredTooLarge,
  readBody,
  errorReply,
  hasBody,
  pathOf,
  send,
  type Reply,
} from './reply.ts';
import { bearerOf, headerRefusal, hostGuard, isLoopbackPeer } from './guards.ts';
import type { ApiProxy } from './proxy.ts';
import { isProxiedTarget } from './proxy-rules.ts';
import { loadInitialPair, TlsReloader, type TlsFiles } from './tls.ts';
import { jwtDocument, secondsLeft } from '../disk/jwt-format.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ServedJwt } from '../refresh/served-jwt.ts';
import { BROKER_HEADER } from '../upstream/exchange-response.ts';

export interface TokenServerOptions {
  /** No host: every interface. */
  readonly listen: Bind;
  readonly served: ServedJwt;
  /** The credential checks behind the drop-ins: the API token, or the pod's projected token (workload identity). */
  readonly credentials: { isApiToken(presented: string): boolean; isProjectedToken?(token: string, workspace: string): boolean };
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly log?: Logger;
  /** SPEC defaults when absent; tests shorten them. */
  readonly timeouts?: Partial<HttpTimeouts>;
  /** Most connections open at once; TOKEN_MAX_CONNECTIONS when absent. */
  readonly maxConnections?: number;
  /** `--allowed-hosts`: Host names accepted besides loopback addresses and localhost. */
  readonly allowedHosts?: readonly string[];
  /**
   * `--tls-cert-file`/`--tls-key-file`: serve HTTPS with these PEM files, re-read when they change (every
   * `rereadIntervalMs` too, 30 s when absent). A missing or bad pair at start rejects with a ConfigError.
   */
  readonly tls?: (TlsFiles & { readonly rereadIntervalMs?: number }) | undefined;
  /** The API proxy (proxy.ts) for every other `/v1/…` request; absent with `--proxy off` (they get 404). */
  readonly proxy?: ApiProxy | undefined;
}

const NAME = 'token API';

const ROUTES = ['/v1/token', '/v1/auth/exchange', '/v1/auth/oidc/exchange'] as const;
/** A route of the token API itself, 'proxy' for the API proxy's requests, else 'other'. */
type Route = (typeof ROUTES)[number] | 'proxy' | 'other';
type OwnRoute = Exclude<Route, 'proxy'>;

/** The header every `GET /v1/token` must carry; a forged request (SSRF) usually cannot set headers. */
export const REQUEST_HEADER = 'ek-sidecar-request';

const REPLY = {
  forwarded: errorReply(403, 'requests carrying Forwarded, X-Forwarded-*, X-Real-IP or Via are refused'),
  origin: errorReply(403, 'requests carrying Origin are refused: this API is not for browsers'),
  foreignHost: errorReply(403, 'the Host header must name a loopback address, localhost or an --allowed-hosts name'),
  remotePeer: errorReply(403, 'GET /v1/token answers only clients on a loopback address'),
  // 403, not 400: like GCP's Metadata-Flavor, the header is a guard, and its absence marks a request we refuse
  // to authorise (possibly forged), not a malformed one; it also keeps every guard refusal on one code.
  noRequestHeader: errorReply(403, 'the header "Ek-Sidecar-Request: true" is required'),
  // The drop-in's refusals say they come from an ek-sidecar (a broker, to a chained sidecar), not from Enkryptify:
  // a chained sidecar retries such a 401 for a new token sooner, since this broker may not have read it yet.
  noBearer: errorReply(401, 'a valid "Authorization: Bearer <API token>" header is required', { 'WWW-Authenticate': 'Bearer', [BROKER_HEADER]: '1' }),
  wrongBearer: errorReply(401, 'a valid "Authorization: Bearer <API token>" header is required', {
    'WWW-Authenticate': 'Bearer error="invalid_token"',
    [BROKER_HEADER]: '1',
  }),
  notFound: errorReply(404, 'not found'),
  noWorkloadIdentity: errorReply(404, 'the workload-identity drop-in answers only with --auth oidc'),
  badOidcBody: errorReply(400, 'the body must be a JSON object {"token", "workspaceId"} of two non-empty strings'),
  wrongProjectedToken: errorReply(401, 'the token is not this pod\'s current projected service-account token, or the workspace is not this sidecar\'s'),
  tokenMethod: errorReply(405, 'method not allowed', { Allow: 'GET, HEAD' }),
  exchangeMethod: errorReply(405, 'method not allowed', { Allow: 'POST' }),
  // Closing the connection stops node:http from reading the rest of an oversized body.
  tooLarge: errorReply(413, 'request body exceeds 64 KiB', { Connection: 'close' }),
  internal: errorReply(500, 'internal error'),
};
const UNAVAILABLE = 'no JWT valid for more than --min-ttl is held yet; retry later';
const TEXT_TYPE = 'text/plain; charset=utf-8';

type Deps = Pick<TokenServerOptions, 'served' | 'credentials' | 'clock'>;

/** The loopback token API of SPEC.md. Serving a token is a memory read of `served`; nothing here does I/O. */
export async function startTokenServer(options: TokenServerOptions): Promise<RunningServer> {
  const { timeouts, log, listen } = options;
  const tls = options.tls === undefined ? undefined : await loadInitialPair(options.tls);
  const maxConnections = options.maxConnections ?? TOKEN_MAX_CONNECTIONS;
  const server = createHttpServer({ timeouts, maxConnections, name: NAME, log, tls: tls?.pair }, tokenHandler(options));
  if (tls === undefined && (listen.host === undefined || !isLoopbackHost(listen.host))) {
    log?.warn({ listen }, 'the token API listens beyond loopback without TLS (--tls-cert-file, --tls-key-file): what its clients send crosses the network in clear');
  }
  const running = await startServer(server, listen, NAME, log);
  if (options.tls === undefined || tls === undefined || !(server instanceof HttpsServer)) return running;
  const reloader = new TlsReloader({
    files: options.tls,
    current: tls,
    apply: (pair) => {
      server.setSecureContext({ cert: pair.cert, key: pair.key });
    },
    log,
    rereadIntervalMs: options.tls.rereadIntervalMs,
  });
  await reloader.start();
  return {
    address: running.address,
    close: async () => {
      await Promise.all([reloader.close(), running.close()]);
    },
  };
}

function tokenHandler(options: TokenServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, log } = options;
  const hostAllowed = hostGuard(options.allowedHosts ?? []);

  const respond = (res: ServerResponse, route: OwnRoute, reply: Reply): void => {
    metrics.tokenRequests.inc({ path: route, code: String(reply.code) });
    // Every answer of this listener holds or concerns a credential: nothing may cache it.
    res.setHeader('Cache-Control', 'no-store');
    send(res, reply);
  };
  const answer = (req: IncomingMessage, res: ServerResponse, route: OwnRoute, body: Buffer): void => {
    let reply: Reply;
    try {
      reply = decide(options, req, route, body);
    } catch (error) {
      log?.warn({ err: error }, 'token API request failed');
      reply = REPLY.internal;
    }
    respond(res, route, reply);
  };

  const { proxy } = options;
  return (req, res) => {
    const route = routeOf(req.url, proxy !== undefined);
    const refusal = guardRefusal(req, route, hostAllowed);
    if (route === 'proxy') {
      // Counted by the proxy alone, whatever the answer: one series per request.
      if (refusal !== undefined) proxy?.refuse(req, res, refusal);
      else proxy?.handle(req, res);
    } else if (refusal !== undefined) {
      respond(res, route, refusal);
    } else if (!hasBody(req)) {
      answer(req, res, route, Buffer.alloc(0));
    } else if (declaredTooLarge(req)) {
      respond(res, route, REPLY.tooLarge);
    } else {
      // Only the OIDC drop-in reads its body (the API-token drop-in ignores its JSON); the rest is bounded and discarded.
      readBody(req, route === '/v1/auth/oidc/exchange', (outcome, body) => {
        if (outcome === 'complete') answer(req, res, route, body);
        else if (outcome === 'too_large') respond(res, route, REPLY.tooLarge);
      });
    }
  };
}

function decide(deps: Deps, req: IncomingMessage, route: OwnRoute, body: Buffer): Reply {
  const method = req.method;
  if (route === '/v1/token') {
    // HEAD is GET without a body (node:http drops it), so a client can check for a token cheaply.
    return method === 'GET' || method === 'HEAD' ? tokenReply(deps, req) : REPLY.tokenMethod;
  }
  if (route === '/v1/auth/exchange') return method === 'POST' ? exchangeReply(deps, req) : REPLY.exchangeMethod;
  if (route === '/v1/auth/oidc/exchange') return method === 'POST' ? oidcExchangeReply(deps, body) : REPLY.exchangeMethod;
  return REPLY.notFound;
}

function tokenReply({ served, clock }: Deps, req: IncomingMessage): Reply {
  const marker = req.headers[REQUEST_HEADER];
  if (typeof marker !== 'string' || marker.toLowerCase() !== 'true') return REPLY.noRequestHeader;
  const nowMs = clock.now();
  const held = served.servable();
  if (held === undefined) return unavailable(served);
  if (wantsJson(req.headers.accept)) return { code: 200, type: JSON_TYPE, body: JSON.stringify(jwtDocument(held, nowMs)), headers: undefined };
  return { code: 200, type: TEXT_TYPE, body: held.jwt, headers: undefined };
}

function exchangeReply({ served, credentials, clock }: Deps, req: IncomingMessage): Reply {
  // 503 before the credential check: until this sidecar holds a JWT it may not have read its own API token yet (a
  // broker just restarted), and a 401 then would send a chained sidecar to its slow authentication retry.
  const held = served.servable();
  if (held === undefined) return unavailable(served);
  const presented = bearerOf(req.headers.authorization);
  if (presented === undefined) return REPLY.noBearer;
  if (!credentials.isApiToken(presented)) return REPLY.wrongBearer;
  const nowMs = clock.now();
  // The upstream's 200 shape and field order, so an SDK pointed here cannot tell the difference.
  const body = { accessToken: held.jwt, expiresIn: secondsLeft(held, nowMs), tokenType: held.tokenType };
  return { code: 200, type: JSON_TYPE, body: JSON.stringify(body), headers: undefined };
}

/**
 * The workload-identity drop-in, for the vendor SDK's Kubernetes auth pointed at the sidecar: the pod's own current
 * projected token and the sidecar's workspace get the held JWT, so the SDK needs no upstream exchange of its own.
 */
function oidcExchangeReply({ served, credentials, clock }: Deps, body: Buffer): Reply {
  if (credentials.isProjectedToken === undefined) return REPLY.noWorkloadIdentity;
  const request = oidcRequestOf(body);
  if (request === undefined) return REPLY.badOidcBody;
  if (!credentials.isProjectedToken(request.token, request.workspaceId)) return REPLY.wrongProjectedToken;
  const held = served.servable();
  if (held === undefined) return unavailable(served);
  const body200 = { accessToken: held.jwt, expiresIn: secondsLeft(held, clock.now()), tokenType: held.tokenType };
  return { code: 200, type: JSON_TYPE, body: JSON.stringify(body200), headers: undefined };
}

/** `{"token", "workspaceId"}` with two non-empty strings (other keys are ignored, as the upstream is lenient there). */
function oidcRequestOf(body: Buffer): { token: string; workspaceId: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { token, workspaceId } = parsed as Record<string, unknown>;
  return typeof token === 'string' && token !== '' && typeof workspaceId === 'string' && workspaceId !== '' ? { token, workspaceId } : undefined;
}

function unavailable(served: ServedJwt): Reply {
  return errorReply(503, UNAVAILABLE, { 'Retry-After': String(served.retryAfterSeconds()) });
}

function routeOf(url: string | undefined, proxying: boolean): Route {
  const path = pathOf(url);
  const own = ROUTES.find((route) => route === path);
  if (own !== undefined) return own;
  return proxying && isProxiedTarget(url) ? 'proxy' : 'other';
}

/**
 * SSRF and DNS-rebinding defences, for every path, then the loopback-peer rule for what needs no credential:
 * the 403 to send, or undefined when the request may pass.
 */
function guardRefusal(req: IncomingMessage, route: Route, hostAllowed: (host: string | undefined) => boolean): Reply | undefined {
  const refused = headerRefusal(req.headers);
  if (refused !== undefined) return refused === 'origin' ? REPLY.origin : REPLY.forwarded;
  if (!hostAllowed(req.headers.host)) return REPLY.foreignHost;
  if (route === '/v1/token' && !isLoopbackPeer(req.socket.remoteAddress)) return REPLY.remotePeer;
  return undefined;
}

/** `application/json` anywhere in Accept with a q above zero selects the json form; anything else, the raw JWT. */
export function wantsJson(accept: string | undefined): boolean {
  if (accept === undefined || !accept.toLowerCase().includes('application/json')) return false;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';');
    if (type.trim().toLowerCase() !== 'application/json') continue;
    const q = params.map((param) => param.trim().toLowerCase()).find((param) => param.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}
