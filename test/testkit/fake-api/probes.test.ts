// The proxy probes of the fake (echo, stream, redirect): what a proxy test reads back must be exactly what arrived.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { ECHO_PATH, EXCHANGE_PATH, REDIRECT_PATH, STREAM_PATH, fingerprint, startFakeApi, streamBytes, type Echo, type FakeApi, type FakeApiOptions } from '../../../testkit/fake-api/server.ts';
import { waitFor } from '../../helpers/daemon.ts';
import { assertMessage, assertRateHeaders, call, object } from '../../helpers/fake-api-client.ts';

const TOKEN = 'ek_live_probe_token';
const servers: FakeApi[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(options: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, ...options });
  servers.push(api);
  return api;
}

void describe('echo', () => {
  void test('reports method, target, query, headers without authorization, the credential kind and the body digest', async () => {
    const api = await start();
    const body = Buffer.from('{"hello":"world"}');
    const answer = await call(api, `${ECHO_PATH}/a/b%20c?x=1&y=%20&x=2`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-custom': 'kept' },
      body: new Uint8Array(body),
    });
    assert.equal(answer.status, 200);
    assertRateHeaders(answer, 200, 199);
    const echo = object(answer) as unknown as Echo;
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.target, `${ECHO_PATH}/a/b%20c?x=1&y=%20&x=2`);
    assert.equal(echo.path, `${ECHO_PATH}/a/b%20c`);
    assert.equal(echo.query, 'x=1&y=%20&x=2');
    assert.equal(echo.headers['x-custom'], 'kept');
    assert.equal(echo.headers['content-type'], 'application/json');
    assert.equal(echo.headers.authorization, undefined);
    assert.deepEqual(echo.authorization, { present: true, kind: 'api-token', fingerprint: fingerprint(TOKEN) });
    assert.deepEqual(echo.body, { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    assert.ok(!answer.text.includes(TOKEN), 'the credential is not echoed');
    assert.equal(api.log.at(-1)?.route, 'echo');
  });

  void test('a JWT, nothing, or garbage is reported as such; ?status sets the answer status', async () => {
    const api = await start();
    const jwt = String(object(await call(api, EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).accessToken);
    const kind = async (headers: Record<string, string>): Promise<unknown> => (object(await call(api, ECHO_PATH, { headers })) as unknown as Echo).authorization;
    assert.deepEqual(await kind({ authorization: `Bearer ${jwt}` }), { present: true, kind: 'jwt', fingerprint: fingerprint(jwt) });
    assert.deepEqual(await kind({}), { present: false, kind: 'none', fingerprint: null });
    assert.deepEqual(await kind({ authorization: 'Bearer nope' }), { present: true, kind: 'invalid', fingerprint: fingerprint('nope') });
    const teapot = await call(api, `${ECHO_PATH}?status=418`, { method: 'DELETE' });
    assert.equal(teapot.status, 418);
    assert.equal((object(teapot) as unknown as Echo).method, 'DELETE');
    assertMessage(await call(api, `${ECHO_PATH}?status=204`), 400);
  });

  void test('a large body is hashed as it streams', async () => {
    const api = await start();
    const body = streamBytes(3 * 1024 * 1024 + 7);
    const echo = object(await call(api, ECHO_PATH, { method: 'POST', body: new Uint8Array(body) })) as unknown as Echo;
    assert.deepEqual(echo.body, { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  });
});

void describe('stream', () => {
  void test('sends exactly the bytes asked for, chunked, in several writes', async () => {
    const api = await start();
    const res = await fetch(`${api.url}${STREAM_PATH}?bytes=200000&chunkBytes=16384&intervalMs=2`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('content-length'), null);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    assert.ok(res.headers.has('ratelimit-remaining'));
    let reads = 0;
    const chunks: Uint8Array[] = [];
    const reader = res.body?.getReader();
    for (let piece = await reader?.read(); piece !== undefined && !piece.done; piece = await reader?.read()) {
      reads++;
      chunks.push(piece.value as Uint8Array); // undici types the body's chunks as any
    }
    assert.ok(reads > 1, 'more than one piece arrived');
    assert.ok(Buffer.concat(chunks).equals(streamBytes(200_000)));
    assert.equal(api.log.at(-1)?.aborted, undefined);
    assert.deepEqual(streamBytes(5, 250), Buffer.from([250, 0, 1, 2, 3]), 'byte i is i % 251');
  });

  void test('a client that leaves early marks the entry aborted; bad parameters are 400; only GET', async () => {
    const api = await start();
    await new Promise<void>((resolve, reject) => {
      const req = request(`${api.url}${STREAM_PATH}?bytes=10000000&chunkBytes=1000&intervalMs=20`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => { if (!req.destroyed) reject(error); });
      req.end();
    });
    await waitFor(() => api.log.at(-1)?.aborted === true, 2_000, () => 'the stream to notice the client left');
    assertMessage(await call(api, `${STREAM_PATH}?bytes=-1`), 400);
    assertMessage(await call(api, `${STREAM_PATH}?chunkBytes=0`), 400);
    assertMessage(await call(api, `${STREAM_PATH}?intervalMs=x`), 400);
    assertMessage(await call(api, STREAM_PATH, { method: 'POST' }), 405);
  });

  void test('close() ends a stream in progress', async () => {
    const api = await start();
    const res = await fetch(`${api.url}${STREAM_PATH}?bytes=10000000&chunkBytes=1000&intervalMs=50`);
    const reader = res.body?.getReader();
    await reader?.read();
    await api.close();
    await assert.rejects(async () => {
      for (;;) if ((await reader?.read())?.done !== false) throw new Error('ended cleanly');
    });
  });
});

void describe('redirect', () => {
  void test('302 to this server by default; ?to and ?status choose; the fake follows nothing', async () => {
    const api = await start();
    const found = await call(api, REDIRECT_PATH);
    assertMessage(found, 302);
    assert.equal(found.headers.get('location'), `${api.url}${ECHO_PATH}/redirected`);
    assert.ok(found.headers.has('ratelimit-limit'));
    const moved = await call(api, `${REDIRECT_PATH}?status=307&to=${encodeURIComponent('http://127.0.0.1:9/elsewhere')}`, { method: 'POST', body: 'x' });
    assert.equal(moved.status, 307);
    assert.equal(moved.headers.get('location'), 'http://127.0.0.1:9/elsewhere');
    assertMessage(await call(api, `${REDIRECT_PATH}?status=200`), 400);
    assert.deepEqual(api.log.map((e) => e.route), ['redirect', 'redirect', 'redirect']);
  });
});

void describe('probes share the reads rules', () => {
  void test('they count in the per-IP window and take reads faults', async () => {
    const api = await start({ ipLimit: 2 });
    assert.equal((await call(api, ECHO_PATH)).status, 200);
    assertMessage(await call(api, REDIRECT_PATH), 302);
    assertMessage(await call(api, ECHO_PATH), 429);
    const other = await start();
    await other.setMode('503', { route: 'reads' });
    assertMessage(await call(other, ECHO_PATH), 503);
    assertMessage(await call(other, `${STREAM_PATH}?bytes=10`), 503);
    assertMessage(await call(other, REDIRECT_PATH), 503);
    await other.setMode('ok');
    other.enqueue({ fault: 'slow', delayMs: 10, route: 'reads' });
    const echo = object(await call(other, ECHO_PATH, { method: 'POST', body: 'abc' })) as unknown as Echo;
    assert.equal(echo.body.bytes, 3, 'a slow echo still reads the whole body');
  });
});
