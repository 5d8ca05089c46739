// The fake Enkryptify API must keep the upstream contract, or every test built on it proves nothing.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { decodeJwt, jwtVerify } from 'jose';
import {
  EXCHANGE_PATH,
  MALFORMED_KINDS,
  MAX_BODY_BYTES,
  STATUS_FAULTS,
  fingerprint,
  maxInAnyWindow,
  startFakeApi,
  type FakeApi,
  type FakeApiOptions,
  type MalformedKind,
} from '../../testkit/fake-api/server.ts';

const TOKEN = 'ek_live_test_ok_0001';
const FORBIDDEN = 'ek_live_test_forbidden';
const T0 = 1_800_000_000_000;

const servers: FakeApi[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(options: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startFakeApi({ tokens: { [TOKEN]: 'ok', [FORBIDDEN]: 'forbidden' }, ...options });
  servers.push(api);
  return api;
}

/** A clock the test moves by hand. */
function manualClock(startMs = T0): { now: () => number; set: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, set: (ms) => { t = ms; } };
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function exchange(api: FakeApi, token: string | null = TOKEN, init: RequestInit = {}): Promise<Answer> {
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(api.url + EXCHANGE_PATH, { method: 'POST', headers, redirect: 'manual', ...init });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function object(answer: Answer): Record<string, unknown> {
  const value: unknown = JSON.parse(answer.text);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'a JSON object');
  return value as Record<string, unknown>;
}

function assertMessage(answer: Answer, status: number): void {
  assert.equal(answer.status, status);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  const body = object(answer);
  assert.deepEqual(Object.keys(body), ['message']);
  assert.equal(typeof body.message, 'string');
}

function assertRateHeaders(answer: Answer, limit: number, remaining: number, reset?: number): void {
  assert.equal(answer.headers.get('ratelimit-limit'), String(limit));
  assert.equal(answer.headers.get('ratelimit-remaining'), String(remaining));
  if (reset !== undefined) assert.equal(answer.headers.get('ratelimit-reset'), String(reset));
}

void describe('exchange', () => {
  void test('a valid token gets exactly the documented body with a verifiable JWT', async () => {
    const api = await start();
    const before = Date.now() / 1000;
    const answer = await exchange(api);
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const body = object(answer);
    assert.deepEqual(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'tokenType']);
    assert.equal(body.tokenType, 'Bearer');
    assert.equal(body.expiresIn, 900);
    assert.equal(typeof body.accessToken, 'string');
    const { payload } = await jwtVerify(String(body.accessToken), api.jwtKey);
    assert.ok(payload.exp !== undefined && Math.abs(payload.exp - (before + 900)) < 2, 'exp = now + expiresIn');
    assert.ok(typeof payload.iat === 'number' && typeof payload.jti === 'string' && typeof payload.sub === 'string');
    assert.ok(!payload.sub.includes(TOKEN), 'sub is not the token');
    assertRateHeaders(answer, 10, 9, 60);
    const second = object(await exchange(api));
    assert.notEqual(decodeJwt(String(second.accessToken)).jti, payload.jti, 'jti is unique');
    assert.deepEqual(api.issued(), [body.accessToken, second.accessToken]);
  });

  void test('a fractional lifetime is kept exactly, in expiresIn and in exp', async () => {
    const clock = manualClock(T0 + 123);
    const api = await start({ lifetimeSec: 1.5, now: clock.now });
    const body = object(await exchange(api));
    assert.equal(body.expiresIn, 1.5);
    assert.equal(decodeJwt(String(body.accessToken)).exp, (T0 + 123) / 1000 + 1.5);
  });

  void test('401 for a missing, garbled, unknown or revoked token; 403 for a forbidden one', async () => {
    const api = await start();
    assertMessage(await exchange(api, null), 401);
    assertMessage(await exchange(api, null, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }), 401);
    assertMessage(await exchange(api, null, { headers: { authorization: 'Bearer' } }), 401);
    assertMessage(await exchange(api, 'ek_live_unknown'), 401);
    assertMessage(await exchange(api, FORBIDDEN), 403);
    api.revoke(TOKEN);
    assertMessage(await exchange(api), 401);
    api.allow(TOKEN);
    assert.equal((await exchange(api)).status, 200);
  });

  void test('acceptAnyToken takes any well-formed ek_live_ token, and nothing else', async () => {
    const api = await start({ acceptAnyToken: true });
    assert.equal((await exchange(api, 'ek_live_anything')).status, 200);
    assertMessage(await exchange(api, 'sk_live_other'), 401);
    api.revoke('ek_live_anything');
    assertMessage(await exchange(api, 'ek_live_anything'), 401);
  });

  void test('unknown path is 404, wrong method 405 with Allow', async () => {
    const api = await start();
    const missing = await fetch(`${api.url}/v1/nope`, { method: 'POST' });
    assertMessage({ status: missing.status, headers: missing.headers, text: await missing.text() }, 404);
    const get = await fetch(api.url + EXCHANGE_PATH);
    assertMessage({ status: get.status, headers: get.headers, text: await get.text() }, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.ok(get.headers.has('ratelimit-limit'));
  });

  void test('only loopback hosts are accepted', async () => {
    await assert.rejects(startFakeApi({ host: '0.0.0.0' }), /not a loopback/);
  });
});

