// The API proxy's guards, in this process against the fake API: who may use it in each mode, and everything it
// refuses before anything reaches the upstream (SPEC.md "Token API" → "The API proxy", "Chaining (broker)").
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { startFakeApi, type Echo, type FakeApi } from '../../testkit/fake-api/server.ts';
import { fingerprint } from '../../testkit/fake-api/server.ts';
import { API_TOKEN, call, exchangeAtFake, proxied, proxiedTotal, startProxyHarness, type Answer, type ProxyHarness } from '../helpers/proxy-harness.ts';

const SECRET_PATH = '/v1/workspace/ws/project/prj/secret/DATABASE_URL?environmentId=env&resolve=true';
const SECRET = 'postgres://proxy-access-value';

let api: FakeApi;
let h: ProxyHarness;
let jwt = '';
const errorBodies: string[] = [];

function assertMessage(answer: Answer, code: number, pattern?: RegExp): void {
  assert.equal(answer.code, code, answer.text());
  assert.match(String(answer.headers['content-type']), /^application\/json/);
  assert.equal(answer.headers['cache-control'], 'no-store');
  const body = answer.json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['message']);
  if (pattern !== undefined) assert.match(String(body.message), pattern);
  errorBodies.push(answer.text());
}

/** The request reached no upstream: the fake's log did not grow. */
async function notForwarded(send: () => Promise<Answer>): Promise<Answer> {
  const before = api.log.length;
  const answer = await send();
  assert.equal(api.log.length, before, 'nothing was forwarded');
  return answer;
}

function echoOf(answer: Answer): Echo {
  assert.equal(answer.code, 200, answer.text());
  return answer.json() as Echo;
}

before(async () => {
  api = await startFakeApi({ acceptAnyToken: true, secrets: { ws: { prj: { env: { DATABASE_URL: SECRET } } } } });
  jwt = await exchangeAtFake(api.url);
  h = await startProxyHarness({ apiUrl: api.url });
  h.hold(jwt);
});
after(async () => {
  await h.close();
  await api.close();
});

