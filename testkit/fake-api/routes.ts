// How the fake answers each route once a request is logged and counted: the route table, the upstream's rules per
// route (rate limit first, then credentials, then the answer), and the faults that replace them. No I/O here
// beyond reading the echo's body: server.ts writes what these decide.
import type { IncomingMessage } from 'node:http';
import { fingerprint, type MutableEntry, type RouteName } from './log.ts';
import { isWellFormedToken, type TokenStatus } from './access-tokens.ts';
import { DEFAULT_SLOW_MS, isStatusFault, malformedResponse, statusFaultResponse, type FaultRoute, type FaultSpec } from './faults.ts';
import { jsonResponse, message, readBody, type CannedResponse } from './http.ts';
import { isBound, OIDC_EXCHANGE_PATH, parseOidcRequest, verifyProjectedToken, type OidcBinding, type OidcTrust } from './oidc.ts';
import { echoAnswer, parseStreamPlan, probeRoute, redirectAnswer, type StreamPlan } from './probes.ts';
import { parseSecretPath, type SecretStore } from './secrets.ts';
import type { RateWindow } from './windows.ts';

export const EXCHANGE_PATH = '/v1/auth/exchange';

export function routeOf(path: string): RouteName {
  if (path === EXCHANGE_PATH) return 'exchange';
  if (path === OIDC_EXCHANGE_PATH) return 'oidc-exchange';
  const secret = parseSecretPath(path);
  if (secret !== undefined) return secret.name === undefined ? 'secrets' : 'secret';
  return probeRoute(path) ?? 'other';
}

/** The one method a route takes; absent: any. */
const METHODS: Readonly<Partial<Record<RouteName, string>>> = { exchange: 'POST', 'oidc-exchange': 'POST', secrets: 'GET', secret: 'GET', stream: 'GET' };

export const faultRouteOf = (route: RouteName): FaultRoute => (route === 'exchange' || route === 'oidc-exchange' ? 'exchange' : 'reads');

/** 404 for an unknown path, 405 for a wrong method: answered before anything counts. */
export function refusal(route: RouteName, method: string, path: string): CannedResponse | undefined {
  if (route === 'other') return message(404, `no route ${method} ${path}`);
  const allowed = METHODS[route];
  return allowed === undefined || allowed === method ? undefined : message(405, `method ${method} not allowed`, { allow: allowed });
}

/** One request on its way through the server. */
export interface Call {
  readonly req: IncomingMessage;
  readonly url: URL;
  readonly entry: MutableEntry;
  readonly bearer: string | undefined;
  readonly ipWindow: RateWindow;
  /** The API token's or the service account's window, once known. */
  idWindow: RateWindow | undefined;
  overId: boolean;
  overIp: boolean;
  /** OIDC exchange: the body's refusal, or its workspace and, once the token verified, its subject. */
  oidc?: { readonly refusal?: CannedResponse; readonly workspaceId?: string; readonly sub?: string; readonly reason?: string };
}

/** Parses the OIDC body and verifies its token; a verified service account counts in its own window. */
export async function readOidc(call: Call, trust: OidcTrust | undefined, windowOf: (sub: string) => RateWindow, now: () => number): Promise<void> {
  const parsed = parseOidcRequest(call.req.headers['content-type'], await readBody(call.req));
  if ('status' in parsed) {
    call.oidc = { refusal: parsed };
    return;
  }
  call.entry.workspaceId = parsed.workspaceId;
  call.entry.tokenFingerprint = fingerprint(parsed.token);
  const verdict = await verifyProjectedToken(trust, parsed.token, now());
  if (!verdict.ok) {
    call.oidc = { workspaceId: parsed.workspaceId, reason: verdict.reason };
    return;
  }
  call.entry.sub = verdict.sub;
  call.oidc = { workspaceId: parsed.workspaceId, sub: verdict.sub };
  call.idWindow = windowOf(verdict.sub);
  call.overId = call.idWindow.hitIsOver(now());
}

/** What the routes need of the server. */
export interface RouteContext {
  readonly url: string;
  readonly lifetimeSec: number;
  readonly retryAfterFormat: 'seconds' | 'http-date';
  readonly bindings: readonly OidcBinding[] | undefined;
  readonly secrets: SecretStore;
  now(): number;
  tokenStatus(token: string): TokenStatus | 'revoked' | undefined;
  sign(subject: string, lifetimeSec: number, claims?: Readonly<Record<string, string>>): Promise<string>;
  sleep(ms: number): Promise<void>;
  /** Resets the connection; with 'down', stops listening too. */
  drop(kind: 'reset' | 'down', downMs?: number): Promise<void>;
}

export type Decision = CannedResponse | StreamPlan | undefined;

