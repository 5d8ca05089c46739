// The secret reads of the vendor SDK, as the fake answers them: shapes, credentials, per-IP limits, faults.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { EXCHANGE_PATH, startFakeApi, type FakeApi, type FakeApiOptions, type Secret, type SecretSeed } from '../../../testkit/fake-api/server.ts';
import { assertMessage, assertRateHeaders, call, json, manualClock, object, type Answer } from '../../helpers/fake-api-client.ts';

const TOKEN = 'ek_live_reads_ok';
const FORBIDDEN = 'ek_live_reads_forbidden';
const SEED: SecretSeed = {
  'ws-1': {
    'prj-1': {
      'env-dev': { DB_URL: 'postgres://dev', API_KEY: 'dev-key-123' },
      'env-prod': { DB_URL: 'postgres://prod' },
    },
  },
  'ws/special': { 'prj&name': { 'env-1': { 'key with spaces': 'spaced' } } },
};
const VALUES = ['postgres://dev', 'dev-key-123', 'postgres://prod', 'spaced'];

const servers: FakeApi[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(options: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startFakeApi({ tokens: { [TOKEN]: 'ok', [FORBIDDEN]: 'forbidden' }, secrets: SEED, ...options });
  servers.push(api);
  return api;
}

function secretsPath(ws: string, prj: string, env: string, name?: string): string {
  const base = `/v1/workspace/${encodeURIComponent(ws)}/project/${encodeURIComponent(prj)}/secret`;
  return `${name === undefined ? base : `${base}/${encodeURIComponent(name)}`}?${new URLSearchParams({ environmentId: env, resolve: 'true' }).toString()}`;
}

function read(api: FakeApi, path: string, credential: string | null): Promise<Answer> {
  return call(api, path, credential === null ? {} : { headers: { authorization: `Bearer ${credential}` } });
}

async function jwtFor(api: FakeApi, token = TOKEN): Promise<string> {
  const answer = await call(api, EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  return String(object(answer).accessToken);
}

function assertSecret(value: unknown, name: string, env: string, secret: string): void {
  const s = value as Secret;
  assert.deepEqual(Object.keys(s).sort(), ['createdAt', 'dataType', 'id', 'name', 'note', 'type', 'updatedAt', 'values']);
  assert.equal(s.name, name);
  assert.deepEqual(s.values, [{ environmentId: env, value: secret, isPersonal: false }]);
  assert.ok(typeof s.id === 'string' && s.id !== '');
  assert.ok(!Number.isNaN(Date.parse(s.createdAt)) && !Number.isNaN(Date.parse(s.updatedAt)));
}

void describe('secret reads: shapes', () => {
  void test('the list holds the secrets with a value in that environment, each with only that value', async () => {
    const api = await start();
    const jwt = await jwtFor(api);
    const dev = await read(api, secretsPath('ws-1', 'prj-1', 'env-dev'), jwt);
    assert.equal(dev.status, 200);
    assert.match(dev.headers.get('content-type') ?? '', /^application\/json/);
    const list = json(dev) as Secret[];
    assert.deepEqual(list.map((s) => s.name).sort(), ['API_KEY', 'DB_URL']);
    assertSecret(list.find((s) => s.name === 'DB_URL'), 'DB_URL', 'env-dev', 'postgres://dev');
    const prod = json(await read(api, secretsPath('ws-1', 'prj-1', 'env-prod'), jwt)) as Secret[];
    assert.deepEqual(prod.map((s) => s.name), ['DB_URL']);
    assert.equal(prod[0]?.id, list.find((s) => s.name === 'DB_URL')?.id, 'one secret, two environments');
    assert.deepEqual(json(await read(api, secretsPath('ws-9', 'prj-1', 'env-dev'), jwt)), [], 'an unknown project lists nothing');
  });

  void test('one secret by name; 404 when absent or without a value there; percent-encoded segments are decoded', async () => {
    const api = await start();
    const jwt = await jwtFor(api);
    const one = await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'API_KEY'), jwt);
    assert.equal(one.status, 200);
    assertSecret(json(one), 'API_KEY', 'env-dev', 'dev-key-123');
    assertMessage(await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'NOPE'), jwt), 404);
    assertMessage(await read(api, secretsPath('ws-1', 'prj-1', 'env-prod', 'API_KEY'), jwt), 404);
    const special = await read(api, secretsPath('ws/special', 'prj&name', 'env-1', 'key with spaces'), jwt);
    assertSecret(json(special), 'key with spaces', 'env-1', 'spaced');
    assertMessage(await read(api, '/v1/workspace/ws-1/project/prj-1/secret', jwt), 400);
    assertMessage(await call(api, '/v1/workspace/ws-1/project/prj-1/secret', { method: 'POST', headers: { authorization: `Bearer ${jwt}` } }), 405);
  });

  void test('setSecret changes a value (and updatedAt) or deletes it; reset restores the seed', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now });
    const before = json(await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'DB_URL'), TOKEN)) as Secret;
    clock.advance(5_000);
    api.setSecret({ workspace: 'ws-1', project: 'prj-1', environment: 'env-dev', name: 'DB_URL' }, 'postgres://new');
    const changed = json(await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'DB_URL'), TOKEN)) as Secret;
    assert.equal(changed.values[0]?.value, 'postgres://new');
    assert.equal(changed.createdAt, before.createdAt);
    assert.equal(Date.parse(changed.updatedAt) - Date.parse(before.updatedAt), 5_000);
    api.setSecret({ workspace: 'ws-1', project: 'prj-1', environment: 'env-dev', name: 'DB_URL' }, undefined);
    assertMessage(await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'DB_URL'), TOKEN), 404);
    api.setSecret({ workspace: 'ws-2', project: 'p', environment: 'e', name: 'NEW' }, 'fresh');
    assert.equal((json(await read(api, secretsPath('ws-2', 'p', 'e'), TOKEN)) as Secret[])[0]?.name, 'NEW');
    api.reset();
    assert.equal((json(await read(api, secretsPath('ws-1', 'prj-1', 'env-dev', 'DB_URL'), TOKEN)) as Secret).values[0]?.value, 'postgres://dev');
  });
});

