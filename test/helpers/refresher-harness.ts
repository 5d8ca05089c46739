// The refresher with every edge faked and every decision real: fake time (both clocks), a scripted upstream, and
// the real state store and JWT sink on memory files. Scenarios observe what a reader of the file, a client of the
// token API and the upstream would see, at the instant it happens.
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import type { RateLimit } from '../../src/config/config.ts';
import type { Random } from '../../src/core/clock.ts';
import { ExchangeError } from '../../src/core/errors.ts';
import { apiTokenCredential, type Credential, type ExchangeRequest } from '../../src/credentials/credential.ts';
import type { JwtSink } from '../../src/disk/jwt-sink.ts';
import { createRefresherWithSink } from '../../src/commands/refresh-wiring.ts';
import { parseState, type StateFile } from '../../src/disk/state-file.ts';
import { StateStore } from '../../src/disk/state-store.ts';
import { createMetrics, type Metrics } from '../../src/observe/metrics.ts';
import type { Refresher } from '../../src/refresh/refresher.ts';
import type { Restorable } from '../../src/refresh/reuse.ts';
import { ServedJwt } from '../../src/refresh/served-jwt.ts';
import type { ExchangeClient } from '../../src/upstream/exchange-client.ts';
import type { RawResponse } from '../../src/upstream/exchange-response.ts';
import type { HeldJwt } from '../../src/core/held-jwt.ts';
import { fakeTime, settle, type FakeClock, type FakeTimers } from './fake-timers.ts';
import { MemoryFiles } from './memory-files.ts';

/** A whole second, so that `exp` (seconds) and the refresher's millisecond arithmetic agree exactly. */
export const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
export const SECOND = 1_000;
export const MINUTE = 60 * SECOND;
export const MIN_TTL_MS = 60 * SECOND;
export const WINDOW: readonly [number, number] = [0.6, 0.8];
export const UPSTREAM_URL = 'https://api.enkryptify.test/v1/auth/exchange';
export const JWT_FILE = '/volume/jwt';
export const STATE_FILE = '/volume/jwt.state.json';
export const BOOT = '0c4b8a1e-2f3d-4e5f-8a9b-0123456789ab';

/** Everything secret a test file's scenarios create, and everything they exposed as text, for its leak check. */
export const SECRETS = new Set<string>();
export const EXPOSED: string[] = [];

/** An API-token credential; its token is remembered as a secret. */
export interface TestToken {
  readonly value: string;
  readonly credential: Credential;
  readonly fingerprint: string;
}

export function apiToken(name: string): TestToken {
  const value = `ek_live_${name}_${'k'.repeat(8)}9f3e1c7a5b2d`;
  SECRETS.add(value);
  const credential = apiTokenCredential(value);
  return { value, credential, fingerprint: credential.identity };
}

export interface Call {
  /** The bearer token sent. */
  readonly token: string;
  readonly request: ExchangeRequest;
  readonly atMs: number;
  readonly signal: AbortSignal;
}
export type Responder = (call: Call) => Promise<RawResponse>;

