// A fake Enkryptify API that keeps the upstream contract (/work/shared/SPEC.md, exchange.openapi.yaml):
// POST /v1/auth/exchange, per-token and per-IP rolling-window limits that count every request, RateLimit-*
// headers on every answer, `{"message"}` errors; plus fault injection and a request log so tests can observe
// what a client did. Loopback only. Faults and the control API: fake-api-faults.ts.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, type Socket } from 'node:net';
import { SignJWT } from 'jose';
import {
  DEFAULT_SLOW_MS,
  handleControl,
  isMalformedKind,
  jsonResponse,
  malformedResponse,
  toFaultSpec,
  type CannedResponse,
  type Fault,
  type FaultName,
  type FaultSpec,
} from './fake-api-faults.ts';

export * from './fake-api-faults.ts';

export const EXCHANGE_PATH = '/v1/auth/exchange';
export type TokenStatus = 'ok' | 'forbidden';

export interface FakeApiOptions {
  /** Loopback only (127.0.0.0/8, ::1, localhost); anything else throws. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** Known API tokens; any other token is 401 unless `acceptAnyToken` (then any well-formed `ek_live_` one is ok). */
  readonly tokens?: Readonly<Record<string, TokenStatus>> | ReadonlyMap<string, TokenStatus>;
  readonly acceptAnyToken?: boolean;
  /** JWT lifetime and `expiresIn`, in seconds; fractions allowed for scaled-down time. Default 900. */
  readonly lifetimeSec?: number;
  /** Requests per API token per rolling window. Default 10. */
  readonly limit?: number;
  /** Requests per client IP per rolling window, all tokens together. Default 200. */
  readonly ipLimit?: number;
  /** Default 60 000. */
  readonly windowMs?: number;
  /** How a rate-limit 429 writes `Retry-After`. Default 'seconds'. */
  readonly retryAfterFormat?: 'seconds' | 'http-date';
  /** Milliseconds since the epoch. Default Date.now. */
  readonly now?: () => number;
  /** Serve the `/__control/…` API (for a fake API in another process). Default false. */
  readonly control?: boolean;
  /** Characters of filler in a `pad` claim, for JWTs larger than a page (a full volume's short writes). Default none. */
  readonly jwtPadding?: number;
}

export interface LogEntry {
  /** `now()` when the request arrived. */
  readonly atMs: number;
  readonly method: string;
  readonly path: string;
  /** First 8 hex of SHA-256 of the bearer credential; null without one. Never the token. */
  readonly tokenFingerprint: string | null;
  /** The status sent; 0 while unanswered or when no HTTP answer was given (hang, reset, down). */
  readonly status: number;
  /** The injected fault that decided the answer, if any. */
  readonly fault?: FaultName;
}

/** Per token fingerprint: requests logged, and the most inside any rolling window of `windowMs`. */
export interface LogSummary {
  readonly windowMs: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly maxInWindow: Readonly<Record<string, number>>;
}

export interface FakeApi {
  readonly url: string;
  readonly port: number;
  /** The HS256 key of the issued JWTs, so tests can verify them. */
  readonly jwtKey: Uint8Array;
  /** Every request received (control requests excepted), oldest first. */
  readonly log: readonly LogEntry[];
  /** One-shot faults, consumed one per exchange request ahead of the mode. */
  enqueue(fault: Fault, count?: number): void;
  /** A fault for every exchange request; 'down' stops listening, any other mode listens again. */
  setMode(fault: Fault | 'ok'): Promise<void>;
  /** Stop listening (connections refused) and drop open connections; with `ms`, come back after that long. */
  down(ms?: number): Promise<void>;
  /** Listen again, on the same port. */
  up(): Promise<void>;
  revoke(token: string): void;
  allow(token: string): void;
  forbid(token: string): void;
  countFor(token: string): number;
  /** Most requests with this token inside any rolling window of `windowMs` (default: the server's), from the log. */
  maxInAnyWindow(token: string, windowMs?: number): number;
  summary(windowMs?: number): LogSummary;
  /** Every JWT sent in a body, oldest first. */
  issued(): readonly string[];
  /** Clears the log, the windows, the issued list, the queue and the mode; restores the token table. */
  reset(): void;
  /** Stops the server and destroys every socket, hanging ones included. */
  close(): Promise<void>;
}

export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 8);
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return h === 'localhost' || h === '::1' || (isIPv4(v4) && v4.startsWith('127.'));
}

