import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_TIMEOUTS, type RunningServer } from '../../src/http/server.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { ServedJwt } from '../../src/refresh/served-jwt.ts';
import { startTokenServer, wantsJson } from '../../src/http/token-api.ts';

const T0 = 1_700_000_000_000;
const MIN_TTL_MS = 60_000;
const API_TOKEN = 'ek_live_test0123456789abcdef';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDA5MDB9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const TOKEN_HEADERS = { 'Ek-Sidecar-Request': 'true' };

const clock = { nowMs: T0, now: (): number => clock.nowMs, monotonic: (): number => clock.nowMs };
const served = new ServedJwt(MIN_TTL_MS, clock);
const credentials = { isApiToken: (presented: string): boolean => presented === API_TOKEN };
const metrics = createMetrics({ defaultMetrics: false });
let server: RunningServer;
let port = 0;

interface Answer {
  readonly code: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}
/** Every error answer seen, for the leak check at the end. */
const errorAnswers: Answer[] = [];

interface Call {
  readonly method?: string;
  readonly path?: string;
  /** Host defaults to 127.0.0.1:port; null sends none. */
  readonly host?: string | null;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string;
  /** Sent as a chunked stream. */
  readonly chunks?: readonly Buffer[];
}

function call(c: Call, toPort = port, address = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const host = c.host === undefined ? `127.0.0.1:${toPort}` : c.host;
    const headers: OutgoingHttpHeaders = { ...c.headers };
    if (host !== null) headers.host = host;
    let answered = false;
    const req = request(
      { host: address, port: toPort, method: c.method ?? 'GET', path: c.path ?? '/v1/token', headers, setHost: false, agent: false },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const answer = { code: res.statusCode ?? 0, headers: res.headers, body };
          if (answer.code >= 400) errorAnswers.push(answer);
          resolve(answer);
        });
      },
    );
    // The server may close an oversized upload before the client has finished sending it.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of c.chunks ?? []) req.write(chunk);
    req.end(c.body);
  });
}

async function count(path: string, code: string): Promise<number> {
  const series = (await metrics.tokenRequests.get()).values.find((v) => v.labels.path === path && v.labels.code === code);
  return series?.value ?? 0;
}

function assertMessage(answer: Answer): string {
  assert.equal(answer.headers['content-type'], 'application/json');
  const parsed = JSON.parse(answer.body) as { message?: unknown };
  assert.equal(typeof parsed.message, 'string');
  return String(parsed.message);
}

function hold(expiresInMs: number): void {
  served.install({ jwt: JWT, tokenType: 'Bearer', expiresAtMs: clock.nowMs + expiresInMs, expiresAtMonoMs: clock.nowMs + expiresInMs });
}

before(async () => {
  server = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock });
  port = server.address.port;
});
after(() => server.close());