let jwtSerial = 0;
/** A real-looking JWT whose `exp` claim says when it expires. */
export function makeJwt(issuedAtMs: number, lifetimeS: number): string {
  jwtSerial += 1;
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(issuedAtMs / 1000);
  const claims = { sub: 'workspace-test', jti: `jwt-${String(jwtSerial)}`, iat, exp: iat + lifetimeS };
  const jwt = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from(`signature-${String(jwtSerial)}-0123456789abcdef`).toString('base64url')}`;
  SECRETS.add(jwt);
  return jwt;
}

export const respond = {
  /** 200 with a fresh JWT of `lifetimeS` seconds, both in `exp` and in `expiresIn`. */
  ok(lifetimeS = 900, headers: Record<string, string> = {}): Responder {
    return (call) => {
      const body = JSON.stringify({ accessToken: makeJwt(call.atMs, lifetimeS), expiresIn: lifetimeS, tokenType: 'Bearer' });
      return Promise.resolve({ url: UPSTREAM_URL, status: 200, headers: { 'content-type': 'application/json', ...headers }, body });
    };
  },
  /** 200 with exactly this body. */
  body(body: object): Responder {
    return () => Promise.resolve({ url: UPSTREAM_URL, status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  },
  /** An error status with the upstream's `{"message"}` body, which here even echoes the token back (it is redacted). */
  status(status: number, headers: Record<string, string> = {}): Responder {
    return (call) => {
      const body = JSON.stringify({ message: `rejected ${call.token}` });
      return Promise.resolve({ url: UPSTREAM_URL, status, headers: { 'content-type': 'application/json', ...headers }, body });
    };
  },
  networkError(): Responder {
    return () => Promise.reject(new ExchangeError('network_error', `POST ${UPSTREAM_URL} failed: ECONNRESET: socket hang up`));
  },
  /** Never answers; rejects as the real client does when its signal aborts. */
  hang(): Responder {
    return (call) =>
      new Promise<RawResponse>((_resolve, reject) => {
        call.signal.addEventListener('abort', () => { reject(new ExchangeError('network_error', `POST ${UPSTREAM_URL} failed: aborted by shutdown`)); }, { once: true });
      });
  },
  /** Answers when the test says so, with whatever responder it picks then. */
  later(): { readonly responder: Responder; answer(responder: Responder): void } {
    const gate = Promise.withResolvers<Responder>();
    return {
      responder: async (call) => (await gate.promise)(call),
      answer: (responder) => { gate.resolve(responder); },
    };
  },
};

/**
 * A broker's drop-in exchange as a chained sidecar sees it: the JWT the broker holds, with `expiresIn` its whole
 * seconds left, the same one until the test says the broker refreshed; 503 with Retry-After once that JWT is not
 * over the broker's --min-ttl (as the token API answers).
 */
export class ScriptedBroker {
  readonly #clock: FakeClock;
  #jwt = '';
  #expiresAtMs = 0;
  /** Seconds the broker's 503 says to wait. */
  retryAfterS = 5;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** The broker obtained a new JWT of `lifetimeS` seconds now. */
  refresh(lifetimeS = 900): void {
    this.#jwt = makeJwt(this.#clock.now(), lifetimeS);
    this.#expiresAtMs = this.#clock.now() + lifetimeS * SECOND;
  }

  get expiresAtMs(): number {
    return this.#expiresAtMs;
  }

  readonly responder: Responder = () => {
    const left = this.#expiresAtMs - this.#clock.now();
    if (left <= MIN_TTL_MS) {
      const body = JSON.stringify({ message: 'no JWT valid for more than --min-ttl is held yet; retry later' });
      return Promise.resolve({ url: UPSTREAM_URL, status: 503, headers: { 'content-type': 'application/json', 'retry-after': String(this.retryAfterS) }, body });
    }
    const body = JSON.stringify({ accessToken: this.#jwt, expiresIn: Math.floor(left / 1000), tokenType: 'Bearer' });
    return Promise.resolve({ url: UPSTREAM_URL, status: 200, headers: { 'content-type': 'application/json' }, body });
  };
}

export class ScriptedClient implements Pick<ExchangeClient, 'send'> {
  readonly calls: Call[] = [];
  readonly #clock: FakeClock;
  readonly #script: Responder[] = [];
  fallback: Responder = respond.ok();

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  enqueue(...responders: Responder[]): void {
    this.#script.push(...responders);
  }

  send(request: ExchangeRequest, signal: AbortSignal): Promise<RawResponse> {
    const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
    const call: Call = { token, request, atMs: this.#clock.now(), signal };
    this.calls.push(call);
    return (this.#script.shift() ?? this.fallback)(call);
  }
}

export interface HarnessOptions {
  readonly rateLimit?: RateLimit;
  readonly random?: number;
  readonly files?: MemoryFiles;
  /** Start the clocks elsewhere (a restart that finds a state file written earlier). */
  readonly startMs?: number;
  /** --refresh-window; WINDOW when absent. */
  readonly refreshWindow?: readonly [number, number];
}

export interface Harness {
  readonly clock: FakeClock;
  readonly timers: FakeTimers;
  readonly client: ScriptedClient;
  readonly files: MemoryFiles;
  readonly store: StateStore;
  readonly sink: JwtSink;
  readonly served: ServedJwt;
  readonly metrics: Metrics;
  readonly refresher: Refresher;
  readonly installed: HeldJwt[];
  readonly failures: Error[];
  readonly logs: string[];
  /** What `random()` returns from now on: a constant, or a source. */
  setRandom(value: number | Random): void;
  /** The JWT a client of the token API would get now. */
  servedJwt(): string | undefined;
  /** The JWT a reader of the file would see now. */
  onDisk(): string | undefined;
  /** The state file as a reader would parse it now. */
  state(): StateFile | undefined;
  /** Attempts to write the JWT file (not the state file). */
  jwtWriteAttempts(): number;
  /** Seed the refresher as a start does, from whatever the memory files hold. */
  restoreFromDisk(restorable?: Restorable): Promise<void>;
  /** Shut down as SIGTERM does, and wait until nothing runs. */
  stop(): Promise<void>;
}

export function harness(options: HarnessOptions = {}): Harness {
  const { clock, timers } = fakeTime(options.startMs ?? T0);
  const client = new ScriptedClient(clock);
  const files = options.files ?? new MemoryFiles();
  const rateLimit = options.rateLimit ?? { max: 10, windowMs: MINUTE };
  const metrics = createMetrics({ defaultMetrics: false });
  const served = new ServedJwt(MIN_TTL_MS, clock);
  const logs: string[] = [];
  const installed: HeldJwt[] = [];
  const failures: Error[] = [];
  const shutdown = new AbortController();
  let random: Random = () => options.random ?? 0.5;
  // Plain pino, without the product's redaction: the refresher itself must never hand a secret to the logger.
  const log = pino({ level: 'trace' }, { write: (line: string) => { logs.push(line); EXPOSED.push(line); } });
  const store = new StateStore({ path: STATE_FILE, files, clock, bootId: BOOT, limit: rateLimit, metrics });
  const { refresher, sink } = createRefresherWithSink({
    config: { jwtFile: JWT_FILE, jwtFileMode: 0o640, jwtFormat: 'raw', refreshWindow: options.refreshWindow ?? WINDOW, minTtlMs: MIN_TTL_MS, rateLimit, timeoutMs: 10 * SECOND },
    client, store, files, served, metrics, clock, random: () => random(), timers, log, signal: shutdown.signal,
    events: {
      onInstalled: (held) => { installed.push(held); },
      onFailure: (error) => {
        failures.push(error);
        EXPOSED.push(error.message);
      },
    },
  });
  return {
    clock, timers, client, files, store, sink, served, metrics, refresher, installed, failures, logs,
    setRandom: (value) => { random = typeof value === 'number' ? () => value : value; },
    servedJwt: () => {
      const readiness = served.readiness();
      if (!readiness.ready) EXPOSED.push(readiness.reason);
      return served.servable()?.jwt;
    },
    onDisk: () => files.text(JWT_FILE),
    state: () => parseState(files.text(STATE_FILE) ?? ''),
    jwtWriteAttempts: () => files.writes.filter((write) => write.path === JWT_FILE).length + files.failedWrites.filter((path) => path === JWT_FILE).length,
    async restoreFromDisk(restorable) {
      const disk = await store.load();
      refresher.restore(disk.records, restorable);
    },
    async stop() {
      shutdown.abort();
      await refresher.settled();
      await sink.close();
    },
  };
}

export async function counter(metric: Counter<'result'>, result: string): Promise<number> {
  return (await metric.get()).values.find((value) => value.labels.result === result)?.value ?? 0;
}

export async function gauge(metric: Gauge): Promise<number | undefined> {
  return (await metric.get()).values[0]?.value;
}

/** Why the token API would refuse now; fails the test if it would serve. */
export function notReadyReason(h: Harness): string {
  const readiness = h.served.readiness();
  assert.equal(readiness.ready, false, 'not ready');
  EXPOSED.push(readiness.reason);
  return readiness.reason;
}

/** Give the first credential and let the first exchange (answered by `first`) and its writes finish. */
export async function start(h: Harness, token: TestToken, first: Responder = respond.ok()): Promise<void> {
  h.client.enqueue(first);
  h.refresher.onCredential(token.credential);
  await settle();
}

/** The next call comes exactly `ms` from now: none at ms-1, one at ms. */
export async function expectNextCallIn(h: Harness, ms: number, message: string): Promise<void> {
  const before = h.client.calls.length;
  await h.timers.advance(ms - 1);
  assert.equal(h.client.calls.length, before, `${message}: no call ${String(ms - 1)} ms later`);
  await h.timers.advance(1);
  assert.equal(h.client.calls.length, before + 1, `${message}: one call ${String(ms)} ms later`);
}

/** Calls made with `token`, by time. */
export function callTimes(h: Harness, token: TestToken): number[] {
  return h.client.calls.filter((call) => call.token === token.value).map((call) => call.atMs);
}

/** The leak check each refresher test file closes with: no secret in anything its scenarios exposed. */
export function leaks(): string[] {
  const found: string[] = [];
  // One search per secret in everything exposed at once (the tier runs in one process, so both sets grow with every
  // file: a search per pair was seconds of CPU); the texts are searched one by one only to name a leak.
  const all = EXPOSED.join('\n');
  for (const secret of SECRETS) {
    // The whole secret, and its distinctive tail (a JWT's signature, a token's key after the prefix).
    const tail = secret.startsWith('ek_live_') ? secret.slice('ek_live_'.length) : secret.slice(secret.lastIndexOf('.') + 1);
    if (!all.includes(tail)) continue;
    for (const text of EXPOSED) if (text.includes(tail)) found.push(`${secret.slice(0, 12)}… in ${text.slice(0, 200)}`);
  }
  return found;
}
