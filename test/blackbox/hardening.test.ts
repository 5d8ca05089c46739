// The adversarial review's findings, each reproduced from outside against the real CLI: what a hostile neighbour in
// the pod, a misbehaving upstream or an unlucky operator did, and what must hold instead.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';
import { baseArgs, findLeaks, scrapeSample, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';

const TOKEN = 'ek_live_hardening_token_0123456789abcdef';
/** By when the signal handlers are installed after spawn: Node's own bootstrap plus the first module of the bundle. */
const SIGNAL_HANDLERS_BY_MS = 400;

async function readyOn(daemon: Daemon): Promise<number> {
  const { metrics } = await daemon.ports();
  await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 10_000, () => '/readyz 200');
  return metrics ?? 0;
}

describe('hardening: the review\'s findings, from outside', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  // Found: records read back were never pruned; 5,000 year-old records survived and ~7,100 filled a 1 MiB volume.
  test('a state file bloated with ancient records is pruned on the first write', async () => {
    const jwtFile = join(dir.path, 'jwt-bloat');
    const ancient = Array.from({ length: 5_000 }, (_, i) => ({ key: 'aaaa0001', id: i.toString(16), at: Date.now() - 31_536_000_000 - i, mono: null }));
    await writeFile(`${jwtFile}.state.json`, JSON.stringify({ version: 2, bootId: null, exchanges: ancient, jwt: null }));
    assert.ok((await stat(`${jwtFile}.state.json`)).size > 200_000);
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile: await createSecretVolume(join(dir.path, 'secret-bloat'), TOKEN), jwtFile }));
    await readyOn(daemon);
    const size = (await stat(`${jwtFile}.state.json`)).size;
    assert.ok(size < 4_096, `the state file is ${String(size)} bytes`);
    assert.equal((await daemon.stop()).code, 0);
  });

  // Found: a forged state file plus a planted JWT were adopted after a restart and served with no exchange.
  test('a planted JWT with a forged state entry is not served after a restart', async () => {
    const jwtFile = join(dir.path, 'jwt-forged');
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-forged'), TOKEN);
    const first = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    await readyOn(first);
    await first.kill9();
    // Another container rewrites both: a JWT of its own and an entry that claims it, with a made-up MAC.
    const planted = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 900 })).toString('base64url')}.cGxhbnRlZC1zaWduYXR1cmU`;
    const state = JSON.parse(await readFile(`${jwtFile}.state.json`, 'utf8')) as { jwt: Record<string, unknown> };
    state.jwt.mac = 'f'.repeat(64);
    await rm(jwtFile);
    await writeFile(jwtFile, planted);
    await writeFile(`${jwtFile}.state.json`, JSON.stringify(state));
    const issuedBefore = api.issued().length;
    const second = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    const { token } = await second.ports();
    await readyOn(second);
    assert.equal(api.issued().length, issuedBefore + 1, 'an exchange, not the planted JWT');
    const served = await (await fetch(`http://127.0.0.1:${String(token)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } })).text();
    assert.notEqual(served, planted);
    assert.equal(await readFile(jwtFile, 'utf8'), served, 'and the planted file is replaced');
    assert.equal((await second.stop()).code, 0);
  });

  // Found: /readyz stayed 200 after the JWT file was deleted.
  test('a deleted JWT file is written again from memory, without an exchange', async () => {
    const jwtFile = join(dir.path, 'jwt-deleted');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile: await createSecretVolume(join(dir.path, 'secret-deleted'), TOKEN), jwtFile }));
    await readyOn(daemon);
    const jwt = await readFile(jwtFile, 'utf8');
    const issued = api.issued().length;
    await rm(jwtFile);
    await waitFor(async () => (await readFile(jwtFile, 'utf8').catch(() => undefined)) === jwt, 5_000, () => 'the JWT file back');
    await readyOn(daemon);
    assert.equal(api.issued().length, issued, 'no exchange for the rewrite');
    assert.equal((await daemon.stop()).code, 0);
  });

  // Found: a SIGHUP in the first ~150 ms (while the bundle loaded) killed the daemon. The handlers are now the first
  // code that runs; only Node's own bootstrap comes before them (and PID 1 of a container ignores SIGHUP anyway).
  test('a SIGHUP while the daemon is still loading does not kill it', async () => {
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile: await createSecretVolume(join(dir.path, 'secret-hup'), TOKEN), jwtFile: join(dir.path, 'jwt-hup') }));
    await new Promise((resolve) => setTimeout(resolve, SIGNAL_HANDLERS_BY_MS));
    daemon.child.kill('SIGHUP');
    await readyOn(daemon);
    assert.equal(daemon.child.exitCode, null);
    assert.equal((await daemon.stop()).code, 0);
  });

  // Found: a token file rewritten with a new token every few ms sent 4,886 exchanges in 55 s.
  test('a rotation storm is held by the global cap', async () => {
    const secret = join(dir.path, 'secret-storm');
    const tokenFile = await createSecretVolume(secret, `${TOKEN}_0`);
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'jwt-storm') }));
    const metrics = await readyOn(daemon);
    const before = api.log.filter((entry) => entry.path === '/v1/auth/exchange').length;
    // 30 new tokens, each read before the next (SIGHUP forces the read: how fast the watch catches up under load is
    // not what this test is about), so the daemon sees every one of them, well over the cap.
    const read = (): Promise<number> => scrapeSample(metrics, 'ek_sidecar_token_file_reloads_total{result="success"}');
    for (let i = 1; i <= 30; i += 1) {
      const reads = await read();
      await rotateSecretVolume(secret, `${TOKEN}_${String(i)}`);
      daemon.child.kill('SIGHUP');
      await waitFor(async () => await read() > reads, 10_000, () => `token ${String(i)} read`);
    }
    const sent = api.log.filter((entry) => entry.path === '/v1/auth/exchange').length - before;
    assert.ok(sent <= 20 - 1, `${String(sent)} exchanges for the storm (the global cap is 20 a minute, one spent at start)`);
    assert.ok(sent >= 5, 'rotations are still exchanged');
    assert.equal((await daemon.stop()).code, 0);
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});