void describe('GET /v1/token', () => {
  void it('binds the port it was given (0 = any) and uses the SPEC timeouts by default', () => {
    assert.ok(port > 0);
    assert.equal(DEFAULT_TIMEOUTS.headersTimeoutMs, 5000);
    assert.equal(DEFAULT_TIMEOUTS.requestTimeoutMs, 10_000);
  });

  void it('answers 503 with Retry-After before any JWT is held', async () => {
    served.setNextAttempt(T0 + 30_500);
    const answer = await call({ headers: TOKEN_HEADERS });
    assert.equal(answer.code, 503);
    assert.equal(answer.headers['retry-after'], '31');
    assert.equal(answer.headers['cache-control'], 'no-store');
    assertMessage(answer);
  });

  void it('serves the raw JWT as text/plain, without a newline, never cached', async () => {
    hold(900_000);
    const answer = await call({ headers: TOKEN_HEADERS });
    assert.equal(answer.code, 200);
    assert.equal(answer.body, JWT);
    assert.match(answer.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal(answer.headers['cache-control'], 'no-store');
  });

  void it('serves the json form with Accept: application/json', async () => {
    clock.nowMs = T0 + 100_500;
    const answer = await call({ headers: { ...TOKEN_HEADERS, Accept: 'text/html, application/json;q=0.5' } });
    assert.equal(answer.code, 200);
    assert.equal(answer.headers['content-type'], 'application/json');
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.deepEqual(JSON.parse(answer.body), {
      accessToken: JWT,
      tokenType: 'Bearer',
      expiresAt: new Date(T0 + 900_000).toISOString(),
      expiresIn: 799,
    });
  });

  void it('reads Accept properly: q=0 refuses json, */* and absence mean text', () => {
    assert.equal(wantsJson('application/json'), true);
    assert.equal(wantsJson('text/plain; q=0.9, Application/JSON ; q=0.1'), true);
    assert.equal(wantsJson('application/json;q=0'), false);
    assert.equal(wantsJson('application/json; q=0.000'), false);
    assert.equal(wantsJson('application/jsonx'), false);
    assert.equal(wantsJson('*/*'), false);
    assert.equal(wantsJson(undefined), false);
  });

  void it('answers HEAD like GET without a body', async () => {
    const answer = await call({ method: 'HEAD', headers: TOKEN_HEADERS });
    assert.equal(answer.code, 200);
    assert.equal(answer.body, '');
    assert.equal(answer.headers['content-length'], String(JWT.length));
  });

  void it('answers 503 once the JWT is within --min-ttl of expiry', async () => {
    clock.nowMs = T0 + 900_000 - MIN_TTL_MS;
    served.setNextAttempt(clock.nowMs + 4_200);
    const answer = await call({ headers: TOKEN_HEADERS });
    assert.equal(answer.code, 503);
    assert.equal(answer.headers['retry-after'], '5');
    assertMessage(answer);
    clock.nowMs = T0;
  });

  void it('requires Ek-Sidecar-Request: true (403)', async () => {
    for (const headers of [{}, { 'Ek-Sidecar-Request': 'false' }]) {
      const answer = await call({ headers });
      assert.equal(answer.code, 403);
      assertMessage(answer);
      assert.match(answer.body, /Ek-Sidecar-Request/);
    }
  });
});

void describe('request guards (every path)', () => {
  const proxied = [
    { 'X-Forwarded-For': '10.0.0.1' },
    { Forwarded: 'for=10.0.0.1' },
    { 'X-Forwarded-Host': 'evil.example' },
    { 'X-Forwarded-Proto': 'https' },
    { 'X-Real-IP': '10.0.0.1' },
    { Via: '1.1 proxy' },
  ];
  for (const path of ['/v1/token', '/v1/auth/exchange', '/nowhere']) {
    void it(`refuses proxied requests (Forwarded, X-Forwarded-*, X-Real-IP, Via) on ${path}`, async () => {
      hold(900_000);
      for (const extra of proxied) {
        const answer = await call({ path, method: path === '/v1/token' ? 'GET' : 'POST', headers: { ...TOKEN_HEADERS, Authorization: `Bearer ${API_TOKEN}`, ...extra } });
        assert.equal(answer.code, 403, JSON.stringify(extra));
        assert.match(assertMessage(answer), /X-Forwarded/);
      }
    });

    void it(`refuses a request carrying Origin (a browser) on ${path}`, async () => {
      hold(900_000);
      for (const origin of ['http://rebind.example:9731', 'null', `http://127.0.0.1:${port}`]) {
        const answer = await call({ path, method: path === '/v1/token' ? 'GET' : 'POST', headers: { ...TOKEN_HEADERS, Authorization: `Bearer ${API_TOKEN}`, Origin: origin } });
        assert.equal(answer.code, 403, origin);
        assert.match(assertMessage(answer), /Origin/);
      }
    });
  }

  void it('refuses a foreign, metadata-address or missing Host', async () => {
    hold(900_000);
    for (const host of ['evil.example', '169.254.169.254', `169.254.169.254:${port}`, '0.0.0.0', '127.0.0.1.evil.example', '', null]) {
      const answer = await call({ host, headers: TOKEN_HEADERS });
      assert.equal(answer.code, 403, `Host ${String(host)}`);
      assertMessage(answer);
    }
  });

  void it('accepts loopback Hosts: localhost, 127.x.y.z, [::1], with or without a port', async () => {
    for (const host of ['localhost', `localhost:${port}`, '127.1.2.3', `[::1]:${port}`, '[::1]']) {
      const answer = await call({ host, headers: TOKEN_HEADERS });
      assert.equal(answer.code, 200, `Host ${host}`);
    }
  });

  void it('accepts exactly the --allowed-hosts names besides loopback, case-insensitive, with or without a port', async () => {
    hold(900_000);
    const broker = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, allowedHosts: ['Broker.ek.svc', 'fd00::5'] });
    try {
      const to = broker.address.port;
      for (const host of ['broker.ek.svc', `BROKER.ek.svc:${to}`, '[fd00::5]:9731', 'localhost', `127.0.0.1:${to}`]) {
        assert.equal((await call({ host, headers: TOKEN_HEADERS }, to)).code, 200, `Host ${host}`);
      }
      for (const host of ['broker', 'evil.broker.ek.svc', 'broker.ek.svc.evil.example', 'evil.example']) {
        const answer = await call({ host, headers: TOKEN_HEADERS }, to);
        assert.equal(answer.code, 403, `Host ${host}`);
        assert.match(assertMessage(answer), /Host/);
      }
      // Without the option, a Service name is foreign.
      assert.equal((await call({ host: 'broker.ek.svc', headers: TOKEN_HEADERS })).code, 403);
    } finally {
      await broker.close();
    }
  });

  void it('listens on every interface without a host, and serves loopback peers over IPv4 (mapped) and IPv6', async () => {
    hold(900_000);
    const any = await startTokenServer({ listen: { port: 0 }, served, credentials, metrics, clock });
    try {
      assert.ok(any.address.host === '::' || any.address.host === '0.0.0.0', any.address.host);
      assert.equal((await call({ headers: TOKEN_HEADERS }, any.address.port, '127.0.0.1')).code, 200);
      if (any.address.host === '::') assert.equal((await call({ headers: TOKEN_HEADERS }, any.address.port, '::1')).code, 200);
    } finally {
      await any.close();
    }
  });

  void it('refuses a body over 64 KiB announced by Content-Length (413)', async () => {
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = request({ port, path: '/v1/auth/exchange', method: 'POST', agent: false, headers: { 'Content-Length': 70_000 } });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => {
          resolve({ code: res.statusCode ?? 0, headers: res.headers, body: '' });
        });
      });
      req.on('error', reject);
      req.flushHeaders(); // the body is never sent: the answer must not wait for it
    });
    assert.equal(answer.code, 413);
  });

  void it('refuses a chunked body that grows over 64 KiB (413), accepts one of exactly 64 KiB', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const bearer = { Authorization: `Bearer ${API_TOKEN}` };
    const over = await call({ method: 'POST', path: '/v1/auth/exchange', headers: bearer, chunks: [chunk, chunk, chunk, chunk, chunk] });
    assert.equal(over.code, 413);
    assertMessage(over);
    const exact = await call({ method: 'POST', path: '/v1/auth/exchange', headers: bearer, chunks: [chunk, chunk, chunk, chunk] });
    assert.equal(exact.code, 200);
  });

  void it('cuts off a client whose headers or body arrive too slowly', async () => {
    const timeouts = { headersTimeoutMs: 100, requestTimeoutMs: 200, checkIntervalMs: 20 };
    const slow = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, timeouts });
    try {
      const partialHeaders = 'GET /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n';
      const partialBody = 'POST /v1/auth/exchange HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{';
      for (const partial of [partialHeaders, partialBody]) {
        const started = Date.now();
        const reply = await sendAndWaitForClose(slow.address.port, partial);
        assert.match(reply, /^HTTP\/1\.1 408/);
        assert.ok(Date.now() - started < 1_000);
      }
    } finally {
      await slow.close();
    }
  });
});

