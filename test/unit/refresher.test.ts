import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import type { ApiToken } from '../../src/credentials/api-token.ts';
import type { Random } from '../../src/core/clock.ts';
import type { RateLimit } from '../../src/config/config.ts';
import type { ExchangeClient } from '../../src/upstream/exchange-client.ts';
import { ExchangeError } from '../../src/core/errors.ts';
import type { RawResponse } from '../../src/upstream/exchange-response.ts';
import { fingerprint } from '../../src/upstream/jwt-claims.ts';
import { createMetrics, type Metrics } from '../../src/observe/metrics.ts';
import { arrivalMargin, type ExchangeRecord } from '../../src/refresh/rate-limit.ts';
import { Refresher, type JwtStore } from '../../src/refresh/refresher.ts';
import { EMPTY_STATE, type SidecarState } from '../../src/disk/state-file.ts';
import { Status, type HeldJwt } from '../../src/refresh/served-jwt.ts';
import { fakeTime, settle, type FakeClock, type FakeTimers } from '../helpers/fake-timers.ts';
import { mulberry32 } from '../helpers/prng.ts';

/** A whole second, so that `exp` (seconds) and the refresher's millisecond arithmetic agree exactly. */
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const MIN_TTL_MS = 60 * SECOND;
const WINDOW: readonly [number, number] = [0.6, 0.8];
const UPSTREAM_URL = 'https://api.enkryptify.test/v1/auth/exchange';

// Everything secret the scenarios create, and everything they logged or exposed as text, for the last test.
const SECRETS = new Set<string>();
const EXPOSED: string[] = [];

function apiToken(name: string): ApiToken {
  const value = `ek_live_${name}_${'k'.repeat(8)}9f3e1c7a5b2d`;
  SECRETS.add(value);
  return { value, fingerprint: fingerprint(value) };
}

// ---------------------------------------------------------------------------------------------------------------
// Scripted upstream: a queue of responders, then a fallback.

interface Call {
  readonly token: string;
  readonly atMs: number;
  readonly signal: AbortSignal;
}
type Responder = (call: Call) => Promise<RawResponse>;