/** The answer, or undefined when none is sent (hang, reset, down). A fault wins over everything else. */
export async function decide(call: Call, fault: FaultSpec | undefined, ctx: RouteContext): Promise<Decision> {
  if (fault === undefined) return normal(call, ctx);
  const name = fault.fault;
  if (name === 'hang') return undefined; // held open until the client gives up or close() destroys it
  if (name === 'reset' || name === 'down') {
    await ctx.drop(name, fault.downMs);
    return undefined;
  }
  if (name === 'slow') {
    await ctx.sleep(fault.delayMs ?? DEFAULT_SLOW_MS);
    return normal(call, ctx);
  }
  if (isStatusFault(name)) return statusFaultResponse({ ...fault, fault: name });
  const subject = call.entry.route === 'oidc-exchange' ? `oidc:${call.oidc?.sub ?? 'unverified'}` : `apitoken_${fingerprint(call.bearer ?? '')}`;
  return malformedResponse({ ...fault, fault: name }, {
    sign: (lifetimeSec) => ctx.sign(subject, lifetimeSec),
    lifetimeSec: ctx.lifetimeSec,
    exchangeUrl: ctx.url + call.entry.path,
  });
}

/** What the real upstream would answer. */
async function normal(call: Call, ctx: RouteContext): Promise<CannedResponse | StreamPlan> {
  const route = call.entry.route;
  if (route === 'exchange') return exchange(call, ctx);
  if (route === 'oidc-exchange') return oidcExchange(call, ctx);
  if (call.overIp) return rateLimited(call, ctx);
  if (route === 'echo') return echoAnswer(call.req, call.url, { kind: call.entry.credential, fingerprint: call.entry.tokenFingerprint });
  if (route === 'stream') return parseStreamPlan(call.url);
  if (route === 'redirect') return redirectAnswer(call.url, ctx.url);
  return read(call, ctx);
}

/** The token exchange: rate limits first, then the token table, then a fresh JWT. */
async function exchange(call: Call, ctx: RouteContext): Promise<CannedResponse> {
  const { bearer } = call;
  if (call.overId || call.overIp) return rateLimited(call, ctx);
  if (bearer === undefined) return message(401, 'missing or malformed Authorization header');
  const status = ctx.tokenStatus(bearer);
  if (status === 'forbidden') return message(403, 'insufficient permissions for this API token');
  if (status !== 'ok' || !isWellFormedToken(bearer)) return message(401, 'invalid, expired or revoked API token');
  return granted(ctx, `apitoken_${fingerprint(bearer)}`);
}

/** The OIDC exchange: the IP's limit, the body, the token, the identity's limit, the binding, a fresh JWT. */
async function oidcExchange(call: Call, ctx: RouteContext): Promise<CannedResponse> {
  if (call.overIp) return rateLimited(call, ctx);
  const oidc = call.oidc ?? {};
  if (oidc.refusal !== undefined) return oidc.refusal;
  if (oidc.sub === undefined || oidc.workspaceId === undefined) return message(401, oidc.reason ?? 'invalid service-account token');
  if (call.overId) return rateLimited(call, ctx);
  if (!isBound(ctx.bindings, oidc.sub, oidc.workspaceId)) return message(403, 'this service account is not bound to this workspace');
  return granted(ctx, `oidc:${oidc.sub}`, { workspaceId: oidc.workspaceId });
}

/** A secret read: a live JWT this fake issued, or a known API token. */
function read(call: Call, ctx: RouteContext): CannedResponse {
  const { credential } = call.entry;
  if (credential === 'none' || credential === 'invalid') return message(401, 'missing, invalid or expired credential');
  if (credential === 'api-token' && ctx.tokenStatus(call.bearer ?? '') === 'forbidden') return message(403, 'insufficient permissions for this API token');
  const path = parseSecretPath(call.entry.path);
  return path === undefined ? message(404, 'no such secret route') : ctx.secrets.answer(path, call.url.searchParams.get('environmentId'));
}

async function granted(ctx: RouteContext, subject: string, claims: Readonly<Record<string, string>> = {}): Promise<CannedResponse> {
  const accessToken = await ctx.sign(subject, ctx.lifetimeSec, claims);
  return jsonResponse(200, { accessToken, expiresIn: ctx.lifetimeSec, tokenType: 'Bearer' });
}

function rateLimited(call: Call, ctx: RouteContext): CannedResponse {
  const window = call.overIp ? call.ipWindow : (call.idWindow ?? call.ipWindow);
  const now = ctx.now();
  const seconds = window.retryAfterSec(now);
  const retryAfter = ctx.retryAfterFormat === 'http-date' ? new Date(now + seconds * 1000).toUTCString() : String(seconds);
  const scope = call.overId && !call.overIp ? (call.entry.route === 'oidc-exchange' ? 'this service account' : 'this API token') : 'this client IP';
  return message(429, `rate limit exceeded for ${scope}`, { 'retry-after': retryAfter });
}

/** RateLimit-* of the window that limited the request, else the identity's, else the IP's. */
export function rateHeaders(call: Call, now: number): Record<string, string> {
  const window = call.overIp && !call.overId ? call.ipWindow : (call.idWindow ?? call.ipWindow);
  return window.headers(now);
}