void describe('rate limits', () => {
  void test('the 11th request in a window is 429; the window rolls, it is not fixed', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now });
    clock.set(T0 + 30_000);
    for (let i = 1; i <= 10; i++) assertRateHeaders(await exchange(api), 10, 10 - i, 60);
    const limited = await exchange(api);
    assertMessage(limited, 429);
    assert.equal(limited.headers.get('retry-after'), '60');
    assertRateHeaders(limited, 10, 0, 60);
    // A fixed minute would have reset here; the rolling window still holds the 11 requests of T0+30s.
    clock.set(T0 + 61_000);
    const still = await exchange(api);
    assertMessage(still, 429);
    assert.equal(still.headers.get('retry-after'), '29');
    clock.set(T0 + 90_001);
    const again = await exchange(api);
    assert.equal(again.status, 200);
    assertRateHeaders(again, 10, 8, 31); // T0+61s and this one are in the window
    assert.equal(api.maxInAnyWindow(TOKEN), 12); // [T0+30s, T0+90s) holds the 11 and T0+61s
    assert.equal(api.countFor(TOKEN), 13);
  });

  void test('Retry-After can be an HTTP-date', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now, limit: 1, retryAfterFormat: 'http-date' });
    await exchange(api);
    const limited = await exchange(api);
    assert.equal(limited.status, 429);
    assert.equal(Date.parse(limited.headers.get('retry-after') ?? ''), T0 + 60_000);
  });

  void test('the per-IP limit counts every token together', async () => {
    const api = await start({ acceptAnyToken: true, ipLimit: 3 });
    for (const t of ['ek_live_a', 'ek_live_b', 'ek_live_c']) assert.equal((await exchange(api, t)).status, 200);
    const limited = await exchange(api, 'ek_live_d');
    assertMessage(limited, 429);
    assert.match(String(object(limited).message), /IP/);
    assertRateHeaders(limited, 3, 0);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  void test('maxInAnyWindow counts half-open windows, like the limiter', () => {
    assert.equal(maxInAnyWindow([], 60_000), 0);
    assert.equal(maxInAnyWindow([0, 100, 59_999, 60_000, 60_050, 120_000], 60_000), 4);
    assert.equal(maxInAnyWindow([0, 60_000, 120_000], 60_000), 1);
    assert.equal(maxInAnyWindow([5, 5, 5], 1), 3);
  });

  void test('maxInAnyWindow and countFor read the log, per token', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now, acceptAnyToken: true });
    for (const at of [0, 10_000, 50_000, 65_000, 69_000, 200_000]) {
      clock.set(T0 + at);
      await exchange(api);
    }
    await exchange(api, 'ek_live_other');
    assert.equal(api.countFor(TOKEN), 6);
    assert.equal(api.maxInAnyWindow(TOKEN), 4); // 10s, 50s, 65s, 69s
    assert.equal(api.maxInAnyWindow(TOKEN, 20_000), 3);
    assert.equal(api.countFor('ek_live_other'), 1);
    assert.equal(api.log[0]?.tokenFingerprint, fingerprint(TOKEN));
    api.reset();
    assert.equal(api.countFor(TOKEN), 0);
    assert.deepEqual(api.issued(), []);
  });
});

