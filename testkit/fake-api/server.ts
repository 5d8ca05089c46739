// A fake Enkryptify API that keeps the upstream contract (SPEC.md, upstream/exchange.openapi.yaml), on loopback only.
//   POST /v1/auth/exchange        Bearer API token → {"accessToken","expiresIn","tokenType"}; 10/window per token
//   POST /v1/auth/oidc/exchange   {"token","workspaceId"} → the same shape; 10/window per service account (oidc.ts)
//   GET  /v1/workspace/{ws}/project/{prj}/secret[/{name}]   the vendor SDK's secret reads (secrets.ts), for a
//        Bearer JWT this fake issued (unexpired) or a known API token; 401 otherwise, 403 for a forbidden token
//   /v1/echo, /v1/stream, /v1/redirect   proxy probes that exist only here (probes.ts)
// Every request on these routes counts in its client IP's rolling window (200 by default) and every answer carries
// RateLimit-* headers (the token's, the identity's or the IP's window); a 429 carries Retry-After; errors are
// {"message"}; issued JWTs are HS256 with `exp` (access-tokens.ts). Faults (faults.ts) target the exchanges or the
// reads and win over everything else. The log (log.ts) records route, credential kind, fingerprints and the OIDC
// `sub`, never a token, JWT or secret value. The /__control/ API (control.ts) drives it from another process.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { bearerOf, classify, issueJwt, isWellFormedToken, type TokenStatus } from './access-tokens.ts';
import { handleControl } from './control.ts';
import { toFaultSpec, type Fault, type FaultRoute, type FaultSpec } from './faults.ts';
import { isLoopbackHost, message, writeAnswer, type CannedResponse } from './http.ts';
import { fingerprint, summarize, type LogEntry, type LogSummary, type MutableEntry } from './log.ts';
import type { OidcBinding } from './oidc.ts';
import { writeStream, type StreamPlan } from './probes.ts';
import { decide, faultRouteOf, rateHeaders, readOidc, refusal, routeOf, type Call, type RouteContext } from './routes.ts';
import { SecretStore, type SecretRef } from './secrets.ts';
import type { FakeApi, FakeApiOptions } from './types.ts';
import { RateWindows } from './windows.ts';

export * from './faults.ts';
export { isWellFormedToken, type TokenStatus } from './access-tokens.ts';
export { isLoopbackHost, jsonResponse, type CannedResponse } from './http.ts';
export { fingerprint, ROUTES, type CredentialKind, type LogEntry, type LogSummary, type RouteName } from './log.ts';
export { DEFAULT_OIDC_AUDIENCE, OIDC_EXCHANGE_PATH, type OidcBinding, type OidcTrust } from './oidc.ts';
export { ECHO_PATH, REDIRECT_PATH, STREAM_PATH, streamBytes, type Echo } from './probes.ts';
export type { Secret, SecretRef, SecretSeed } from './secrets.ts';
export type { FakeApi, FakeApiOptions } from './types.ts';
export { EXCHANGE_PATH } from './routes.ts';
export { maxInAnyWindow } from './windows.ts';

class FakeApiServer implements FakeApi {
  readonly jwtKey = new Uint8Array(randomBytes(32));
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #options: FakeApiOptions;
  readonly #initialTokens: ReadonlyMap<string, TokenStatus>;
  readonly #now: () => number;
  readonly #host: string;
  readonly #windowMs: number;
  readonly #lifetimeSec: number;
  #port: number;
  #tokens: Map<string, TokenStatus | 'revoked'>;
  #bindings: OidcBinding[] | undefined;
  #secrets: SecretStore;
  #log: MutableEntry[] = [];
  #issued: string[] = [];
  readonly #queues = new Map<FaultRoute, FaultSpec[]>();
  readonly #modes = new Map<FaultRoute, FaultSpec>();
  readonly #idWindows: RateWindows;
  readonly #ipWindows: RateWindows;
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
    this.#bindings = options.oidcBindings === undefined ? undefined : [...options.oidcBindings];
    this.#secrets = new SecretStore(this.#now, options.secrets);
    this.#idWindows = new RateWindows(options.limit ?? 10, this.#windowMs);
    this.#ipWindows = new RateWindows(options.ipLimit ?? 200, this.#windowMs);
    this.#server = createServer((req, res) => {
      this.#onRequest(req, res).catch((error: unknown) => {
        if (!res.headersSent) writeAnswer(res, message(500, `fake API bug: ${String(error)}`));
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