/** The most of `timesMs` (ascending) within any window [t, t + windowMs), the way the limiter counts. */
export function maxInAnyWindow(timesMs: readonly number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < timesMs.length; end++) {
    while ((timesMs[end] ?? 0) - (timesMs[start] ?? 0) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** Well-formed per SPEC.md: `ek_live_`, no whitespace or control characters, at most 4 KiB. */
export function isWellFormedToken(token: string): boolean {
  // eslint-disable-next-line no-control-regex
  return token.startsWith('ek_live_') && token.length <= 4096 && !/[\s\x00-\x1f\x7f]/.test(token);
}

/** A rolling window of request times. */
class Window {
  readonly #times: number[] = [];
  readonly limit: number;
  readonly windowMs: number;
  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Counts a request and says whether it is over the limit; rejected requests count too, as upstream's do. */
  hitIsOver(now: number): boolean {
    this.#prune(now);
    this.#times.push(now);
    return this.#times.length > this.limit;
  }
  headers(now: number): Record<string, string> {
    this.#prune(now);
    const oldest = this.#times[0];
    return {
      'ratelimit-limit': String(this.limit),
      'ratelimit-remaining': String(Math.max(0, this.limit - this.#times.length)),
      'ratelimit-reset': String(oldest === undefined ? 0 : Math.ceil((oldest + this.windowMs - now) / 1000)),
    };
  }
  /** Whole seconds (>= 1) until one more request fits under the limit. */
  retryAfterSec(now: number): number {
    const freeing = this.#times[this.#times.length - this.limit] ?? now;
    return Math.max(1, Math.ceil((freeing + this.windowMs - now) / 1000));
  }
  #prune(now: number): void {
    while ((this.#times[0] ?? Infinity) <= now - this.windowMs) this.#times.shift();
  }
}

type MutableEntry = { -readonly [K in keyof LogEntry]: LogEntry[K] };

/** One request on its way through the server. */
interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly entry: MutableEntry;
  readonly bearer: string | undefined;
  readonly tokenWindow: Window | undefined;
  readonly ipWindow: Window;
  overToken: boolean;
  overIp: boolean;
}

class FakeApiServer implements FakeApi {
  readonly jwtKey = new Uint8Array(randomBytes(32));
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #initialTokens: ReadonlyMap<string, TokenStatus>;
  readonly #options: FakeApiOptions;
  readonly #now: () => number;
  readonly #host: string;
  readonly #windowMs: number;
  readonly #lifetimeSec: number;
  #port: number;
  #tokens: Map<string, TokenStatus | 'revoked'>;
  #log: MutableEntry[] = [];
  #issued: string[] = [];
  #queue: FaultSpec[] = [];
  #mode: FaultSpec | undefined;
  #tokenWindows = new Map<string, Window>();
  #ipWindows = new Map<string, Window>();
  #isDown = false;
  #closed = false;

  constructor(options: FakeApiOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 0;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#lifetimeSec = options.lifetimeSec ?? 900;
    if (!isLoopbackHost(this.#host)) throw new Error(`fake API: ${this.#host} is not a loopback address`);
    const tokens = options.tokens ?? {};
    this.#initialTokens = new Map(tokens instanceof Map ? tokens : Object.entries(tokens));
    this.#tokens = new Map(this.#initialTokens);
    this.#server = createServer((req, res) => {
      this.#onRequest(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#write(res, jsonResponse(500, { message: `fake API bug: ${String(error)}` }));
      });
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${this.#port}`;
  }
  get port(): number {
    return this.#port;
  }
  get log(): readonly LogEntry[] {
    return this.#log;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (address !== null && typeof address === 'object') this.#port = address.port;
    this.#isDown = false;
  }

  enqueue(fault: Fault, count = 1): void {
    for (let i = 0; i < count; i++) this.#queue.push(toFaultSpec(fault));
  }
  async setMode(fault: Fault | 'ok'): Promise<void> {
    const spec = fault === 'ok' ? undefined : toFaultSpec(fault);
    if (spec?.fault === 'down') {
      this.#mode = undefined;
      await this.down(spec.downMs);
      return;
    }
    this.#mode = spec;
    await this.up();
  }
  async down(ms?: number): Promise<void> {
    if (this.#closed) return;
    if (!this.#isDown) {
      this.#isDown = true;
      await this.#stop();
    }
    if (ms !== undefined) this.#later(ms, () => this.up());
  }
  async up(): Promise<void> {
    if (this.#isDown && !this.#closed) await this.listen();
  }

  revoke(token: string): void {
    this.#tokens.set(token, 'revoked');
  }
  allow(token: string): void {
    this.#tokens.set(token, 'ok');
  }
  forbid(token: string): void {
    this.#tokens.set(token, 'forbidden');
  }

  countFor(token: string): number {
    return this.summary().counts[fingerprint(token)] ?? 0;
  }
  maxInAnyWindow(token: string, windowMs = this.#windowMs): number {
    return this.summary(windowMs).maxInWindow[fingerprint(token)] ?? 0;
  }
  summary(windowMs = this.#windowMs): LogSummary {
    if (!(windowMs > 0)) throw new Error('windowMs must be > 0');
    const times = new Map<string, number[]>();
    for (const { tokenFingerprint: fp, atMs } of this.#log) {
      if (fp === null) continue;
      const list = times.get(fp) ?? [];
      list.push(atMs);
      times.set(fp, list);
    }
    // Sorted, because a test's hand-moved clock need not only go forward.
    const per = (f: (t: number[]) => number) => Object.fromEntries([...times].map(([fp, t]) => [fp, f(t.sort((a, b) => a - b))]));
    return { windowMs, counts: per((t) => t.length), maxInWindow: per((t) => maxInAnyWindow(t, windowMs)) };
  }
  issued(): readonly string[] {
    return [...this.#issued];
  }
  reset(): void {
    this.#log = [];
    this.#issued = [];
    this.#queue = [];
    this.#mode = undefined;
    this.#tokenWindows.clear();
    this.#ipWindows.clear();
    this.#tokens = new Map(this.#initialTokens);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (!this.#isDown) await this.#stop();
  }

  async #stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => { resolve(); }));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** A timer that close() cancels, so a closed fake leaves nothing behind. */
  #later(ms: number, run: () => Promise<void> | void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      Promise.resolve().then(run).catch(() => undefined);
    }, ms);
    this.#timers.add(timer);
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (this.#options.control === true && url.pathname.startsWith('/__control/')) {
      await handleControl(this, req, res, url);
      return;
    }
    req.resume(); // a request body is accepted and ignored
    const call = this.#receive(req, res, url.pathname);
    const counted = call.entry.path === EXCHANGE_PATH && call.entry.method === 'POST';
    const fault = counted ? (this.#queue.shift() ?? this.#mode) : undefined;
    if (fault !== undefined) call.entry.fault = fault.fault;
    const answer = await this.#answer(call, fault);
    if (answer === undefined) return;
    this.#record(call.entry, answer);
    if (!res.destroyed) this.#write(res, answer, this.#rateHeaders(call));
  }

  /** Logs the request and, on the exchange route, counts it against its token and its client IP. */
  #receive(req: IncomingMessage, res: ServerResponse, path: string): Call {
    const now = this.#now();
    const bearer = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    const method = req.method ?? 'GET';
    const entry: MutableEntry = { atMs: now, method, path, tokenFingerprint: bearer === undefined ? null : fingerprint(bearer), status: 0 };
    this.#log.push(entry);
    const ip = req.socket.remoteAddress ?? 'unknown';
    const ipWindow = windowFor(this.#ipWindows, ip, () => new Window(this.#options.ipLimit ?? 200, this.#windowMs));
    const tokenWindow = bearer === undefined ? undefined
      : windowFor(this.#tokenWindows, bearer, () => new Window(this.#options.limit ?? 10, this.#windowMs));
    const call: Call = { req, res, entry, bearer, tokenWindow, ipWindow, overToken: false, overIp: false };
    if (path === EXCHANGE_PATH && method === 'POST') {
      call.overToken = tokenWindow?.hitIsOver(now) ?? false;
      call.overIp = ipWindow.hitIsOver(now);
    }
    return call;
  }

  /** The answer to send, or undefined when none is (hang, reset, down). A fault wins over everything else. */
  async #answer(call: Call, fault: FaultSpec | undefined): Promise<CannedResponse | undefined> {
    const { path, method } = call.entry;
    if (path !== EXCHANGE_PATH) return jsonResponse(404, { message: `no route ${method} ${path}` });
    if (method !== 'POST') return jsonResponse(405, { message: `method ${method} not allowed` }, { allow: 'POST' });
    if (fault === undefined) return this.#exchange(call);
    const name = fault.fault;
    if (name === 'hang') return undefined; // held open until the client gives up or close() destroys it
    if (name === 'reset' || name === 'down') {
      call.req.socket.resetAndDestroy();
      if (name === 'down') await this.down(fault.downMs);
      return undefined;
    }
    if (name === 'slow') {
      await new Promise<void>((resolve) => { this.#later(fault.delayMs ?? DEFAULT_SLOW_MS, resolve); });
      return this.#exchange(call);
    }
    if (isMalformedKind(name)) {
      return malformedResponse({ ...fault, fault: name }, {
        sign: (lifetimeSec) => this.#sign(call.bearer ?? '', lifetimeSec),
        lifetimeSec: this.#lifetimeSec,
        exchangeUrl: this.url + EXCHANGE_PATH,
      });
    }
    const retryAfter: Record<string, string> = name === '429' ? { 'retry-after': String(fault.retryAfter ?? 1) } : {};
    return jsonResponse(Number(name), { message: `injected fault ${name}` }, retryAfter);
  }

  /** The real endpoint: rate limits first, then the token table, then a fresh JWT. */
  async #exchange(call: Call): Promise<CannedResponse> {
    const { bearer } = call;
    if (call.overToken || call.overIp) return this.#rateLimited(call);
    if (bearer === undefined) return jsonResponse(401, { message: 'missing or malformed Authorization header' });
    const known = this.#tokens.get(bearer);
    const status = known ?? (this.#options.acceptAnyToken === true ? 'ok' : undefined);
    if (status === 'forbidden') return jsonResponse(403, { message: 'insufficient permissions for this API token' });
    if (status !== 'ok' || !isWellFormedToken(bearer)) return jsonResponse(401, { message: 'invalid, expired or revoked API token' });
    const accessToken = await this.#sign(bearer, this.#lifetimeSec);
    return jsonResponse(200, { accessToken, expiresIn: this.#lifetimeSec, tokenType: 'Bearer' });
  }

  #rateLimited(call: Call): CannedResponse {
    const window = call.overToken ? call.tokenWindow : call.ipWindow;
    const now = this.#now();
    const seconds = window?.retryAfterSec(now) ?? 1;
    const retryAfter = this.#options.retryAfterFormat === 'http-date' ? new Date(now + seconds * 1000).toUTCString() : String(seconds);
    const scope = call.overToken ? 'this API token' : 'this client IP';
    return jsonResponse(429, { message: `rate limit exceeded for ${scope}` }, { 'retry-after': retryAfter });
  }

  /** The window that limited the request, else the token's, else the IP's. */
  #rateHeaders(call: Call): Record<string, string> {
    const window = call.overIp && !call.overToken ? call.ipWindow : (call.tokenWindow ?? call.ipWindow);
    return window.headers(this.#now());
  }

  /** `exp` keeps milliseconds so that scaled-down fractional lifetimes stay exact; a negative lifetime is expired. */
  async #sign(bearer: string, lifetimeSec: number): Promise<string> {
    const nowSec = this.#now() / 1000;
    const expSec = Math.round((nowSec + lifetimeSec) * 1000) / 1000;
    return new SignJWT(this.#options.jwtPadding === undefined ? {} : { pad: 'p'.repeat(this.#options.jwtPadding) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(`apitoken_${fingerprint(bearer)}`)
      .setIssuedAt(Math.floor(lifetimeSec > 0 ? nowSec : expSec - this.#lifetimeSec))
      .setExpirationTime(expSec)
      .setJti(randomUUID())
      .sign(this.jwtKey);
  }

  /** Records the status and every JWT the body carries, so tests can look for them where they must not be. */
  #record(entry: MutableEntry, answer: CannedResponse): void {
    entry.status = answer.status;
    for (const jwt of answer.body.match(/eyJ[\w-]*\.[\w-]+\.[\w-]+/g) ?? []) this.#issued.push(jwt);
  }

  #write(res: ServerResponse, answer: CannedResponse, extra: Record<string, string> = {}): void {
    res.writeHead(answer.status, { ...extra, ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
    res.end(answer.body);
  }
}

function windowFor(windows: Map<string, Window>, key: string, create: () => Window): Window {
  const window = windows.get(key) ?? create();
  windows.set(key, window);
  return window;
}

export async function startFakeApi(options: FakeApiOptions = {}): Promise<FakeApi> {
  const server = new FakeApiServer(options);
  await server.listen();
  return server;
}