void describe('faults', () => {
  void test('status faults answer their status with {"message"}; a 429 carries the Retry-After given', async () => {
    const api = await start();
    for (const status of STATUS_FAULTS) {
      api.enqueue(status);
      const answer = await exchange(api);
      assertMessage(answer, Number(status));
      assert.ok(answer.headers.has('ratelimit-remaining'));
    }
    api.enqueue({ fault: '429', retryAfter: 7 });
    api.enqueue({ fault: '429', retryAfter: 'Wed, 21 Oct 2026 07:28:00 GMT' });
    assert.equal((await exchange(api)).headers.get('retry-after'), '7');
    assert.equal((await exchange(api)).headers.get('retry-after'), 'Wed, 21 Oct 2026 07:28:00 GMT');
    assert.equal((await exchange(api)).status, 200, 'the queue is empty again');
  });

  void test('a mode persists until cleared; the queue comes first', async () => {
    const api = await start();
    await api.setMode('503');
    api.enqueue('500', 2);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await exchange(api)).status);
    assert.deepEqual(statuses, [500, 500, 503, 503]);
    await api.setMode('ok');
    assert.equal((await exchange(api)).status, 200);
    assert.deepEqual(api.log.map((e) => e.fault ?? 'none'), ['500', '500', '503', '503', 'none']);
  });

  const lifetimeOf = (body: Record<string, unknown>): number => (decodeJwt(String(body.accessToken)).exp ?? 0) - Date.now() / 1000;
  const CHECKS: Record<MalformedKind, (answer: Answer, api: FakeApi) => void> = {
    'not-json': (a) => { assert.throws(() => JSON.parse(a.text) as unknown); },
    'json-array': (a) => { assert.ok(Array.isArray(JSON.parse(a.text))); },
    'extra-property': (a) => { assert.deepEqual(Object.keys(object(a)).sort(), ['accessToken', 'expiresIn', 'scope', 'tokenType']); },
    'missing-accessToken': (a) => { assert.deepEqual(Object.keys(object(a)).sort(), ['expiresIn', 'tokenType']); },
    'missing-expiresIn': (a) => { assert.deepEqual(Object.keys(object(a)).sort(), ['accessToken', 'tokenType']); },
    'missing-tokenType': (a) => { assert.deepEqual(Object.keys(object(a)).sort(), ['accessToken', 'expiresIn']); },
    'token-type-not-bearer': (a) => { assert.notEqual(String(object(a).tokenType).toLowerCase(), 'bearer'); },
    'access-token-not-jwt': (a) => { assert.notEqual(String(object(a).accessToken).split('.').length, 3); },
    'access-token-expired': (a) => {
      assert.equal(object(a).expiresIn, 900);
      assert.ok(lifetimeOf(object(a)) < 0, 'exp is past');
    },
    'expires-in-zero': (a) => { assert.equal(object(a).expiresIn, 0); },
    'expires-in-negative': (a) => { assert.ok(Number(object(a).expiresIn) < 0); },
    'expires-in-string': (a) => { assert.equal(typeof object(a).expiresIn, 'string'); },
    'expires-in-null': (a) => { assert.equal(object(a).expiresIn, null); },
    'expires-in-infinite': (a) => { assert.equal(object(a).expiresIn, Infinity); },
    'short-lifetime': (a) => {
      assert.equal(object(a).expiresIn, 30);
      assert.ok(Math.abs(lifetimeOf(object(a)) - 30) < 2);
    },
    'body-too-large': (a) => {
      assert.ok(Buffer.byteLength(a.text) > MAX_BODY_BYTES);
      assert.equal(object(a).tokenType, 'Bearer', 'only the size is wrong');
    },
    'wrong-content-type': (a) => {
      assert.doesNotMatch(a.headers.get('content-type') ?? '', /json/);
      assert.equal(object(a).tokenType, 'Bearer');
    },
    redirect: (a, api) => { assert.equal(a.headers.get('location'), api.url + EXCHANGE_PATH); },
  };

  void test('every malformed kind produces what it says, once', async () => {
    const api = await start({ limit: 100 });
    for (const kind of MALFORMED_KINDS) {
      api.enqueue(kind);
      const answer = await exchange(api);
      assert.equal(answer.status, kind === 'redirect' ? 302 : 200, kind);
      if (kind !== 'wrong-content-type') assert.match(answer.headers.get('content-type') ?? '', /^application\/json/, kind);
      assert.ok(answer.headers.has('ratelimit-remaining'), kind);
      CHECKS[kind](answer, api);
      assert.equal(api.log.at(-1)?.fault, kind);
    }
    assert.equal((await exchange(api)).status, 200);
  });

  void test('short-lifetime takes its lifetime; slow answers correctly, late', async () => {
    const api = await start();
    api.enqueue({ fault: 'short-lifetime', lifetimeSec: 5 });
    assert.equal(object(await exchange(api)).expiresIn, 5);
    api.enqueue({ fault: 'slow', delayMs: 150 });
    const started = performance.now();
    const answer = await exchange(api);
    assert.equal(answer.status, 200);
    assert.ok(performance.now() - started >= 140, 'answered after the delay');
  });

  void test('hang holds the request open; close() destroys it', async () => {
    const api = await start();
    api.enqueue('hang', 2);
    await assert.rejects(exchange(api, TOKEN, { signal: AbortSignal.timeout(150) }), { name: 'TimeoutError' });
    assert.equal(api.log[0]?.status, 0);
    const pending = exchange(api);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = performance.now();
    await api.close();
    await assert.rejects(pending);
    assert.ok(performance.now() - closing < 500, 'close does not wait for the hanging request');
  });

  void test('reset drops the connection without an answer', async () => {
    const api = await start();
    api.enqueue('reset');
    await assert.rejects(exchange(api), TypeError);
    assert.equal(api.log[0]?.fault, 'reset');
    assert.equal((await exchange(api)).status, 200);
  });

  void test('down refuses connections until up(), on the same port; a queued down comes back by itself', async () => {
    const api = await start();
    const { port } = api;
    await api.down();
    await assert.rejects(exchange(api), (error: Error) => (error.cause as NodeJS.ErrnoException).code === 'ECONNREFUSED');
    await api.up();
    assert.equal(api.port, port);
    assert.equal((await exchange(api)).status, 200);
    api.enqueue({ fault: 'down', downMs: 100 });
    await assert.rejects(exchange(api));
    await assert.rejects(exchange(api), (error: Error) => (error.cause as NodeJS.ErrnoException).code === 'ECONNREFUSED');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await exchange(api)).status, 200);
    await api.setMode('down');
    await assert.rejects(exchange(api));
    await api.setMode('ok');
    assert.equal((await exchange(api)).status, 200);
  });
});

