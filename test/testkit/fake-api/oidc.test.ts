// The fake's workload-identity exchange must judge projected service-account tokens as the upstream contract says,
// or the sidecar's OIDC tests prove nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import {
  EXCHANGE_PATH,
  MALFORMED_KINDS,
  OIDC_EXCHANGE_PATH,
  fingerprint,
  startFakeApi,
  type FakeApi,
  type FakeApiOptions,
} from '../../../testkit/fake-api/server.ts';
import { createProjectedTokenIssuer, serviceAccountSubject, TOKEN_FLAWS, type ProjectedTokenIssuer } from '../../../testkit/projected-token.ts';
import { assertMessage, assertRateHeaders, call, manualClock, object, type Answer } from '../../helpers/fake-api-client.ts';

const WS = 'ws-1';
const SUB = serviceAccountSubject('default', 'app');
const TOKEN = 'ek_live_oidc_test_token';

let issuer: ProjectedTokenIssuer;
const servers: FakeApi[] = [];
before(async () => {
  issuer = await createProjectedTokenIssuer();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(options: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startFakeApi({ oidc: issuer, tokens: { [TOKEN]: 'ok' }, ...options });
  servers.push(api);
  return api;
}

function oidc(api: FakeApi, token: string, workspaceId = WS): Promise<Answer> {
  return raw(api, JSON.stringify({ token, workspaceId }));
}

function raw(api: FakeApi, body: string, contentType = 'application/json'): Promise<Answer> {
  return call(api, OIDC_EXCHANGE_PATH, { method: 'POST', headers: { 'content-type': contentType }, body });
}

void describe('OIDC exchange: accepted', () => {
  void test('a valid projected token gets the exchange body with a JWT for the service account', async () => {
    const api = await start();
    const projected = await issuer.mint();
    const answer = await oidc(api, projected);
    assert.equal(answer.status, 200, answer.text);
    const body = object(answer);
    assert.deepEqual(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'tokenType']);
    assert.equal(body.tokenType, 'Bearer');
    assert.equal(body.expiresIn, 900);
    const { payload } = await jwtVerify(String(body.accessToken), api.jwtKey);
    assert.equal(payload.sub, `oidc:${SUB}`);
    assert.equal(payload.workspaceId, WS);
    assert.ok(typeof payload.exp === 'number' && Math.abs(payload.exp - (Date.now() / 1000 + 900)) < 2);
    assertRateHeaders(answer, 10, 9);
    assert.deepEqual(api.issued(), [body.accessToken]);
    const entry = api.log.at(-1);
    assert.equal(entry?.route, 'oidc-exchange');
    assert.equal(entry.sub, SUB);
    assert.equal(entry.workspaceId, WS);
    assert.equal(entry.credential, 'none');
    assert.equal(entry.tokenFingerprint, fingerprint(projected));
    assert.ok(!JSON.stringify(api.log).includes(projected), 'the projected token is not in the log');
  });

  void test('aud may be a string or an array holding the audience; the audience is configurable', async () => {
    const api = await start();
    assert.equal((await oidc(api, await issuer.mint({ audience: ['vault', 'enkryptify'] }))).status, 200);
    const custom = await start({ oidc: { issuer: issuer.issuer, publicKey: issuer.publicKey, audience: 'ek-prod' } });
    assert.equal((await oidc(custom, await issuer.mint({ audience: ['ek-prod'] }))).status, 200);
    assertMessage(await oidc(custom, await issuer.mint()), 401);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const single = await new SignJWT({ aud: 'enkryptify' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('iss-x').setSubject(SUB)
      .setExpirationTime('1h').sign(privateKey);
    const other = await start({ oidc: { issuer: 'iss-x', publicKey } });
    assert.equal((await oidc(other, single)).status, 200, 'aud as a plain string');
  });

  void test('an RS256 issuer works the same', async () => {
    const rsa = await createProjectedTokenIssuer({ alg: 'RS256', issuer: 'https://oidc.eks.example/id/ABC' });
    const api = await start({ oidc: rsa });
    assert.equal((await oidc(api, await rsa.mint({ namespace: 'shop', serviceAccount: 'web' }))).status, 200);
    assert.equal(api.log.at(-1)?.sub, serviceAccountSubject('shop', 'web'));
  });
});

void describe('OIDC exchange: refused', () => {
  void test('each flaw of a projected token is 401 {"message"}, and no sub is logged for it', async () => {
    const api = await start({ limit: 100 });
    for (const flaw of TOKEN_FLAWS) {
      const answer = await oidc(api, await issuer.mint({ flaw }));
      assertMessage(answer, 401);
      assert.equal(api.log.at(-1)?.sub, undefined, flaw);
    }
    const stranger = await createProjectedTokenIssuer();
    assertMessage(await oidc(api, await stranger.mint()), 401);
    assert.equal((await oidc(api, await issuer.mint())).status, 200, 'the good token still passes');
  });

  void test('expiry and not-before are judged on the server clock', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now });
    const projected = await issuer.mint({ nowMs: clock.now(), lifetimeSec: 600 });
    assert.equal((await oidc(api, projected)).status, 200);
    clock.advance(601_000);
    assertMessage(await oidc(api, projected), 401);
    const early = await issuer.mint({ nowMs: clock.now() + 120_000 });
    assertMessage(await oidc(api, early), 401);
    clock.advance(121_000);
    assert.equal((await oidc(api, early)).status, 200);
  });

  void test('without a trusted issuer every OIDC exchange is 401', async () => {
    const api = await startFakeApi({});
    servers.push(api);
    assertMessage(await oidc(api, await issuer.mint()), 401);
  });

  void test('415 for a body that is not JSON by Content-Type; 400 for anything but {token, workspaceId} strings; 413 over 64 KiB', async () => {
    const api = await start({ limit: 100 });
    const projected = await issuer.mint();
    const good = JSON.stringify({ token: projected, workspaceId: WS });
    assertMessage(await raw(api, good, 'text/plain'), 415);
    assertMessage(await call(api, OIDC_EXCHANGE_PATH, { method: 'POST', body: new Uint8Array(Buffer.from(good)) }), 415);
    for (const body of ['{"token":', '[]', '"x"', 'null', JSON.stringify({ token: projected }), JSON.stringify({ workspaceId: WS }),
      JSON.stringify({ token: '', workspaceId: WS }), JSON.stringify({ token: projected, workspaceId: '' }),
      JSON.stringify({ token: 42, workspaceId: WS }), JSON.stringify({ token: projected, workspaceId: WS, audience: 'x' })]) {
      assertMessage(await raw(api, body), 400);
    }
    assertMessage(await raw(api, JSON.stringify({ token: 'x'.repeat(70_000), workspaceId: WS })), 413);
    assert.equal((await raw(api, good, 'application/json; charset=utf-8')).status, 200);
  });

  void test('with bindings, an SA used for a workspace it is not bound to is 403; bind and unbind work at run time', async () => {
    const api = await start({ oidcBindings: [{ sub: SUB, workspaceId: WS }] });
    const app = await issuer.mint();
    assert.equal((await oidc(api, app)).status, 200);
    assertMessage(await oidc(api, app, 'ws-other'), 403);
    const web = await issuer.mint({ serviceAccount: 'web' });
    assertMessage(await oidc(api, web), 403);
    api.bind(serviceAccountSubject('default', 'web'), WS);
    assert.equal((await oidc(api, web)).status, 200);
    api.unbind(SUB, WS);
    assertMessage(await oidc(api, app), 403);
    api.reset();
    assert.equal((await oidc(api, app)).status, 200, 'reset restores the configured bindings');
  });
});