void describe('secret reads: credentials', () => {
  void test('a live JWT of this fake or a known API token reads; the log says which it saw', async () => {
    const api = await start();
    const jwt = await jwtFor(api);
    const path = secretsPath('ws-1', 'prj-1', 'env-dev');
    assert.equal((await read(api, path, jwt)).status, 200);
    assert.equal(api.log.at(-1)?.credential, 'jwt');
    assert.equal((await read(api, path, TOKEN)).status, 200);
    assert.equal(api.log.at(-1)?.credential, 'api-token');
    assertMessage(await read(api, path, FORBIDDEN), 403);
    assert.equal(api.log.at(-1)?.credential, 'api-token');
    assertMessage(await read(api, path, null), 401);
    assert.equal(api.log.at(-1)?.credential, 'none');
    assert.equal(api.log.at(-1)?.tokenFingerprint, null);
    for (const credential of ['ek_live_unknown', 'garbage', `${jwt.slice(0, -4)}AAAA`]) {
      assertMessage(await read(api, path, credential), 401);
      assert.equal(api.log.at(-1)?.credential, 'invalid', credential);
    }
    assertMessage(await call(api, path, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }), 401);
    assert.equal(api.log.at(-1)?.credential, 'invalid');
    api.revoke(TOKEN);
    assertMessage(await read(api, path, TOKEN), 401);
    const log = JSON.stringify(api.log);
    for (const secret of [TOKEN, jwt, ...VALUES]) assert.ok(!log.includes(secret), 'no credential or secret value in the log');
  });

  void test('an expired JWT, or one signed by another key, is 401', async () => {
    const clock = manualClock();
    const api = await start({ now: clock.now, lifetimeSec: 1.5 });
    const jwt = await jwtFor(api);
    const path = secretsPath('ws-1', 'prj-1', 'env-dev');
    clock.advance(1_400);
    assert.equal((await read(api, path, jwt)).status, 200, 'still live (exp kept to the millisecond)');
    clock.advance(200);
    assertMessage(await read(api, path, jwt), 401);
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1h')
      .sign(new Uint8Array(randomBytes(32)));
    assertMessage(await read(api, path, foreign), 401);
    assert.equal(api.log.at(-1)?.credential, 'invalid');
  });

  void test('a JWT from the OIDC exchange reads like any other', async () => {
    const { createProjectedTokenIssuer } = await import('../../../testkit/projected-token.ts');
    const issuer = await createProjectedTokenIssuer();
    const api = await start({ oidc: issuer });
    const answer = await call(api, '/v1/auth/oidc/exchange', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: await issuer.mint(), workspaceId: 'ws-1' }),
    });
    assert.equal((await read(api, secretsPath('ws-1', 'prj-1', 'env-dev'), String(object(answer).accessToken))).status, 200);
    assert.equal(api.log.at(-1)?.credential, 'jwt');
  });
});