void describe('secrets and control', () => {
  void test('the log never holds a token or a JWT', async () => {
    const api = await start();
    await exchange(api);
    const log = JSON.stringify(api.log);
    assert.ok(!log.includes(TOKEN));
    for (const jwt of api.issued()) assert.ok(!log.includes(jwt));
  });

  void test('the control API is off by default', async () => {
    const api = await start();
    const res = await fetch(`${api.url}/__control/log`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });

  void test('the CLI serves the same API with its control routes, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['testkit/fake-api/cli.ts', '--token', TOKEN, '--limit', '2', '--lifetime', '60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    output += line;
    const { url } = JSON.parse(line) as { url: string; port: number };
    const control = async (path: string, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await fetch(url + path, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
      return (await res.json()) as Record<string, unknown>;
    };
    const post = async (): Promise<number> => (await fetch(url + EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status;
    await control('/__control/enqueue', { fault: '502', count: 1 });
    assert.deepEqual([await post(), await post(), await post()], [502, 200, 429]);
    const log = await control('/__control/log');
    assert.deepEqual(log.counts, { [fingerprint(TOKEN)]: 3 });
    assert.deepEqual(log.maxInWindow, { [fingerprint(TOKEN)]: 3 });
    assert.equal((await control('/__control/enqueue', { fault: 'nope' })).message !== undefined, true);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.ok(!output.includes(TOKEN), 'no token on stdout or stderr');
  });
});