void describe('OIDC exchange: limits, faults and the log', () => {
  void test('10 per window per service account, whatever the token text; another account is not affected', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now });
    for (let i = 1; i <= 10; i++) {
      const answer = await oidc(api, await issuer.mint({ nowMs: clock.now() }));
      assert.equal(answer.status, 200);
      assertRateHeaders(answer, 10, 10 - i);
    }
    const limited = await oidc(api, await issuer.mint({ nowMs: clock.now() }));
    assertMessage(limited, 429);
    assert.match(String(object(limited).message), /service account/);
    assert.equal(limited.headers.get('retry-after'), '60');
    assertRateHeaders(limited, 10, 0);
    assert.equal((await oidc(api, await issuer.mint({ nowMs: clock.now(), serviceAccount: 'web' }))).status, 200);
    clock.advance(60_000);
    assert.equal((await oidc(api, await issuer.mint({ nowMs: clock.now() }))).status, 200, 'the window rolls');
    assert.equal(api.countForSub(SUB), 12);
    assert.equal(api.maxInAnyWindowForSub(SUB), 11);
    assert.equal(api.countForSub(serviceAccountSubject('default', 'web')), 1);
    assert.deepEqual(api.summary().counts, {}, 'no API-token exchanges');
  });

  void test('the per-IP window counts OIDC and token exchanges together', async () => {
    const api = await start({ ipLimit: 3 });
    assert.equal((await oidc(api, await issuer.mint())).status, 200);
    assert.equal((await call(api, EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await oidc(api, await issuer.mint({ serviceAccount: 'web' }))).status, 200);
    const limited = await oidc(api, await issuer.mint({ serviceAccount: 'db' }));
    assertMessage(limited, 429);
    assert.match(String(object(limited).message), /IP/);
    assertRateHeaders(limited, 3, 0);
  });

  void test('exchange faults answer OIDC exchanges too, and the request still counts for its identity', async () => {
    const api = await start({ limit: 100 });
    const projected = await issuer.mint();
    api.enqueue({ fault: '429', retryAfter: 9 });
    const injected = await oidc(api, projected);
    assertMessage(injected, 429);
    assert.equal(injected.headers.get('retry-after'), '9');
    assert.equal(api.log.at(-1)?.fault, '429');
    assert.equal(api.log.at(-1)?.sub, SUB);
    await api.setMode('503');
    assertMessage(await oidc(api, projected), 503);
    await api.setMode('ok');
    for (const kind of MALFORMED_KINDS) {
      api.enqueue(kind);
      const answer = await oidc(api, projected);
      assert.equal(answer.status, kind === 'redirect' ? 302 : 200, kind);
      if (kind === 'redirect') assert.equal(answer.headers.get('location'), api.url + OIDC_EXCHANGE_PATH);
    }
    assert.equal(api.countForSub(SUB), 2 + MALFORMED_KINDS.length);
    api.enqueue({ fault: 'short-lifetime', lifetimeSec: 5 });
    const { payload } = await jwtVerify(String(object(await oidc(api, projected)).accessToken), api.jwtKey);
    assert.equal(payload.sub, `oidc:${SUB}`);
  });
});
