// The fault catalogue of the fake Enkryptify API: every way the upstream can fail, by name, so that tests can
// iterate over the list. A fault targets one route group: 'exchange' (both exchanges: POST /v1/auth/exchange and
// POST /v1/auth/oidc/exchange; the default) or 'reads' (every other /v1 route: the secret reads and the proxy
// probes of probes.ts). Status and network faults apply to both ('down' stops the whole listener, whichever route
// triggered it); the malformed 200s are exchange answers and target 'exchange' only. routes.ts applies them;
// control.ts injects them over HTTP.
import { JSON_CONTENT_TYPE, jsonResponse, MAX_BODY_BYTES, type CannedResponse } from './http.ts';

export { MAX_BODY_BYTES };

/** Non-2xx answers with `{"message"}`. '429' carries the fault's `retryAfter`. */
export const STATUS_FAULTS = ['500', '502', '503', '429', '401', '403'] as const;
export type StatusFault = (typeof STATUS_FAULTS)[number];

/** Transport-level faults: a late answer, no answer, a dropped connection, a closed port. */
export const NETWORK_FAULTS = ['slow', 'hang', 'reset', 'down'] as const;
export type NetworkFault = (typeof NETWORK_FAULTS)[number];

/** 200 answers (and one 302) that a strict client must reject as `invalid_response`. */
export const MALFORMED_KINDS = [
  'not-json',
  'json-array',
  'extra-property',
  'missing-accessToken',
  'missing-expiresIn',
  'missing-tokenType',
  'token-type-not-bearer',
  'access-token-not-jwt',
  'access-token-expired',
  'expires-in-zero',
  'expires-in-negative',
  'expires-in-string',
  'expires-in-null',
  'expires-in-infinite',
  'short-lifetime',
  'body-too-large',
  'wrong-content-type',
  'redirect',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export type FaultName = StatusFault | NetworkFault | MalformedKind;
export const FAULT_NAMES: readonly FaultName[] = [...STATUS_FAULTS, ...NETWORK_FAULTS, ...MALFORMED_KINDS];

/** Which requests a fault answers: both exchanges, or every other /v1 route. */
export const FAULT_ROUTES = ['exchange', 'reads'] as const;
export type FaultRoute = (typeof FAULT_ROUTES)[number];

/** A fault with its parameters; each parameter only matters to the fault named beside it. */
export interface FaultSpec {
  readonly fault: FaultName;
  /** Default 'exchange'. */
  readonly route?: FaultRoute;
  /** '429': seconds, or a string sent verbatim (an HTTP-date, or garbage to test the parser). Default 1. */
  readonly retryAfter?: number | string;
  /** 'slow': how long before the normal answer. Default 1000. */
  readonly delayMs?: number;
  /** 'short-lifetime': the lifetime of the JWT and `expiresIn`, in seconds. Default 30 (under a 60 s min-ttl). */
  readonly lifetimeSec?: number;
  /** 'down': come back up (same port) after this long; absent: stay down until `up()`. */
  readonly downMs?: number;
}
export type Fault = FaultName | FaultSpec;

export const DEFAULT_SLOW_MS = 1000;
export const DEFAULT_SHORT_LIFETIME_SEC = 30;

/** The spec with its route settled (`route`, else the spec's, else 'exchange'); a malformed kind on reads throws. */
export function toFaultSpec(fault: Fault, route?: FaultRoute): FaultSpec & { readonly route: FaultRoute } {
  const spec = typeof fault === 'string' ? { fault } : fault;
  const settled = { ...spec, route: route ?? spec.route ?? 'exchange' };
  if (settled.route === 'reads' && isMalformedKind(settled.fault)) {
    throw new Error(`fault ${settled.fault} is an exchange answer; it cannot target reads`);
  }
  return settled;
}

export function isFaultRoute(value: unknown): value is FaultRoute {
  return typeof value === 'string' && (FAULT_ROUTES as readonly string[]).includes(value);
}

export function isFaultName(value: unknown): value is FaultName {
  return typeof value === 'string' && (FAULT_NAMES as readonly string[]).includes(value);
}

export function isMalformedKind(name: FaultName): name is MalformedKind {
  return (MALFORMED_KINDS as readonly string[]).includes(name);
}

/** Validates a fault as sent to the control API (`{"fault":"429","retryAfter":5}`); throws with a message. */
export function parseFaultSpec(value: unknown): FaultSpec {
  if (typeof value !== 'object' || value === null) throw new Error('expected a JSON object with "fault"');
  const record = value as Record<string, unknown>;
  const { fault, route, retryAfter, delayMs, lifetimeSec, downMs } = record;
  if (!isFaultName(fault)) throw new Error(`unknown fault ${JSON.stringify(fault)}; known: ${FAULT_NAMES.join(', ')}`);
  const spec: { -readonly [K in keyof FaultSpec]: FaultSpec[K] } = { fault };
  if (route !== undefined) spec.route = parseFaultRoute(route);
  if (typeof retryAfter === 'number' || typeof retryAfter === 'string') spec.retryAfter = retryAfter;
  const delay = optionalNonNegative(delayMs, 'delayMs');
  if (delay !== undefined) spec.delayMs = delay;
  const lifetime = optionalNonNegative(lifetimeSec, 'lifetimeSec');
  if (lifetime !== undefined) spec.lifetimeSec = lifetime;
  const down = optionalNonNegative(downMs, 'downMs');
  if (down !== undefined) spec.downMs = down;
  return spec;
}

export function parseFaultRoute(value: unknown): FaultRoute {
  if (!isFaultRoute(value)) throw new Error(`unknown route ${JSON.stringify(value)}; known: ${FAULT_ROUTES.join(', ')}`);
  return value;
}

function optionalNonNegative(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0`);
  return value;
}

export interface MalformedContext {
  /** Signs (and records as issued) a JWT whose `exp` is `now + lifetimeSec`; a negative lifetime is already past. */
  sign(lifetimeSec: number): Promise<string>;
  /** The server's normal lifetime, in seconds. */
  readonly lifetimeSec: number;
  /** Where 'redirect' points: the exchange endpoint itself, so a client that followed it would be fooled. */
  readonly exchangeUrl: string;
}

type Body = Record<string, unknown>;
type Builder = (good: Body, ctx: MalformedContext, spec: FaultSpec) => Promise<CannedResponse> | CannedResponse;

const json = (value: unknown): CannedResponse => jsonResponse(200, value);
const without = (body: Body, key: string): Body => Object.fromEntries(Object.entries(body).filter(([k]) => k !== key));
const withRaw = (raw: string): CannedResponse => ({ status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: raw });

/** What each kind sends; `good` is the body a correct answer would have had. */
const BUILDERS: Readonly<Record<MalformedKind, Builder>> = {
  'not-json': () => withRaw('{"accessToken": "eyJ'),
  'json-array': (good) => json([good]),
  'extra-property': (good) => json({ ...good, scope: 'secrets:read' }),
  'missing-accessToken': (good) => json(without(good, 'accessToken')),
  'missing-expiresIn': (good) => json(without(good, 'expiresIn')),
  'missing-tokenType': (good) => json(without(good, 'tokenType')),
  'token-type-not-bearer': (good) => json({ ...good, tokenType: 'MAC' }),
  'access-token-not-jwt': (good) => json({ ...good, accessToken: 'opaque-session-7f3a9c' }),
  'access-token-expired': async (good, ctx) => json({ ...good, accessToken: await ctx.sign(-60) }),
  'expires-in-zero': (good) => json({ ...good, expiresIn: 0 }),
  'expires-in-negative': (good) => json({ ...good, expiresIn: -900 }),
  'expires-in-string': (good, ctx) => json({ ...good, expiresIn: String(ctx.lifetimeSec) }),
  'expires-in-null': (good) => json({ ...good, expiresIn: null }),
  // JSON.stringify cannot write Infinity; 1e999 is valid JSON that JSON.parse turns into Infinity.
  'expires-in-infinite': (good) => withRaw(JSON.stringify(good).replace(/"expiresIn":[^,}]+/, '"expiresIn":1e999')),
  'short-lifetime': async (good, ctx, spec) => {
    const lifetimeSec = spec.lifetimeSec ?? DEFAULT_SHORT_LIFETIME_SEC;
    return json({ ...good, accessToken: await ctx.sign(lifetimeSec), expiresIn: lifetimeSec });
  },
  // A valid body behind leading whitespace: only its size is wrong.
  'body-too-large': (good) => withRaw(' '.repeat(MAX_BODY_BYTES + 1) + JSON.stringify(good)),
  'wrong-content-type': (good) => ({ ...json(good), headers: { 'content-type': 'text/html; charset=utf-8' } }),
  redirect: (_good, ctx) => jsonResponse(302, { message: 'Found' }, { location: ctx.exchangeUrl }),
};

/** The answer for a malformed kind; signs a normal JWT first so each body differs from a good one in one way only. */
export async function malformedResponse(spec: FaultSpec & { fault: MalformedKind }, ctx: MalformedContext): Promise<CannedResponse> {
  const good: Body = { accessToken: await ctx.sign(ctx.lifetimeSec), expiresIn: ctx.lifetimeSec, tokenType: 'Bearer' };
  return BUILDERS[spec.fault](good, ctx, spec);
}

/** The answer of a status fault: its status and `{"message"}`; a 429 carries the fault's Retry-After. */
export function statusFaultResponse(spec: FaultSpec & { fault: StatusFault }): CannedResponse {
  const retryAfter: Record<string, string> = spec.fault === '429' ? { 'retry-after': String(spec.retryAfter ?? 1) } : {};
  return jsonResponse(Number(spec.fault), { message: `injected fault ${spec.fault}` }, retryAfter);
}

export function isStatusFault(name: FaultName): name is StatusFault {
  return (STATUS_FAULTS as readonly string[]).includes(name);
}