let jwtSerial = 0;
/** A real-looking JWT whose `exp` claim says when it expires. */
function makeJwt(issuedAtMs: number, lifetimeS: number): string {
  jwtSerial += 1;
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(issuedAtMs / 1000);
  const claims = { sub: 'workspace-test', jti: `jwt-${String(jwtSerial)}`, iat, exp: iat + lifetimeS };
  const jwt = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from(`signature-${String(jwtSerial)}-0123456789abcdef`).toString('base64url')}`;
  SECRETS.add(jwt);
  return jwt;
}

const respond = {
  /** 200 with a fresh JWT of `lifetimeS` seconds, both in `exp` and in `expiresIn`. */
  ok(lifetimeS = 900, headers: Record<string, string> = {}): Responder {
    return (call) => {
      const body = JSON.stringify({ accessToken: makeJwt(call.atMs, lifetimeS), expiresIn: lifetimeS, tokenType: 'Bearer' });
      return Promise.resolve({ url: UPSTREAM_URL, status: 200, headers: { 'content-type': 'application/json', ...headers }, body });
    };
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

class ScriptedClient implements ExchangeClient {
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

  send(token: string, signal: AbortSignal): Promise<RawResponse> {
    const call: Call = { token, atMs: this.#clock.now(), signal };
    this.calls.push(call);
    return (this.#script.shift() ?? this.fallback)(call);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// In-memory store: records what was written, can be told to fail or to hold writes.

class MemoryStore implements JwtStore {
  readonly jwtWrites: { readonly held: HeldJwt; readonly nowMs: number }[] = [];
  readonly states: SidecarState[] = [];
  writeAttempts = 0;
  /** The next this-many JWT writes fail as a full disk would. */
  failNext = 0;
  #hold: Promise<void> | undefined;

  /** Hold JWT writes until the returned function is called. */
  hold(): () => void {
    const gate = Promise.withResolvers<undefined>();
    this.#hold = gate.promise;
    return () => {
      this.#hold = undefined;
      gate.resolve(undefined);
    };
  }

  async writeJwt(held: HeldJwt, nowMs: number): Promise<void> {
    this.writeAttempts += 1;
    if (this.#hold !== undefined) await this.#hold;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    this.jwtWrites.push({ held, nowMs });
  }

  writeState(state: SidecarState): Promise<void> {
    this.states.push(state);
    return Promise.resolve();
  }

  /** The JWT a reader of the file would see. */
  onDisk(): string | undefined {
    return this.jwtWrites.at(-1)?.held.jwt;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The refresher with every dependency faked.

interface HarnessOptions {
  readonly rateLimit?: RateLimit;
  readonly random?: number;
}

interface Harness {
  readonly clock: FakeClock;
  readonly timers: FakeTimers;
  readonly client: ScriptedClient;
  readonly store: MemoryStore;
  readonly status: Status;
  readonly metrics: Metrics;
  readonly refresher: Refresher;
  readonly written: HeldJwt[];
  readonly failures: ExchangeError[];
  readonly logs: string[];
  /** What `random()` returns from now on: a constant, or a source. */
  setRandom(value: number | Random): void;
  /** The JWT a client of the token API would get now. */
  served(): string | undefined;
}

function harness(options: HarnessOptions = {}): Harness {
  const { clock, timers } = fakeTime(T0);
  const client = new ScriptedClient(clock);
  const store = new MemoryStore();
  const status = new Status(MIN_TTL_MS);
  const metrics = createMetrics({ defaultMetrics: false });
  const logs: string[] = [];
  const written: HeldJwt[] = [];
  const failures: ExchangeError[] = [];
  let random: Random = () => options.random ?? 0.5;
  // Plain pino, without the product's redaction: the refresher itself must never hand a secret to the logger.
  const log = pino({ level: 'trace' }, { write: (line: string) => { logs.push(line); EXPOSED.push(line); } });
  const refresher = new Refresher({
    config: { refreshWindow: WINDOW, minTtlMs: MIN_TTL_MS, rateLimit: options.rateLimit ?? { max: 10, windowMs: MINUTE } },
    client,
    store,
    status,
    metrics,
    clock,
    random: () => random(),
    log,
    timers,
    events: {
      onWritten: (held) => { written.push(held); },
      onFailure: (error) => {
        failures.push(error);
        EXPOSED.push(error.message);
      },
    },
  });
  return {
    clock,
    timers,
    client,
    store,
    status,
    metrics,
    refresher,
    written,
    failures,
    logs,
    setRandom: (value) => { random = typeof value === 'number' ? () => value : value; },
    served: () => {
      const reason = status.readiness(clock.now());
      if (!reason.ready) EXPOSED.push(reason.reason);
      return status.servable(clock.now())?.jwt;
    },
  };
}

async function counter(metric: Counter<'result'>, result: string): Promise<number> {
  return (await metric.get()).values.find((value) => value.labels.result === result)?.value ?? 0;
}

async function gauge(metric: Gauge): Promise<number | undefined> {
  return (await metric.get()).values[0]?.value;
}

/** Why the token API would refuse at `atMs`; fails the test if it would serve. */
function notReadyReason(h: Harness, atMs: number): string {
  const readiness = h.status.readiness(atMs);
  assert.equal(readiness.ready, false, 'not ready');
  EXPOSED.push(readiness.reason);
  return readiness.reason;
}

/** Give the first token and let the first exchange (answered by `first`) finish. */
async function start(h: Harness, token: ApiToken, first: Responder = respond.ok()): Promise<void> {
  h.client.enqueue(first);
  h.refresher.onToken(token);
  await settle();
}

/** The next call comes exactly `ms` from now: none at ms-1, one at ms. */
async function expectNextCallIn(h: Harness, ms: number, message: string): Promise<void> {
  const before = h.client.calls.length;
  await h.timers.advance(ms - 1);
  assert.equal(h.client.calls.length, before, `${message}: no call ${String(ms - 1)} ms later`);
  await h.timers.advance(1);
  assert.equal(h.client.calls.length, before + 1, `${message}: one call ${String(ms)} ms later`);
}

/** Calls made for `token`, by time. */
function callTimes(h: Harness, token: ApiToken): number[] {
  return h.client.calls.filter((call) => call.token === token.value).map((call) => call.atMs);
}

// ---------------------------------------------------------------------------------------------------------------

describe('first token', () => {
  test('one exchange at once, JWT written and served, state saved, next exchange at the drawn refresh point', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('first');
    await start(h, token);

    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.token, token.value);
    assert.equal(h.client.calls[0].atMs, T0);
    const jwt = h.store.onDisk();
    assert.ok(jwt !== undefined, 'the JWT is written');
    assert.deepEqual(h.store.jwtWrites[0], { held: { jwt, tokenType: 'Bearer', expiresAtMs: T0 + 900 * SECOND }, nowMs: T0 });
    assert.equal(h.served(), jwt);
    assert.deepEqual(h.status.readiness(h.clock.now()), { ready: true });
    assert.deepEqual(h.written.map((held) => held.jwt), [jwt], 'onWritten fired once');

    // 0.6 + (0.8 - 0.6) * 0.5 = 0.7 of 900 s.
    const refreshAt = T0 + 630 * SECOND;
    assert.deepEqual(h.store.states.at(-1), {
      tokenFingerprint: token.fingerprint,
      jwtFingerprint: fingerprint(jwt),
      issuedAtMs: T0,
      expiresAtMs: T0 + 900 * SECOND,
      refreshAtMs: refreshAt,
      exchanges: [{ atMs: T0, fingerprint: token.fingerprint }],
    });
    // The attempt is persisted before the request goes out, so that a crash right after it still spends the budget.
    assert.deepEqual(h.store.states[0]?.exchanges, [{ atMs: T0, fingerprint: token.fingerprint }]);
    assert.equal(await counter(h.metrics.exchanges, 'success'), 1);
    assert.equal(await counter(h.metrics.jwtFileWrites, 'success'), 1);
    assert.equal(await gauge(h.metrics.jwtExpiry), (T0 + 900 * SECOND) / 1000);
    assert.equal(await gauge(h.metrics.nextRefresh), refreshAt / 1000);
    assert.equal(await gauge(h.metrics.rateLimitBudget), 9);

    await h.timers.advanceTo(refreshAt - 1);
    assert.equal(h.client.calls.length, 1, 'no call before the refresh point');
    assert.equal(h.served(), jwt, 'still served until then');
    await h.timers.advanceTo(refreshAt);
    assert.equal(h.client.calls.length, 2, 'one call at the refresh point');
    assert.equal(h.client.calls[1]?.atMs, refreshAt);
    assert.notEqual(h.served(), jwt, 'the new JWT is served');
    await h.refresher.stop();
  });

  test('the refresh point spans the window: random 0 → 0.6, random 1 → 0.8 of the lifetime', async () => {
    for (const [random, at] of [[0, 540], [1, 720]] as const) {
      const h = harness({ random });
      await start(h, apiToken(`window-${String(random)}`));
      assert.equal(h.timers.nextDueAt(), T0 + at * SECOND, `random ${String(random)}`);
      await h.refresher.stop();
    }
  });
});

describe('transient failures: full-jitter backoff, the old JWT kept', () => {
  test('503s then success: retries 1 s, 2 s, 4 s later with random 1; the old JWT served throughout', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('backoff');
    await start(h, token);
    const old = h.store.onDisk();
    assert.ok(old !== undefined);

    h.client.enqueue(respond.status(503), respond.status(503), respond.status(503), respond.ok());
    h.setRandom(1);
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2, 'the scheduled refresh met a 503');
    for (const delay of [1, 2, 4]) {
      assert.equal(h.served(), old, 'the old JWT is still served');
      assert.equal(h.store.onDisk(), old, 'and still on disk');
      await expectNextCallIn(h, delay * SECOND, `retry after ${String(delay)} s`);
    }
    assert.equal(h.client.calls.length, 5);
    assert.notEqual(h.served(), old, 'the retry that succeeded brought a new JWT');
    assert.equal(await counter(h.metrics.exchanges, 'server_error'), 3);
    assert.equal(await counter(h.metrics.exchanges, 'success'), 2);
    assert.deepEqual(h.failures.map((error) => error.code), ['server_error', 'server_error', 'server_error']);
    await h.refresher.stop();
  });

  test('repeated failures: 1 s doubling, capped at 60 s; a success resets the backoff', async () => {
    const h = harness({ random: 1 });
    const token = apiToken('cap');
    h.client.fallback = respond.status(502);
    h.client.enqueue(respond.networkError());
    h.refresher.onToken(token);
    await settle();
    for (const delay of [1, 2, 4, 8, 16, 32, 60, 60, 60]) await expectNextCallIn(h, delay * SECOND, `backoff ${String(delay)} s`);
    assert.equal(await counter(h.metrics.exchanges, 'network_error'), 1);
    assert.equal(await counter(h.metrics.exchanges, 'server_error'), 9);
    assert.equal(h.served(), undefined);
    assert.match(notReadyReason(h, h.clock.now()), /answered 502/);

    h.client.enqueue(respond.ok(), respond.status(500));
    await h.timers.runNext();
    assert.ok(h.served() !== undefined, 'served once the upstream is back');
    // The next failure starts again from 1 s.
    const refreshAt = h.timers.nextDueAt();
    assert.ok(refreshAt !== undefined);
    await h.timers.advanceTo(refreshAt);
    await expectNextCallIn(h, 1 * SECOND, 'backoff restarts at 1 s');
    await h.refresher.stop();
  });

  test('full jitter: random 0.25 on the 3rd failure waits 1 s (a quarter of 4 s), and never less than 100 ms', async () => {
    const h = harness({ random: 0.25 });
    h.client.fallback = respond.status(503);
    h.refresher.onToken(apiToken('jitter'));
    await settle();
    await expectNextCallIn(h, 250, 'quarter of 1 s');
    await expectNextCallIn(h, 500, 'quarter of 2 s');
    // The delay is drawn when a failure happens: this one is drawn at the 4th failure, with random 0.
    h.setRandom(0);
    await expectNextCallIn(h, 1_000, 'quarter of 4 s');
    await expectNextCallIn(h, 100, 'random 0 still waits 100 ms');
    await h.refresher.stop();
  });

  test('429 with Retry-After: 30 → the next attempt after 30 s plus the jittered backoff', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-after'), respond.status(429, { 'retry-after': '30' }));
    assert.equal(await counter(h.metrics.exchanges, 'rate_limited'), 1);
    await expectNextCallIn(h, 31 * SECOND, 'Retry-After 30 + backoff 1 s');
    assert.ok(h.served() !== undefined);
    await h.refresher.stop();
  });

  test('429 with Retry-After as an HTTP-date 45 s ahead → the next attempt 45 s plus backoff later', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-date'), respond.status(429, { 'retry-after': new Date(T0 + 45 * SECOND).toUTCString() }));
    await expectNextCallIn(h, 46 * SECOND, 'Retry-After date + backoff 1 s');
    await h.refresher.stop();
  });

  test('an absurd Retry-After is capped at 15 minutes', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-after-cap'), respond.status(429, { 'retry-after': '86400' }));
    await expectNextCallIn(h, 15 * MINUTE + SECOND, 'capped Retry-After + backoff 1 s');
    await h.refresher.stop();
  });

  test('a 200 that is not the documented shape is invalid_response: never written, retried with backoff', async () => {
    const h = harness({ random: 1 });
    const token = apiToken('invalid-200');
    const extraField: Responder = (call) =>
      Promise.resolve({
        url: UPSTREAM_URL,
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ accessToken: makeJwt(call.atMs, 900), expiresIn: 900, tokenType: 'Bearer', refreshToken: 'x' }),
      });
    await start(h, token, extraField);
    assert.equal(await counter(h.metrics.exchanges, 'invalid_response'), 1);
    assert.equal(h.store.writeAttempts, 0, 'nothing written');
    assert.equal(h.served(), undefined);
    await expectNextCallIn(h, 1 * SECOND, 'backoff');
    assert.ok(h.served() !== undefined);
    await h.refresher.stop();
  });

  test('a JWT whose exp is earlier than expiresIn says: the earlier one decides the refresh point', async () => {
    const h = harness({ random: 0.5 });
    const shortExp: Responder = (call) =>
      Promise.resolve({
        url: UPSTREAM_URL,
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ accessToken: makeJwt(call.atMs, 600), expiresIn: 900, tokenType: 'Bearer' }),
      });
    await start(h, apiToken('short-exp'), shortExp);
    assert.equal(h.store.jwtWrites[0]?.held.expiresAtMs, T0 + 600 * SECOND);
    assert.equal(h.timers.nextDueAt(), T0 + 420 * SECOND);
    await h.refresher.stop();
  });

  test('Retry-After adds to the grown backoff, so clients sharing a token spread out', async () => {
    const h = harness({ random: 1 });
    h.client.enqueue(respond.status(503), respond.status(503), respond.status(503), respond.status(429, { 'retry-after': '2' }));
    h.refresher.onToken(apiToken('longer-backoff'));
    await settle();
    await expectNextCallIn(h, 1 * SECOND, '1st');
    await expectNextCallIn(h, 2 * SECOND, '2nd');
    await expectNextCallIn(h, 4 * SECOND, '3rd');
    await expectNextCallIn(h, 10 * SECOND, 'the 4th failure: Retry-After 2 s + backoff 8 s');
    await h.refresher.stop();
  });
});

describe('authentication failures: slow retry, at once on a new token or SIGHUP', () => {
  for (const [status, code] of [[401, 'unauthorized'], [403, 'forbidden']] as const) {
    for (const [random, delayS] of [[0, 240], [0.5, 300], [1, 360]] as const) {
      test(`${String(status)} with random ${String(random)} → next attempt ${String(delayS)} s later`, async () => {
        const h = harness({ random });
        h.client.fallback = respond.status(status);
        await start(h, apiToken(`auth-${String(status)}-${String(random)}`), respond.status(status));
        assert.equal(await counter(h.metrics.exchanges, code), 1);
        await expectNextCallIn(h, delayS * SECOND, `${String(status)} retry`);
        await h.refresher.stop();
      });
    }
  }

  test('a new token after a 401 is exchanged at once', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('revoked'), respond.status(401));
    await h.timers.advance(10 * SECOND);
    const fresh = apiToken('replacement');
    h.refresher.onToken(fresh);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.deepEqual(h.client.calls[1], { ...h.client.calls[1], token: fresh.value, atMs: T0 + 10 * SECOND });
    assert.ok(h.served() !== undefined);
    await h.refresher.stop();
  });

  test('the same token re-reported after a 401 (SIGHUP) is exchanged at once', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('sighup');
    await start(h, token, respond.status(401));
    await h.timers.advance(10 * SECOND);
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.atMs, T0 + 10 * SECOND);
    assert.ok(h.served() !== undefined);
    await h.refresher.stop();
  });

  test('the same token re-reported while healthy changes nothing', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('healthy');
    await start(h, token);
    await h.timers.advance(10 * SECOND);
    const due = h.timers.nextDueAt();
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.timers.nextDueAt(), due, 'the refresh point is kept');
    assert.equal(await counter(h.metrics.tokenFileReloads, 'success'), 2);
    await h.refresher.stop();
  });

  test('the same token re-reported after a 503 keeps the backoff (only auth failures are cut short)', async () => {
    const h = harness({ random: 1 });
    const token = apiToken('sighup-503');
    h.client.enqueue(respond.status(503), respond.status(503));
    h.refresher.onToken(token);
    await settle();
    await expectNextCallIn(h, 1 * SECOND, '1st retry');
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 2);
    await expectNextCallIn(h, 2 * SECOND, '2nd retry unchanged');
    await h.refresher.stop();
  });
});

describe('the client-side rate limit', () => {
  const LIMIT: RateLimit = { max: 3, windowMs: MINUTE };
  const SPAN = LIMIT.windowMs + arrivalMargin(LIMIT);

  test('fast retries: the 4th attempt waits until the 1st has left the window plus the arrival margin', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.0001 });
    const token = apiToken('budget');
    h.client.fallback = respond.status(503);
    h.refresher.onToken(token);
    await settle();
    await expectNextCallIn(h, 100, '2nd attempt after the 100 ms floor');
    await expectNextCallIn(h, 100, '3rd attempt');
    assert.equal(await gauge(h.metrics.rateLimitBudget), 0);
    // The 3rd failure wants a retry at 300 ms; the budget says T0 + 60 s + 1.2 s.
    assert.equal(h.timers.nextDueAt(), T0 + SPAN);
    assert.equal(h.status.retryAfterSeconds(h.clock.now()), Math.ceil((SPAN - 200) / 1000), 'the 503 Retry-After of the token API says so');
    assert.ok(h.logs.some((line) => line.includes('exchange delayed by the client-side rate limit')));
    await h.timers.advanceTo(T0 + SPAN - 1);
    assert.equal(h.client.calls.length, 3);
    await h.timers.advanceTo(T0 + SPAN);
    assert.equal(h.client.calls.length, 4, 'the delayed attempt is made, not dropped');
    await h.refresher.stop();
  });

  test('a long run of random failures, SIGHUPs and token flaps never puts more than max calls in a window per token', async () => {
    const h = harness({ rateLimit: LIMIT });
    const prng = mulberry32(0x5eed);
    // Mostly tiny delays, so that the backoff alone would blow through the budget.
    h.setRandom(() => (prng() < 0.8 ? prng() * 0.02 : prng()));
    const responders: readonly Responder[] = [
      respond.status(503),
      respond.status(503),
      respond.networkError(),
      respond.status(429, { 'retry-after': '1' }),
      respond.status(401),
      respond.ok(120),
    ];
    h.client.fallback = (call) => (responders[Math.floor(prng() * responders.length)] ?? respond.ok())(call);
    const a = apiToken('long-run-a');
    const b = apiToken('long-run-b');
    h.refresher.onToken(a);
    let current = a;
    for (let step = 0; step < 1_500; step += 1) {
      await h.timers.advance(Math.floor(prng() * 5 * SECOND));
      const event = prng();
      if (event < 0.03) {
        current = current === a ? b : a;
        h.refresher.onToken(current);
      } else if (event < 0.08) {
        h.refresher.onToken(current); // SIGHUP
      } else if (event < 0.09) {
        h.refresher.onInvalidToken({ ok: false, problem: 'empty', message: 'token file /secrets/token is empty' });
      }
    }
    await settle();
    assert.ok(h.logs.some((line) => line.includes('exchange delayed by the client-side rate limit')), 'the budget had to hold calls back');
    for (const token of [a, b]) {
      const times = callTimes(h, token);
      assert.ok(times.length > 30, `the run made ${String(times.length)} calls for ${token.fingerprint}`);
      for (let i = 0; i + LIMIT.max < times.length; i += 1) {
        const first = times[i] ?? 0;
        const later = times[i + LIMIT.max] ?? 0;
        assert.ok(later - first >= SPAN, `calls ${String(i)} and ${String(i + LIMIT.max)} for ${token.fingerprint} are ${String(later - first)} ms apart`);
      }
    }
    await h.refresher.stop();
  });

  test('restore with max recent exchanges for the token delays the first exchange (crash-loop protection)', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.5 });
    const token = apiToken('crash-loop');
    const other = apiToken('crash-loop-other');
    const exchanges: ExchangeRecord[] = [
      { atMs: T0 - 30 * SECOND, fingerprint: token.fingerprint },
      { atMs: T0 - 20 * SECOND, fingerprint: token.fingerprint },
      { atMs: T0 - 10 * SECOND, fingerprint: token.fingerprint },
      { atMs: T0 - 5 * SECOND, fingerprint: other.fingerprint },
    ];
    h.refresher.restore({ ...EMPTY_STATE, exchanges }, undefined);
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 0, 'no exchange yet');
    assert.equal(await gauge(h.metrics.rateLimitBudget), 0);
    await expectNextCallIn(h, SPAN - 30 * SECOND, 'the first exchange once the oldest restored record leaves the window');
    assert.ok(h.served() !== undefined);
    await h.refresher.stop();
  });

  test('records of other tokens and stale records do not delay the first exchange', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.5 });
    const token = apiToken('restore-free');
    const other = apiToken('restore-free-other');
    const exchanges: ExchangeRecord[] = [
      { atMs: T0 - SPAN - 1, fingerprint: token.fingerprint },
      { atMs: T0 - 20 * SECOND, fingerprint: token.fingerprint },
      { atMs: T0 - 10 * SECOND, fingerprint: token.fingerprint },
      { atMs: T0 - 5 * SECOND, fingerprint: other.fingerprint },
    ];
    h.refresher.restore({ ...EMPTY_STATE, exchanges }, undefined);
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 1);
    await h.refresher.stop();
  });

  test('a token rotation spends the new token\'s budget, not the old one\'s', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.0001 });
    const a = apiToken('rot-budget-a');
    const b = apiToken('rot-budget-b');
    h.client.fallback = respond.status(503);
    h.refresher.onToken(a);
    await settle();
    await h.timers.advance(100);
    await h.timers.advance(100);
    assert.equal(callTimes(h, a).length, 3);
    h.refresher.onToken(b);
    await settle();
    assert.deepEqual(callTimes(h, b), [T0 + 200], 'the new token is exchanged at once');
    await h.refresher.stop();
  });
});

describe('restart: reuse of the JWT on disk', () => {
  const token = apiToken('restart');

  function onDisk(lifetimeLeftMs: number): { held: HeldJwt; state: SidecarState } {
    const issuedAtMs = T0 - 100 * SECOND;
    const jwt = makeJwt(issuedAtMs, 900);
    const held: HeldJwt = { jwt, tokenType: 'Bearer', expiresAtMs: T0 + lifetimeLeftMs };
    const state: SidecarState = {
      tokenFingerprint: token.fingerprint,
      jwtFingerprint: fingerprint(jwt),
      issuedAtMs,
      expiresAtMs: T0 + lifetimeLeftMs,
      refreshAtMs: T0 + 530 * SECOND,
      // The exchange that issued it has left the budget's window; a later failed attempt has not.
      exchanges: [
        { atMs: issuedAtMs, fingerprint: token.fingerprint },
        { atMs: T0 - 10 * SECOND, fingerprint: token.fingerprint },
      ],
    };
    return { held, state };
  }

  test('same token, fresh JWT: no exchange, served once rewritten, next exchange at the saved refresh point', async () => {
    const h = harness({ random: 0.5 });
    const { held, state } = onDisk(800 * SECOND);
    h.refresher.restore(state, held);
    const release = h.store.hold();
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 0, 'no exchange');
    assert.equal(h.served(), undefined, 'not served before the store write has finished');
    release();
    await settle();
    assert.equal(h.client.calls.length, 0);
    assert.equal(h.store.onDisk(), held.jwt, 'the same JWT rewritten');
    assert.equal(h.served(), held.jwt);
    assert.deepEqual(h.written, [held]);
    assert.equal(h.store.states.at(-1)?.refreshAtMs, state.refreshAtMs, 'the saved refresh point is kept');
    assert.deepEqual(h.store.states.at(-1)?.exchanges, [{ atMs: T0 - 10 * SECOND, fingerprint: token.fingerprint }], 'and the budget records still in the window');
    assert.equal(h.timers.nextDueAt(), state.refreshAtMs);
    await h.timers.advanceTo((state.refreshAtMs ?? 0) - 1);
    assert.equal(h.client.calls.length, 0);
    await h.timers.advance(1);
    assert.equal(h.client.calls.length, 1, 'exchanged at the refresh point');
    assert.equal(h.client.calls[0]?.token, token.value);
    await h.refresher.stop();
  });

  test('a different token: exchange at once', async () => {
    const h = harness({ random: 0.5 });
    const { held, state } = onDisk(800 * SECOND);
    h.refresher.restore(state, held);
    const rotated = apiToken('restart-rotated');
    h.refresher.onToken(rotated);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.token, rotated.value);
    assert.notEqual(h.store.onDisk(), held.jwt);
    await h.refresher.stop();
  });

  for (const [left, what] of [[MIN_TTL_MS, 'exactly min-ttl left'], [MIN_TTL_MS - 1, 'less than min-ttl left'], [-SECOND, 'already expired']] as const) {
    test(`same token, JWT with ${what}: exchange at once`, async () => {
      const h = harness({ random: 0.5 });
      const { held, state } = onDisk(left);
      h.refresher.restore(state, held);
      h.refresher.onToken(token);
      await settle();
      assert.equal(h.client.calls.length, 1);
      assert.notEqual(h.served(), held.jwt);
      await h.refresher.stop();
    });
  }

  test('a state file that describes another JWT does not vouch for the one on disk: exchange at once', async () => {
    const h = harness({ random: 0.5 });
    const { held, state } = onDisk(800 * SECOND);
    h.refresher.restore({ ...state, jwtFingerprint: 'deadbeef' }, held);
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 1);
    await h.refresher.stop();
  });

  test('the earlier of the state\'s and the JWT\'s expiry decides', async () => {
    const h = harness({ random: 0.5 });
    const { held, state } = onDisk(800 * SECOND);
    h.refresher.restore({ ...state, expiresAtMs: T0 + MIN_TTL_MS }, held);
    h.refresher.onToken(token);
    await settle();
    assert.equal(h.client.calls.length, 1);
    await h.refresher.stop();
  });
});

describe('JWT file write failures', () => {
  test('a failed write keeps the old JWT, is counted, and is retried with backoff without a new exchange', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('write-failure'));
    const old = h.store.onDisk();
    assert.ok(old !== undefined);

    h.setRandom(1);
    h.store.failNext = 2;
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2, 'the refresh exchanged');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'failure'), 1);
    assert.equal(h.served(), old, 'the old JWT is still served');
    assert.equal(h.store.onDisk(), old);
    assert.equal(h.written.length, 1, 'onWritten not fired for the failed write');
    assert.match(notReadyReason(h, T0 + 900 * SECOND), /ENOSPC/, 'readiness will name the write failure once the old JWT runs out');

    const attempts = h.store.writeAttempts;
    await h.timers.advance(1 * SECOND - 1);
    assert.equal(h.store.writeAttempts, attempts, 'not retried before 1 s');
    await h.timers.advance(1);
    assert.equal(h.store.writeAttempts, attempts + 1, 'retried after 1 s');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'failure'), 2);
    assert.equal(h.served(), old);
    await h.timers.advance(2 * SECOND);
    assert.equal(h.store.writeAttempts, attempts + 2, 'retried 2 s later');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'failure'), 2);
    assert.equal(await counter(h.metrics.jwtFileWrites, 'success'), 2);
    const fresh = h.store.onDisk();
    assert.notEqual(fresh, old);
    assert.equal(h.served(), fresh, 'the new JWT is served once written');
    assert.equal(h.written.at(-1)?.jwt, fresh);
    assert.equal(h.client.calls.length, 2, 'no new exchange for the rewrite');
    assert.equal(h.store.states.at(-1)?.jwtFingerprint, fingerprint(fresh ?? ''));
    await h.refresher.stop();
  });

  test('the first write failing: nothing served until the retry succeeds', async () => {
    const h = harness({ random: 1 });
    h.store.failNext = 1;
    await start(h, apiToken('first-write-failure'));
    assert.equal(h.served(), undefined);
    assert.equal(h.status.readiness(h.clock.now()).ready, false);
    await h.timers.advance(1 * SECOND);
    assert.ok(h.served() !== undefined);
    assert.equal(h.client.calls.length, 1);
    await h.refresher.stop();
  });
});

describe('stop', () => {
  test('aborts the exchange in flight and resolves promptly; no calls after it', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('stop');
    await start(h, token);
    h.client.enqueue(respond.hang());
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2);
    const signal = h.client.calls[1]?.signal;
    assert.equal(signal?.aborted, false);

    let stopped = false;
    const stopping = h.refresher.stop().then(() => { stopped = true; });
    await settle();
    assert.equal(signal.aborted, true, 'the fake client saw its signal aborted');
    assert.equal(stopped, true, 'stop() resolved without any time passing');
    await stopping;
    assert.equal(h.failures.length, 0, 'a shutdown is not an exchange failure');

    h.refresher.onToken(apiToken('after-stop'));
    h.refresher.onToken(token);
    await h.timers.advance(3_600 * SECOND);
    assert.equal(h.client.calls.length, 2, 'no call after stop');
    assert.equal(h.timers.pending, 0, 'no timer left behind');
  });

  test('while waiting for the next refresh or a write retry: nothing fires after it', async () => {
    const h = harness({ random: 1 });
    h.store.failNext = 1;
    await start(h, apiToken('stop-idle'));
    assert.equal(h.timers.pending, 2, 'a refresh timer and a write-retry timer');
    await h.refresher.stop();
    assert.equal(h.timers.pending, 0);
    await h.timers.advance(3_600 * SECOND);
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.store.writeAttempts, 1);
  });
});

describe('token rotation during an exchange in flight', () => {
  // The old token's outcome must not overwrite the "now" that onToken(new) set while the exchange was in flight.
  const outcomes: readonly (readonly [string, () => Responder])[] = [
    ['succeeds', () => respond.ok()],
    ['fails with 503', () => respond.status(503)],
    ['fails with 429 Retry-After 30', () => respond.status(429, { 'retry-after': '30' })],
    ['fails with 401', () => respond.status(401)],
  ];
  for (const [outcome, answer] of outcomes) {
    test(`the old token's exchange ${outcome} after the rotation: the new token is exchanged next, at once`, async () => {
      const h = harness({ random: 0.5 });
      const a = apiToken(`inflight-a-${outcome.replaceAll(' ', '-')}`);
      const b = apiToken(`inflight-b-${outcome.replaceAll(' ', '-')}`);
      const pending = respond.later();
      h.client.enqueue(pending.responder);
      h.refresher.onToken(a);
      await settle();
      assert.equal(h.client.calls.length, 1);

      await h.timers.advance(200);
      h.refresher.onToken(b);
      await settle();
      assert.equal(h.client.calls.length, 1, 'one exchange in flight at most');

      await h.timers.advance(300);
      pending.answer(answer());
      await settle();
      assert.equal(h.client.calls.length, 2, 'the new token is exchanged as soon as the old exchange ends');
      assert.equal(h.client.calls[1]?.token, b.value);
      assert.equal(h.client.calls[1].atMs, T0 + 500);
      assert.equal(h.store.states.at(-1)?.tokenFingerprint, b.fingerprint, 'the new token\'s JWT is the one on disk');
      await h.refresher.stop();
    });
  }

  test('the old token\'s exchange is aborted by neither the rotation nor the new token: one exchange in flight at most', async () => {
    const h = harness({ random: 0.5 });
    const pending = respond.later();
    h.client.enqueue(pending.responder);
    h.refresher.onToken(apiToken('one-in-flight-a'));
    await settle();
    for (const name of ['one-in-flight-b', 'one-in-flight-c']) {
      h.refresher.onToken(apiToken(name));
      await h.timers.advance(100);
    }
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.signal.aborted, false);
    pending.answer(respond.ok());
    await h.refresher.stop();
  });
});