// Found: RateLimit-Reset 1800000000 parked the next refresh in 2083; expiresIn 1e13 without exp crashed the daemon.
describe('absurd upstream numbers', () => {
  let upstream: Server;
  let url = '';
  const jwtWithoutExp = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"sub":"absurd"}').toString('base64url')}.YWJzdXJkLXNpZ25hdHVyZQ`;
  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'ratelimit-remaining': '0', 'ratelimit-reset': '1800000000' });
      res.end(JSON.stringify({ accessToken: jwtWithoutExp, expiresIn: 1e13, tokenType: 'Bearer' }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${String((upstream.address() as AddressInfo).port)}`;
  });
  after(async () => {
    await new Promise((resolve) => upstream.close(resolve));
  });

  test('are clamped and logged: the daemon serves, and plans nothing more than a day ahead', async () => {
    const dir = await tempDir();
    try {
      const daemon = startDaemon(baseArgs({ apiUrl: url, tokenFile: await createSecretVolume(join(dir.path, 'secret'), TOKEN), jwtFile: join(dir.path, 'jwt') }));
      const metrics = await readyOn(daemon);
      const next = await scrapeSample(metrics, 'ek_sidecar_jwt_next_refresh_timestamp_seconds');
      assert.ok(next > Date.now() / 1000 && next <= Date.now() / 1000 + 86_400, `next refresh at ${new Date(next * 1000).toISOString()}`);
      // The log line is what is checked here, so it is awaited as such (it may still be in the pipe).
      await daemon.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('out of range'));
      assert.equal((await daemon.stop()).code, 0);
      assert.deepEqual(findLeaks([TOKEN, jwtWithoutExp]), []);
    } finally {
      await dir.remove();
    }
  });
});
