// The fault catalogue of the fake Enkryptify API: every way the upstream can fail, by name, so that tests can
// iterate over the list, and the `/__control/…` API that injects them from another process. The server that
// applies them is server.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeApi } from './server.ts';

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

/** A fault with its parameters; each parameter only matters to the fault named beside it. */
export interface FaultSpec {
  readonly fault: FaultName;
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
/** The body cap of SPEC.md; 'body-too-large' goes just over it. */
export const MAX_BODY_BYTES = 64 * 1024;

export function toFaultSpec(fault: Fault): FaultSpec {
  return typeof fault === 'string' ? { fault } : fault;
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
  const { fault, retryAfter, delayMs, lifetimeSec, downMs } = record;
  if (!isFaultName(fault)) throw new Error(`unknown fault ${JSON.stringify(fault)}; known: ${FAULT_NAMES.join(', ')}`);
  const spec: { -readonly [K in keyof FaultSpec]: FaultSpec[K] } = { fault };
  if (typeof retryAfter === 'number' || typeof retryAfter === 'string') spec.retryAfter = retryAfter;
  const delay = optionalNonNegative(delayMs, 'delayMs');
  if (delay !== undefined) spec.delayMs = delay;
  const lifetime = optionalNonNegative(lifetimeSec, 'lifetimeSec');
  if (lifetime !== undefined) spec.lifetimeSec = lifetime;
  const down = optionalNonNegative(downMs, 'downMs');
  if (down !== undefined) spec.downMs = down;
  return spec;
}

function optionalNonNegative(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0`);
  return value;
}

/** A complete answer, written as is. */
export interface CannedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface MalformedContext {
  /** Signs (and records as issued) a JWT whose `exp` is `now + lifetimeSec`; a negative lifetime is already past. */
  sign(lifetimeSec: number): Promise<string>;
  /** The server's normal lifetime, in seconds. */
  readonly lifetimeSec: number;
  /** Where 'redirect' points: the exchange endpoint itself, so a client that followed it would be fooled. */
  readonly exchangeUrl: string;
}

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

type Body = Record<string, unknown>;
type Builder = (good: Body, ctx: MalformedContext, spec: FaultSpec) => Promise<CannedResponse> | CannedResponse;

export function jsonResponse(status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): CannedResponse {
  return { status, headers: { ...headers, 'content-type': JSON_CONTENT_TYPE }, body: JSON.stringify(value) };
}
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

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > MAX_BODY_BYTES) throw new Error('control body over 64 KiB');
  }
  return text.trim() === '' ? {} : (JSON.parse(text) as unknown);
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/**
 * The `/__control/…` API: the library's controls over HTTP, for a fake API in another process (cli.ts).
 * Bad input is 400 `{"message"}`. Going down answers first and closes after, so the caller hears back.
 */
export async function handleControl(api: FakeApi, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const reply = (status: number, body: unknown): void => { sendJson(res, status, body); };
  const afterReply = (run: () => Promise<void>): void => { res.once('finish', () => void run().catch(() => undefined)); };
  const route = `${req.method ?? ''} ${url.pathname.slice('/__control'.length)}`;
  try {
    switch (route) {
      case 'GET /log': {
        const windowMs = url.searchParams.get('windowMs');
        reply(200, { ...api.summary(windowMs === null ? undefined : Number(windowMs)), entries: api.log });
        return;
      }
      case 'GET /issued':
        reply(200, { issued: api.issued() });
        return;
      case 'POST /reset':
        api.reset();
        reply(200, { ok: true });
        return;
      case 'POST /mode': {
        const body = await readJson(req);
        const spec = field(body, 'fault') === 'ok' ? 'ok' : parseFaultSpec(body);
        if (spec !== 'ok' && spec.fault === 'down') afterReply(() => api.setMode(spec));
        else await api.setMode(spec);
        reply(200, { mode: spec === 'ok' ? 'ok' : spec.fault });
        return;
      }
      case 'POST /enqueue': {
        const body = await readJson(req);
        const count = field(body, 'count') ?? 1;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new Error('count must be an integer >= 1');
        api.enqueue(parseFaultSpec(body), count);
        reply(200, { queued: count });
        return;
      }
      case 'POST /revoke':
      case 'POST /allow':
      case 'POST /forbid': {
        const token = field(await readJson(req), 'token');
        if (typeof token !== 'string' || token === '') throw new Error('expected {"token": "…"}');
        const verb = route.slice('POST /'.length);
        if (verb === 'revoke') api.revoke(token);
        else if (verb === 'allow') api.allow(token);
        else api.forbid(token);
        reply(200, { ok: true });
        return;
      }
      case 'POST /down': {
        const ms = Number(url.searchParams.get('ms'));
        if (!Number.isFinite(ms) || ms <= 0) throw new Error('down needs ?ms=<milliseconds > 0>');
        afterReply(() => api.down(ms));
        reply(202, { downForMs: ms });
        return;
      }
      default:
        reply(404, { message: `no control route ${route}` });
    }
  } catch (error) {
    reply(400, { message: error instanceof Error ? error.message : String(error) });
  }
}