void describe('secret reads: limits and faults', () => {
  void test('reads count only in the per-IP window, never against the exchange budget', async () => {
    const api = await start({ limit: 1, ipLimit: 4 });
    const path = secretsPath('ws-1', 'prj-1', 'env-dev');
    for (let i = 1; i <= 3; i++) assertRateHeaders(await read(api, path, TOKEN), 4, 4 - i);
    assert.equal(api.countFor(TOKEN), 0, 'reads are not exchanges');
    assert.equal((await call(api, EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    const limited = await read(api, path, TOKEN);
    assertMessage(limited, 429);
    assert.match(String(object(limited).message), /IP/);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assertRateHeaders(limited, 4, 0);
  });

  void test('faults target reads or exchanges, each route on its own queue and mode', async () => {
    const api = await start({ limit: 100 });
    const jwt = await jwtFor(api);
    const path = secretsPath('ws-1', 'prj-1', 'env-dev');
    const exchange = async (): Promise<number> => (await call(api, EXCHANGE_PATH, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status;
    await api.setMode('401', { route: 'reads' });
    assertMessage(await read(api, path, jwt), 401);
    assert.equal(api.log.at(-1)?.fault, '401');
    assert.equal(await exchange(), 200, 'the exchange is not affected');
    api.enqueue({ fault: '503', route: 'reads' });
    api.enqueue('500');
    assertMessage(await read(api, path, jwt), 503);
    assertMessage(await read(api, path, jwt), 401);
    assert.equal(await exchange(), 500);
    await api.setMode('502');
    await api.setMode('ok', { route: 'reads' });
    assert.equal((await read(api, path, jwt)).status, 200);
    assert.equal(await exchange(), 502);
    await api.setMode('ok');
    assert.equal(await exchange(), 200);
    api.enqueue({ fault: '429', retryAfter: 4 }, { route: 'reads' });
    assert.equal((await read(api, path, jwt)).headers.get('retry-after'), '4');
    assert.throws(() => { api.enqueue('not-json', { route: 'reads' }); }, /exchange answer/);
  });

  void test('slow, hang and reset apply to reads', async () => {
    const api = await start();
    const path = secretsPath('ws-1', 'prj-1', 'env-dev');
    api.enqueue({ fault: 'slow', delayMs: 120, route: 'reads' });
    const started = performance.now();
    assert.equal((await read(api, path, TOKEN)).status, 200);
    assert.ok(performance.now() - started >= 110, 'answered after the delay');
    api.enqueue({ fault: 'hang', route: 'reads' });
    await assert.rejects(call(api, path, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(150) }), { name: 'TimeoutError' });
    api.enqueue({ fault: 'reset', route: 'reads' });
    await assert.rejects(read(api, path, TOKEN), TypeError);
    assert.equal((await read(api, path, TOKEN)).status, 200);
  });
});