void describe('--proxy verify', () => {
  void it('forwards a caller presenting the API token, with the held JWT instead', async () => {
    const answer = await call(h.port, { path: SECRET_PATH, headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(answer.code, 200, answer.text());
    assert.equal((answer.json() as { values: { value: string }[] }).values[0]?.value, SECRET);
    const seen = api.log.at(-1);
    assert.equal(seen?.credential, 'jwt');
    assert.equal(seen.tokenFingerprint, fingerprint(jwt));
  });

  void it('forwards a caller presenting the held JWT, and an earlier one the sidecar obtained while it is valid', async () => {
    const next = await exchangeAtFake(api.url);
    h.hold(next);
    try {
      for (const presented of [next, jwt]) {
        const echo = echoOf(await call(h.port, { path: '/v1/echo', headers: { authorization: `Bearer ${presented}` } }));
        assert.deepEqual(echo.authorization, { present: true, kind: 'jwt', fingerprint: fingerprint(next) }, 'the upstream sees the JWT held now');
      }
    } finally {
      h.hold(jwt);
    }
  });

  void it('refuses an earlier JWT once it has expired (401), never forwarding it', async () => {
    const short = await exchangeAtFake(api.url);
    h.hold(short, 2_000);
    h.hold(jwt);
    h.clock.skewMs = 3_000;
    try {
      const answer = await notForwarded(() => call(h.port, { path: '/v1/echo', headers: { authorization: `Bearer ${short}` } }));
      assertMessage(answer, 401);
    } finally {
      h.clock.skewMs = 0;
    }
  });

  void it('refuses a missing, malformed or foreign credential with 401, and forwards nothing: no open relay', async () => {
    // A JWT the upstream would accept, but which this sidecar never obtained (another client's).
    const foreign = await exchangeAtFake(api.url, 'ek_live_someone_else_0123456789');
    const cases: [string, Record<string, string>][] = [
      ['none', {}],
      ['empty Bearer', { authorization: 'Bearer ' }],
      ['Basic', { authorization: `Basic ${Buffer.from(`x:${API_TOKEN}`).toString('base64')}` }],
      ['another API token', { authorization: 'Bearer ek_live_not_this_sidecars_0123456789' }],
      ['a JWT the sidecar never obtained', { authorization: `Bearer ${foreign}` }],
      ['the API token with a suffix', { authorization: `Bearer ${API_TOKEN}x` }],
    ];
    for (const [name, headers] of cases) {
      const answer = await notForwarded(() => call(h.port, { path: SECRET_PATH, headers }));
      assertMessage(answer, 401, /Authorization: Bearer/);
      assert.match(String(answer.headers['www-authenticate']), /^Bearer/, name);
    }
  });

  void it('refuses before reading a body, and closes the connection rather than drain it', async () => {
    const answer = await notForwarded(() => call(h.port, { method: 'POST', path: '/v1/echo', chunks: [Buffer.alloc(64 * 1024)], headers: { 'content-type': 'application/octet-stream' } }));
    assertMessage(answer, 401);
    assert.equal(answer.headers.connection, 'close');
  });
});

void describe('--proxy inject', () => {
  let inject: ProxyHarness;
  before(async () => {
    inject = await startProxyHarness({ apiUrl: api.url, mode: 'inject', host: '0.0.0.0' });
    inject.hold(jwt);
  });
  after(() => inject.close());

  void it('needs no credential, and drops any the caller sends', async () => {
    for (const headers of [{}, { authorization: `Bearer ${API_TOKEN}` }, { authorization: 'Bearer ek_live_whatever_0123456789' }]) {
      const echo = echoOf(await call(inject.port, { path: '/v1/echo', headers }));
      assert.deepEqual(echo.authorization, { present: true, kind: 'jwt', fingerprint: fingerprint(jwt) });
    }
    const answer = await call(inject.port, { path: SECRET_PATH });
    assert.equal((answer.json() as { values: { value: string }[] }).values[0]?.value, SECRET);
  });

  void it('answers only peers on a loopback address, whatever the listener (403)', async (t) => {
    const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (external === undefined) {
      t.skip('no non-loopback IPv4 address on this machine');
      return;
    }
    const answer = await notForwarded(() => call(inject.port, { path: '/v1/echo', address: external, host: 'localhost' }));
    assertMessage(answer, 403, /loopback/);
  });
});

void describe('--proxy off', () => {
  void it('answers 404 on every other /v1/ path, counted as a token API request', async () => {
    const off = await startProxyHarness({ apiUrl: api.url, mode: 'off' });
    try {
      off.hold(jwt);
      const answer = await notForwarded(() => call(off.port, { path: SECRET_PATH, headers: { authorization: `Bearer ${API_TOKEN}` } }));
      assertMessage(answer, 404);
      assert.equal(await proxiedTotal(off.metrics), 0);
      const other = (await off.metrics.tokenRequests.get()).values.find((v) => v.labels.path === 'other' && v.labels.code === '404');
      assert.equal(other?.value, 1);
    } finally {
      await off.close();
    }
  });
});

void describe('the listener\'s guards, on proxied paths too', () => {
  const authorized = { authorization: `Bearer ${API_TOKEN}` };
  void it('refuses forwarding headers, Origin and a foreign Host with 403, counted as proxied requests', async () => {
    const before = await proxied(h.metrics, 'GET', 403);
    const refused: { host?: string; headers: Record<string, string> }[] = [
      { headers: { ...authorized, 'x-forwarded-for': '10.0.0.1' } },
      { headers: { ...authorized, forwarded: 'for=10.0.0.1' } },
      { headers: { ...authorized, via: '1.1 relay' } },
      { headers: { ...authorized, 'x-real-ip': '10.0.0.1' } },
      { headers: { ...authorized, origin: 'http://rebind.example' } },
      { host: 'evil.example', headers: authorized },
      { host: '169.254.169.254', headers: authorized },
    ];
    for (const c of refused) assertMessage(await notForwarded(() => call(h.port, { path: SECRET_PATH, ...c })), 403);
    assert.equal(await proxied(h.metrics, 'GET', 403), before + refused.length);
  });

  void it('keeps dot segments, absolute-form targets and the token API\'s own routes out of the proxy', async () => {
    for (const path of ['/v1/../admin', '/v1/%2e%2e/admin', '/v1/x/..%2f..%2fadmin', '/v1/x/.%2E/y', '/v1\\..\\admin', 'http://evil.example/v1/echo', '/v1']) {
      assertMessage(await notForwarded(() => call(h.port, { path, headers: authorized })), 404);
    }
    assertMessage(await notForwarded(() => call(h.port, { method: 'GET', path: '/v1/auth/exchange', headers: authorized })), 405);
  });

  void it('answers 503 with Retry-After while no JWT is held, forwarding nothing', async () => {
    const empty = await startProxyHarness({ apiUrl: api.url });
    try {
      empty.served.setNextAttempt(empty.clock.monotonic() + 7_500);
      const answer = await notForwarded(() => call(empty.port, { path: SECRET_PATH, headers: authorized }));
      assertMessage(answer, 503);
      assert.equal(answer.headers['retry-after'], '8');
    } finally {
      await empty.close();
    }
  });

  void it('refuses a body over 1 MiB: announced at once, chunked as soon as it passes; 1 MiB exactly goes through', async () => {
    const announced = await notForwarded(() => call(h.port, { method: 'POST', path: '/v1/echo', headers: { ...authorized, 'content-length': String(1024 * 1024 + 1) }, body: Buffer.alloc(1024 * 1024 + 1) }));
    assertMessage(announced, 413, /1 MiB/);
    const chunked = await call(h.port, { method: 'POST', path: '/v1/echo', headers: authorized, chunks: Array.from({ length: 17 }, () => Buffer.alloc(64 * 1024, 1)) });
    assertMessage(chunked, 413, /1 MiB/);
    assert.equal(chunked.headers.connection, 'close');
    const exact = echoOf(await call(h.port, { method: 'POST', path: '/v1/echo', headers: authorized, chunks: Array.from({ length: 16 }, () => Buffer.alloc(64 * 1024, 1)) }));
    assert.equal(exact.body.bytes, 1024 * 1024);
  });

  void it('counts every proxied request once, by normalised method and the code sent', async () => {
    const before = await proxiedTotal(h.metrics);
    const sent = [
      await call(h.port, { method: 'PROPFIND', path: '/v1/echo', headers: authorized }),
      await call(h.port, { method: 'DELETE', path: '/v1/echo?status=404', headers: authorized }),
      await call(h.port, { method: 'POST', path: '/v1/echo' }),
    ];
    assert.deepEqual(sent.map((a) => a.code), [200, 404, 401]);
    assert.equal(await proxied(h.metrics, 'other', 200), 1);
    assert.equal(await proxied(h.metrics, 'DELETE', 404), 1);
    assert.ok(await proxied(h.metrics, 'POST', 401) >= 1);
    assert.equal(await proxiedTotal(h.metrics), before + sent.length);
    const text = await h.metrics.registry.metrics();
    assert.ok(!text.includes('/v1/echo') && !text.includes('PROPFIND'), 'no path or raw method in a label');
  });

  void it('never puts a credential in an answer or a log line', () => {
    const secrets = [API_TOKEN, jwt, ...api.issued()];
    for (const text of [...errorBodies, ...h.logged]) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `a secret in: ${text.slice(0, 80)}`);
    }
  });
});