/** Write `text` on a raw socket, never finish the request, and collect what comes back until the server closes. */
function sendAndWaitForClose(toPort: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(toPort, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => (received += data));
    socket.on('error', reject);
    socket.on('close', () => {
      resolve(received);
    });
  });
}

void describe('POST /v1/auth/exchange (drop-in)', () => {
  const bearer = { Authorization: `Bearer ${API_TOKEN}` };

  void it('answers the upstream 200 shape to the right bearer, without Ek-Sidecar-Request', async () => {
    hold(900_000);
    clock.nowMs = T0 + 10_400;
    for (const c of [{}, { body: '{"any":"thing"}', headers: { ...bearer, 'Content-Type': 'application/json' } }]) {
      const answer = await call({ method: 'POST', path: '/v1/auth/exchange', headers: bearer, ...c });
      assert.equal(answer.code, 200);
      assert.equal(answer.headers['content-type'], 'application/json');
      assert.equal(answer.headers['cache-control'], 'no-store');
      assert.deepEqual(Object.keys(JSON.parse(answer.body) as object), ['accessToken', 'expiresIn', 'tokenType']);
      assert.deepEqual(JSON.parse(answer.body), { accessToken: JWT, expiresIn: 889, tokenType: 'Bearer' });
    }
    clock.nowMs = T0;
  });

  void it('answers 401 with WWW-Authenticate to a wrong, malformed or missing bearer', async () => {
    for (const authorization of [`Bearer ${API_TOKEN}x`, `Basic ${API_TOKEN}`, 'Bearer ', API_TOKEN, undefined]) {
      const headers = authorization === undefined ? TOKEN_HEADERS : { ...TOKEN_HEADERS, Authorization: authorization };
      const answer = await call({ method: 'POST', path: '/v1/auth/exchange', headers });
      assert.equal(answer.code, 401);
      assert.match(answer.headers['www-authenticate'] ?? '', /^Bearer/);
      assert.equal(answer.headers['ek-sidecar-broker'], '1', 'a chained sidecar can tell the refusal is a broker\'s');
      assertMessage(answer);
    }
  });

  void it('answers 503 with Retry-After when no valid JWT is held', async () => {
    served.install({ jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 - 1, expiresAtMonoMs: T0 - 1 }); // only an expired JWT is held
    served.setNextAttempt(T0 + 2_000);
    const answer = await call({ method: 'POST', path: '/v1/auth/exchange', headers: bearer });
    assert.equal(answer.code, 503);
    assert.equal(answer.headers['retry-after'], '2');
    assertMessage(answer);
  });
});

