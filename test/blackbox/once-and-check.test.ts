// The short-lived commands against the real CLI: `once` (an init container's first JWT, the budget it shares) and
// `check` (the probe beside the app). Restarts of the daemon: restart.test.ts.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findLeaks, runCli, tempDir } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';

const A = 'ek_live_once_token_a_0123456789abcdef00';

describe('ek-sidecar once', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    api = await startFakeApi({ tokens: { [A]: 'ok' } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });
  const onceArgs = (tokenFile: string, jwtFile: string, extra: readonly string[] = []): string[] => ['once', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile, ...extra];

  test('writes a JWT and exits 0; a second run reuses it with no exchange', async () => {
    const tokenFile = join(dir.path, 'token');
    await writeFile(tokenFile, A);
    const jwtFile = join(dir.path, 'jwt');
    const first = await runCli(onceArgs(tokenFile, jwtFile));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(await readFile(jwtFile, 'utf8'), api.issued().at(-1));
    const count = api.countFor(A);
    const second = await runCli(onceArgs(tokenFile, jwtFile));
    assert.equal(second.code, 0);
    assert.equal(api.countFor(A), count);
  });

  test('a revoked token exits 1 at once', async () => {
    const tokenFile = join(dir.path, 'revoked');
    await writeFile(tokenFile, 'ek_live_not_known_to_the_fake_api_123');
    const started = performance.now();
    const result = await runCli(onceArgs(tokenFile, join(dir.path, 'jwt-revoked')));
    assert.equal(result.code, 1);
    assert.ok(performance.now() - started < 5_000);
  });

  test('a missing or malformed token file exits 1', async () => {
    assert.equal((await runCli(onceArgs(join(dir.path, 'absent'), join(dir.path, 'jwt-absent')))).code, 1);
    await writeFile(join(dir.path, 'garbage'), 'hello world');
    assert.equal((await runCli(onceArgs(join(dir.path, 'garbage'), join(dir.path, 'jwt-garbage')))).code, 1);
  });

  test('waits for the budget instead of exceeding it', async () => {
    const tokenFile = join(dir.path, 'token-budget');
    await writeFile(tokenFile, A);
    const jwtFile = join(dir.path, 'jwt-budget');
    const extra = ['--rate-limit', '2/2s'];
    const times: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      await rm(jwtFile, { force: true });
      const result = await runCli(onceArgs(tokenFile, jwtFile, extra));
      assert.equal(result.code, 0, result.stderr);
      times.push(performance.now());
    }
    const recent = api.log.filter((entry) => entry.status === 200).slice(-3).map((entry) => entry.atMs);
    assert.ok((recent[2] ?? 0) - (recent[0] ?? 0) > 2_000, 'the third exchange waited until the first left the window');
  });

  test('gives up after one window when the upstream stays down', async () => {
    const tokenFile = join(dir.path, 'token-down');
    await writeFile(tokenFile, A);
    await api.setMode('503');
    try {
      const result = await runCli(onceArgs(tokenFile, join(dir.path, 'jwt-down'), ['--rate-limit', '10/1s', '--timeout', '200ms']));
      assert.equal(result.code, 1);
    } finally {
      await api.setMode('ok');
    }
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([A, ...api.issued()]), []);
  });
});

describe('ek-sidecar check', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => { dir = await tempDir(); });
  after(async () => { await dir.remove(); });

  const jwtWithExp = (expSeconds: number): string => {
    const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ exp: expSeconds, sub: 'check' })}.c2lnbmF0dXJl`;
  };

  test('exit codes and output for valid, expiring, missing and garbage files, in both formats', async () => {
    const now = Math.floor(Date.now() / 1000);
    const valid = jwtWithExp(now + 600);
    await writeFile(join(dir.path, 'raw'), valid);
    await writeFile(join(dir.path, 'json'), JSON.stringify({ accessToken: valid, tokenType: 'Bearer', expiresAt: new Date((now + 600) * 1000).toISOString(), expiresIn: 600 }));
    await writeFile(join(dir.path, 'expiring'), jwtWithExp(now + 30));
    await writeFile(join(dir.path, 'garbage'), 'not a jwt');
    for (const name of ['raw', 'json']) {
      const result = await runCli(['check', '--jwt-file', join(dir.path, name)]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /expiresAt=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ secondsLeft=(59\d|600)\n/);
      assert.ok(!result.stdout.includes(valid) && !result.stderr.includes(valid.split('.')[1] ?? ''), 'no part of the token is printed');
    }
    const expiring = await runCli(['check', '--jwt-file', join(dir.path, 'expiring')]);
    assert.equal(expiring.code, 1);
    assert.match(expiring.stdout, /secondsLeft=(2\d|30)/);
    assert.equal((await runCli(['check', '--jwt-file', join(dir.path, 'expiring'), '--min-ttl', '10s'])).code, 0);
    assert.equal((await runCli(['check', '--jwt-file', join(dir.path, 'missing')])).code, 1);
    const garbage = await runCli(['check', '--jwt-file', join(dir.path, 'garbage')]);
    assert.equal(garbage.code, 1);
    assert.ok(!garbage.stderr.includes('not a jwt'));
  });
});