  enqueue(fault: Fault, count: number | { readonly count?: number; readonly route?: FaultRoute } = 1): void {
    const options = typeof count === 'number' ? { count } : count;
    const spec = toFaultSpec(fault, options.route);
    const queue = this.#queues.get(spec.route) ?? [];
    for (let i = 0; i < (options.count ?? 1); i++) queue.push(spec);
    this.#queues.set(spec.route, queue);
  }
  async setMode(fault: Fault | 'ok', options: { readonly route?: FaultRoute } = {}): Promise<void> {
    if (fault === 'ok') {
      if (options.route === undefined) this.#modes.clear();
      else this.#modes.delete(options.route);
      await this.up();
      return;
    }
    const spec = toFaultSpec(fault, options.route);
    if (spec.fault === 'down') {
      this.#modes.delete(spec.route);
      await this.down(spec.downMs);
      return;
    }
    this.#modes.set(spec.route, spec);
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
  bind(sub: string, workspaceId: string): void {
    this.unbind(sub, workspaceId);
    (this.#bindings ??= []).push({ sub, workspaceId });
  }
  unbind(sub: string, workspaceId: string): void {
    this.#bindings = this.#bindings?.filter((b) => b.sub !== sub || b.workspaceId !== workspaceId);
  }
  setSecret(ref: SecretRef, value: string | undefined): void {
    if (value === undefined) this.#secrets.delete(ref);
    else this.#secrets.set(ref, value);
  }

  countFor(token: string): number {
    return this.summary().counts[fingerprint(token)] ?? 0;
  }
  maxInAnyWindow(token: string, windowMs = this.#windowMs): number {
    return this.summary(windowMs).maxInWindow[fingerprint(token)] ?? 0;
  }
  countForSub(sub: string): number {
    return this.summary().subCounts[sub] ?? 0;
  }
  maxInAnyWindowForSub(sub: string, windowMs = this.#windowMs): number {
    return this.summary(windowMs).subMaxInWindow[sub] ?? 0;
  }
  summary(windowMs = this.#windowMs): LogSummary {
    return summarize(this.#log, windowMs);
  }
  issued(): readonly string[] {
    return [...this.#issued];
  }
  reset(): void {
    this.#log = [];
    this.#issued = [];
    this.#queues.clear();
    this.#modes.clear();
    this.#idWindows.clear();
    this.#ipWindows.clear();
    this.#tokens = new Map(this.#initialTokens);
    this.#bindings = this.#options.oidcBindings === undefined ? undefined : [...this.#options.oidcBindings];
    this.#secrets = new SecretStore(this.#now, this.#options.secrets);
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
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => { this.#later(ms, resolve); });
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (this.#options.control === true && url.pathname.startsWith('/__control/')) {
      await handleControl(this, req, res, url, this.#options.oidc?.mint === undefined ? {} : { mint: this.#options.oidc.mint });
      return;
    }
    const { call, refused } = this.#receive(req, url);
    call.entry.credential = await classify(req.headers.authorization, { status: (t) => this.#tokenStatus(t) }, this.jwtKey, call.entry.atMs);
    if (refused !== undefined) {
      req.resume();
      this.#finish(res, call, refused);
      return;
    }
    if (call.entry.route === 'oidc-exchange') await readOidc(call, this.#options.oidc, (sub) => this.#idWindows.get(`sub:${sub}`), this.#now);
    else if (call.entry.route !== 'echo') req.resume(); // a body is accepted and ignored
    const group = faultRouteOf(call.entry.route);
    const fault = this.#queues.get(group)?.shift() ?? this.#modes.get(group);
    if (fault !== undefined) {
      call.entry.fault = fault.fault;
      if (fault.fault !== 'slow') req.resume(); // 'slow' answers normally, the echo reading the body then
    }
    const answer = await decide(call, fault, this.#context(req));
    if (answer === undefined) return;
    if ('bytes' in answer) await this.#stream(res, call, answer);
    else this.#finish(res, call, answer);
  }

  #context(req: IncomingMessage): RouteContext {
    return {
      url: this.url,
      lifetimeSec: this.#lifetimeSec,
      retryAfterFormat: this.#options.retryAfterFormat ?? 'seconds',
      bindings: this.#bindings,
      secrets: this.#secrets,
      now: this.#now,
      tokenStatus: (token) => this.#tokenStatus(token),
      sign: (subject, lifetimeSec, claims) => this.#sign(subject, lifetimeSec, claims),
      sleep: (ms) => this.#sleep(ms),
      drop: async (kind, downMs) => {
        req.socket.resetAndDestroy();
        if (kind === 'down') await this.down(downMs);
      },
    };
  }

  /** Logs the request and, unless it is refused at once, counts it for its client IP and on the token exchange for its token. */
  #receive(req: IncomingMessage, url: URL): { call: Call; refused: CannedResponse | undefined } {
    const now = this.#now();
    const bearer = bearerOf(req.headers.authorization);
    const method = req.method ?? 'GET';
    const route = routeOf(url.pathname);
    const entry: MutableEntry = {
      atMs: now, method, path: url.pathname, route, credential: 'none', tokenFingerprint: bearer === undefined ? null : fingerprint(bearer), status: 0,
    };
    this.#log.push(entry);
    const ipWindow = this.#ipWindows.get(req.socket.remoteAddress ?? 'unknown');
    const idWindow = route === 'exchange' && bearer !== undefined ? this.#idWindows.get(`token:${bearer}`) : undefined;
    const call: Call = { req, url, entry, bearer, ipWindow, idWindow, overId: false, overIp: false };
    const refused = refusal(route, method, url.pathname);
    if (refused === undefined) {
      call.overIp = ipWindow.hitIsOver(now);
      call.overId = idWindow?.hitIsOver(now) ?? false;
    }
    return { call, refused };
  }

  #tokenStatus(token: string): TokenStatus | 'revoked' | undefined {
    const known = this.#tokens.get(token);
    return known ?? (this.#options.acceptAnyToken === true && isWellFormedToken(token) ? 'ok' : undefined);
  }

  #sign(subject: string, lifetimeSec: number, claims: Readonly<Record<string, string>> = {}): Promise<string> {
    const padding = this.#options.jwtPadding === undefined ? {} : { pad: 'p'.repeat(this.#options.jwtPadding) };
    return issueJwt({ key: this.jwtKey, nowMs: this.#now(), subject, lifetimeSec, normalLifetimeSec: this.#lifetimeSec, claims: { ...padding, ...claims } });
  }

  /** Records the status and every JWT the body carries, so tests can look for them where they must not be. */
  #finish(res: ServerResponse, call: Call, answer: CannedResponse): void {
    call.entry.status = answer.status;
    for (const jwt of answer.body.match(/eyJ[\w-]*\.[\w-]+\.[\w-]+/g) ?? []) this.#issued.push(jwt);
    if (!res.destroyed) writeAnswer(res, answer, rateHeaders(call, this.#now()));
  }

  async #stream(res: ServerResponse, call: Call, plan: StreamPlan): Promise<void> {
    call.entry.status = 200;
    const complete = await writeStream(res, plan, rateHeaders(call, this.#now()), (ms) => this.#sleep(ms));
    if (!complete) call.entry.aborted = true;
  }
}

export async function startFakeApi(options: FakeApiOptions = {}): Promise<FakeApi> {
  const server = new FakeApiServer(options);
  await server.listen();
  return server;
}