describe('token rotation while healthy', () => {
  test('a new token is exchanged at once and its JWT replaces the old one', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('rotate-old'));
    const old = h.store.onDisk();
    await h.timers.advance(100 * SECOND);
    const fresh = apiToken('rotate-new');
    h.refresher.onToken(fresh);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.token, fresh.value);
    assert.equal(h.client.calls[1].atMs, T0 + 100 * SECOND);
    assert.notEqual(h.served(), old);
    assert.equal(h.store.states.at(-1)?.tokenFingerprint, fresh.fingerprint);
    assert.equal(h.timers.nextDueAt(), T0 + 100 * SECOND + 630 * SECOND);
    await h.refresher.stop();
  });

  test('back to the token the JWT on disk belongs to, before the new one got a JWT: no exchange until its refresh point', async () => {
    const h = harness({ random: 1 });
    const a = apiToken('flap-a');
    await start(h, a);
    const jwt = h.store.onDisk();
    h.client.enqueue(respond.status(503));
    h.refresher.onToken(apiToken('flap-b'));
    await settle();
    h.refresher.onToken(a);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.served(), jwt);
    assert.equal(h.timers.nextDueAt(), T0 + 720 * SECOND);
    await h.refresher.stop();
  });
});

describe('invalid token reads', () => {
  test('keep the last good token: the next scheduled refresh still uses it', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('keep');
    await start(h, token);
    const jwt = h.store.onDisk();
    h.refresher.onInvalidToken({ ok: false, problem: 'malformed', message: 'token file /secrets/token does not hold a valid API token: it does not start with ek_live_' });
    assert.equal(await counter(h.metrics.tokenFileReloads, 'invalid'), 1);
    assert.equal(h.served(), jwt, 'the last good JWT stays served');
    assert.ok(h.logs.some((line) => line.includes('keeping the last good API token') && line.includes(token.fingerprint)));
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.token, token.value);
    await h.refresher.stop();
  });

  test('before any good token: readiness says why, nothing is exchanged', async () => {
    const h = harness({ random: 0.5 });
    h.refresher.onInvalidToken({ ok: false, problem: 'missing', message: 'token file /secrets/token does not exist' });
    await h.timers.advance(10 * MINUTE);
    assert.equal(h.client.calls.length, 0);
    assert.match(notReadyReason(h, h.clock.now()), /does not exist/);
    await h.refresher.stop();
  });
});

describe('secrets', () => {
  test('no API token or JWT appears in any log line, failure message or readiness reason of the scenarios above', () => {
    assert.ok(EXPOSED.length > 100, `the scenarios logged (${String(EXPOSED.length)} lines)`);
    assert.ok(SECRETS.size > 20);
    const leaks: string[] = [];
    for (const secret of SECRETS) {
      // The whole secret, and its distinctive tail (a JWT's signature, a token's key after the prefix).
      const tail = secret.startsWith('ek_live_') ? secret.slice('ek_live_'.length) : secret.slice(secret.lastIndexOf('.') + 1);
      for (const text of EXPOSED) if (text.includes(secret) || text.includes(tail)) leaks.push(`${fingerprint(secret)} in ${text.slice(0, 200)}`);
    }
    assert.deepEqual(leaks, []);
  });
});

