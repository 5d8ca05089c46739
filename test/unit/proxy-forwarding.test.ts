// What the API proxy does with a request it forwards, in this process: headers both ways, the upstream's answer
// passed back as sent, bodies streamed (never buffered whole) and aborts, the upstream's failures, and the 401 check.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startFakeApi, streamBytes, type Echo, type FakeApi } from '../../testkit/fake-api/server.ts';
import { fingerprint } from '../../testkit/fake-api/server.ts';
import { waitFor } from '../helpers/daemon.ts';
import { API_TOKEN, call, exchangeAtFake, proxied, startProxyHarness, type ProxyHarness } from '../helpers/proxy-harness.ts';

const AUTHORIZED = { authorization: `Bearer ${API_TOKEN}` };

let api: FakeApi;
let h: ProxyHarness;
let jwt = '';

/** An upstream the test drives by hand: each request waits in `pending` until the test answers it. */
interface HandUpstream {
  readonly url: string;
  readonly pending: { req: IncomingMessage; res: ServerResponse; closed: boolean; body: Buffer[] }[];
  close(): Promise<void>;
}

async function handUpstream(): Promise<HandUpstream> {
  const pending: HandUpstream['pending'] = [];
  const server: Server = createServer((req, res) => {
    const entry = { req, res, closed: false, body: [] as Buffer[] };
    req.on('data', (chunk: Buffer) => entry.body.push(chunk));
    res.on('close', () => { entry.closed = true; });
    pending.push(entry);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`,
    pending,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => { resolve(); });
    }),
  };
}

before(async () => {
  api = await startFakeApi({ acceptAnyToken: true });
  jwt = await exchangeAtFake(api.url);
  // --timeout 1 s, and the listener's request deadline far shorter: a streamed answer outlives both.
  h = await startProxyHarness({ apiUrl: api.url, timeoutMs: 1_000, timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 300 } });
  h.hold(jwt);
});
after(async () => {
  await h.close();
  await api.close();
});

void describe('on the way up', () => {
  void it('keeps method, path, query and body; strips hop-by-hop headers and credentials; adds no forwarding header', async () => {
    const body = Buffer.from('{"name":"x","value":"y"}');
    const answer = await call(h.port, {
      method: 'PUT',
      path: '/v1/echo/a%20b/c?x=1&y=%2F&x=2',
      body,
      headers: { ...AUTHORIZED, 'content-type': 'application/json', 'user-agent': 'sdk/1', cookie: 'session=abc', 'ek-sidecar-request': 'true',
        connection: 'keep-alive, x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'x-custom': 'kept' },
    });
    const echo = answer.json() as Echo;
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.target, '/v1/echo/a%20b/c?x=1&y=%2F&x=2');
    assert.equal(echo.body.bytes, body.length);
    assert.deepEqual(echo.authorization, { present: true, kind: 'jwt', fingerprint: fingerprint(jwt) });
    assert.equal(echo.headers['content-type'], 'application/json');
    assert.equal(echo.headers['user-agent'], 'sdk/1');
    assert.equal(echo.headers['x-custom'], 'kept');
    for (const name of ['cookie', 'ek-sidecar-request', 'x-hop', 'keep-alive', 'via', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip']) {
      assert.equal(echo.headers[name], undefined, name);
    }
    assert.match(String(echo.headers.host), /^127\.0\.0\.1:\d+$/);
    assert.notEqual(echo.headers.host, `127.0.0.1:${String(h.port)}`, 'the upstream\'s own Host');
  });
});

void describe('on the way back', () => {
  void it('passes the upstream\'s status, RateLimit-*, Retry-After and body back unchanged', async () => {
    api.enqueue({ fault: '429', retryAfter: 17 }, { route: 'reads' });
    const limited = await call(h.port, { path: '/v1/echo', headers: AUTHORIZED });
    assert.equal(limited.code, 429);
    assert.equal(limited.headers['retry-after'], '17');
    assert.deepEqual(limited.json(), { message: 'injected fault 429' });
    for (const name of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) assert.match(String(limited.headers[name]), /^\d+$/, name);
    api.enqueue('503', { route: 'reads' });
    const failed = await call(h.port, { path: '/v1/echo', headers: AUTHORIZED });
    assert.equal(failed.code, 503);
    assert.deepEqual(failed.json(), { message: 'injected fault 503' }, 'the upstream\'s own 503, not the proxy\'s');
    const head = await call(h.port, { method: 'HEAD', path: '/v1/echo', headers: AUTHORIZED });
    assert.equal(head.code, 200);
    assert.equal(head.body.length, 0);
  });

  void it('passes a redirect back and never follows it', async () => {
    const before = api.log.length;
    const answer = await call(h.port, { path: '/v1/redirect?status=307', headers: AUTHORIZED });
    assert.equal(answer.code, 307);
    assert.equal(answer.headers.location, `${api.url}/v1/echo/redirected`);
    assert.deepEqual(api.log.slice(before).map((entry) => entry.path), ['/v1/redirect']);
  });

  void it('streams a body longer than both the listener\'s request deadline and --timeout, byte for byte', async () => {
    const bytes = 20 * 16 * 1024;
    const answer = await call(h.port, { path: `/v1/stream?bytes=${String(bytes)}&chunkBytes=${String(16 * 1024)}&intervalMs=70`, headers: AUTHORIZED });
    assert.equal(answer.code, 200);
    assert.equal(answer.headers['content-type'], 'application/octet-stream');
    assert.ok(answer.body.equals(streamBytes(bytes)), 'every byte, in order');
  });
});

void describe('streaming both ways, without buffering', () => {
  let hand: HandUpstream;
  let p: ProxyHarness;
  before(async () => {
    hand = await handUpstream();
    p = await startProxyHarness({ apiUrl: hand.url, timeoutMs: 5_000 });
    p.hold(jwt);
  });
  after(async () => {
    await p.close();
    await hand.close();
  });

  void it('hands the upstream the first part of a body before the client has sent the rest, and the client the first part of the answer before the upstream has written the rest', async () => {
    const received: Buffer[] = [];
    let status = 0;
    const req = request({ port: p.port, method: 'POST', path: '/v1/upload', agent: false, headers: { ...AUTHORIZED, 'content-type': 'application/octet-stream' } }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => received.push(chunk));
    });
    req.write(Buffer.from('first part;'));
    const upstream = await waitFor(() => hand.pending.find((entry) => entry.body.length > 0), 2_000, () => 'the first part upstream');
    assert.equal(Buffer.concat(upstream.body).toString(), 'first part;');
    req.end('second part');
    await waitFor(() => upstream.req.complete, 2_000, () => 'the whole body upstream');
    assert.equal(Buffer.concat(upstream.body).toString(), 'first part;second part');
    upstream.res.writeHead(200, { 'content-type': 'text/plain' });
    upstream.res.write('head of the answer;');
    await waitFor(() => received.length > 0, 2_000, () => 'the first part of the answer at the client');
    assert.equal(status, 200);
    assert.equal(Buffer.concat(received).toString(), 'head of the answer;');
    upstream.res.end('tail');
    await waitFor(() => Buffer.concat(received).toString() === 'head of the answer;tail', 2_000, () => 'the whole answer');
  });

  void it('aborts the upstream request when the client leaves before the answer, and counts it as 499', async () => {
    const before = await proxied(p.metrics, 'GET', 499);
    const req = request({ port: p.port, path: '/v1/slow', agent: false, headers: AUTHORIZED });
    req.on('error', () => undefined);
    req.end();
    const upstream = await waitFor(() => hand.pending.find((entry) => entry.req.url === '/v1/slow'), 2_000, () => 'the request upstream');
    req.destroy();
    await waitFor(() => upstream.closed, 2_000, () => 'the upstream request aborted');
    await waitFor(async () => await proxied(p.metrics, 'GET', 499) === before + 1, 2_000, () => '499 counted');
  });

  void it('reports a 401 to the JWT held now, and not one to a JWT already replaced', async () => {
    const first = request({ port: p.port, path: '/v1/first', agent: false, headers: AUTHORIZED }, (res) => res.resume());
    first.end();
    const held = await waitFor(() => hand.pending.find((entry) => entry.req.url === '/v1/first'), 2_000, () => 'the request upstream');
    assert.equal(held.req.headers.authorization, `Bearer ${jwt}`);
    const replacement = await exchangeAtFake(api.url);
    p.hold(replacement);
    held.res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"revoked"}');
    await waitFor(async () => await proxied(p.metrics, 'GET', 401) === 1, 2_000, () => 'the first 401 passed back');
    assert.equal(p.unauthorized(), 0, 'the JWT it was sent with is no longer held');

    const second = call(p.port, { path: '/v1/second', headers: AUTHORIZED });
    const now = await waitFor(() => hand.pending.find((entry) => entry.req.url === '/v1/second'), 2_000, () => 'the second request upstream');
    assert.equal(now.req.headers.authorization, `Bearer ${replacement}`);
    now.res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"message":"revoked"}');
    const answer = await second;
    assert.equal(answer.code, 401);
    assert.equal(answer.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.deepEqual(answer.json(), { message: 'revoked' }, 'the upstream\'s answer, passed back');
    assert.equal(p.unauthorized(), 1);
  });
});

void describe('the upstream\'s failures', () => {
  void it('aborts the upstream stream when the client leaves in the middle of it', async () => {
    const received: Buffer[] = [];
    const req = request({ port: h.port, path: '/v1/stream?bytes=4194304&chunkBytes=16384&intervalMs=20', agent: false, headers: AUTHORIZED }, (res) => {
      res.on('data', (chunk: Buffer) => received.push(chunk));
    });
    req.on('error', () => undefined);
    req.end();
    await waitFor(() => received.length > 0, 2_000, () => 'the first bytes');
    req.destroy();
    await waitFor(() => api.log.at(-1)?.aborted === true, 3_000, () => 'the fake saw the stream abandoned');
  });

  void it('answers 504 when no headers come within --timeout, and 502 when the upstream cannot be reached', async () => {
    api.enqueue('hang', { route: 'reads' });
    const hung = await call(h.port, { path: '/v1/echo', headers: AUTHORIZED });
    assert.equal(hung.code, 504);
    assert.match((hung.json() as { message: string }).message, /--timeout/);
    const nowhere = await startProxyHarness({ apiUrl: 'http://127.0.0.1:1' });
    try {
      nowhere.hold(jwt);
      const refused = await call(nowhere.port, { path: '/v1/echo', headers: AUTHORIZED });
      assert.equal(refused.code, 502);
      assert.deepEqual(Object.keys(refused.json() as object), ['message']);
      assert.equal(nowhere.logged.length, 1, 'logged once');
      assert.ok(!nowhere.logged.join('').includes(jwt) && !nowhere.logged.join('').includes(API_TOKEN));
    } finally {
      await nowhere.close();
    }
  });
});