void describe('other requests and metrics', () => {
  void it('answers 404 for unknown paths and 405 with Allow for a wrong method', async () => {
    const cases = [
      { method: 'GET', path: '/', code: 404, allow: undefined },
      { method: 'GET', path: '/v1/token/x', code: 404, allow: undefined },
      { method: 'POST', path: '/v1/token', code: 405, allow: 'GET, HEAD' },
      { method: 'DELETE', path: '/v1/token', code: 405, allow: 'GET, HEAD' },
      { method: 'GET', path: '/v1/auth/exchange', code: 405, allow: 'POST' },
    ];
    for (const c of cases) {
      const answer = await call({ method: c.method, path: c.path, headers: TOKEN_HEADERS });
      assert.equal(answer.code, c.code, `${c.method} ${c.path}`);
      assert.equal(answer.headers.allow, c.allow);
      assertMessage(answer);
    }
  });

  void it('counts every answer by known route or other, and code', async () => {
    hold(900_000);
    const before200 = await count('/v1/token', '200');
    const before404 = await count('other', '404');
    const before403 = await count('other', '403');
    await call({ headers: { ...TOKEN_HEADERS, Accept: 'application/json' } });
    await call({ path: '/v1/token?x=1', headers: TOKEN_HEADERS });
    await call({ path: '/metrics' });
    await call({ path: '/metrics', host: 'evil.example' });
    assert.equal(await count('/v1/token', '200'), before200 + 2);
    assert.equal(await count('other', '404'), before404 + 1);
    assert.equal(await count('other', '403'), before403 + 1);
    assert.ok((await count('/v1/auth/exchange', '401')) >= 5);
    assert.ok((await count('/v1/auth/exchange', '413')) >= 2);
  });

  void it('never puts the JWT or the API token in an error answer or in the metrics', async () => {
    assert.ok(errorAnswers.length > 20);
    for (const answer of errorAnswers) {
      const everything = answer.body + JSON.stringify(answer.headers);
      assert.ok(!everything.includes(JWT) && !everything.includes(API_TOKEN), `leak in a ${answer.code} answer`);
    }
    const exposition = await metrics.registry.metrics();
    assert.ok(!exposition.includes(JWT) && !exposition.includes(API_TOKEN));
  });
});
