import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';
import { mulberry32 } from '../helpers/prng.ts';

const A = 'ek_live_restart_token_a_0123456789abcdef';
const B = 'ek_live_restart_token_b_0123456789abcdef';

describe('restarts', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    api = await startFakeApi({ tokens: { [A]: 'ok', [B]: 'ok' } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  test('kill -9 and restart reuses the JWT on disk with no exchange', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret'), A);
    const jwtFile = join(dir.path, 'jwt');
    const args = baseArgs({ apiUrl: api.url, tokenFile, jwtFile });
    const first = startDaemon(args);
    // Ready means the JWT and the state entry naming it are both durable: a kill from then on costs no exchange.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String((await first.ports()).metrics)}/readyz`)).status === 200);
    const jwt = await readFile(jwtFile, 'utf8');
    await first.kill9();
    const exchanges = api.countFor(A);
    for (let i = 0; i < 3; i += 1) {
      const again = startDaemon(args);
      const { metrics } = await again.ports();
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200);
      assert.equal(api.countFor(A), exchanges, `restart ${String(i + 1)} is ready without an exchange`);
      await again.kill9();
    }
    assert.equal(api.countFor(A), exchanges, 'no exchange after restarts');
    assert.equal(await readFile(jwtFile, 'utf8'), jwt);
  });

  test('a JWT on disk for another token is not reused', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-other'), A);
    const jwtFile = join(dir.path, 'jwt-other');
    const first = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String((await first.ports()).metrics)}/readyz`)).status === 200);
    await first.kill9();
    await rotateSecretVolume(join(dir.path, 'secret-other'), B);
    const before = api.countFor(B);
    const second = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    await waitFor(() => api.countFor(B) > before, 10_000, () => 'an exchange for the new token');
    assert.equal((await second.stop()).code, 0);
  });

  test('crash loop with token flapping never exceeds the budget in any window', async () => {
    // Scaled down: 3 exchanges per 4 s on both sides. Every flap to the token whose JWT is not on disk wants an
    // exchange, and 6 restarts with 2-4 flaps each want far more than the budget allows: it must hold them. (The
    // budget's arithmetic across restarts is unit-tested: test/unit/state-store.test.ts, test/unit/refresher/restart.test.ts.)
    const windowMs = 4_000;
    const max = 3;
    const limited = await startFakeApi({ tokens: { [A]: 'ok', [B]: 'ok' }, limit: max, windowMs });
    const random = mulberry32(20261128);
    try {
      const secret = join(dir.path, 'secret-chaos');
      const tokenFile = await createSecretVolume(secret, A);
      const args = baseArgs({ apiUrl: limited.url, tokenFile, jwtFile: join(dir.path, 'jwt-chaos'), extra: ['--rate-limit', `${String(max)}/${String(windowMs)}ms`, '--min-ttl', '1s'] });
      let current = A;
      let flapsTotal = 0;
      for (let restart = 0; restart < 6; restart += 1) {
        const daemon = startDaemon(args);
        await daemon.ports();
        for (let flaps = 2 + Math.floor(random() * 3); flaps > 0; flaps -= 1) {
          current = current === A ? B : A;
          await rotateSecretVolume(secret, current);
          flapsTotal += 1;
          await new Promise((resolve) => setTimeout(resolve, 50 + random() * 100));
        }
        await daemon.kill9();
      }
      for (const token of [A, B]) {
        const most = limited.maxInAnyWindow(token, windowMs);
        assert.ok(most <= max, `${String(most)} exchanges in one window for one token`);
      }
      assert.equal(limited.log.filter((entry) => entry.status === 429).length, 0, 'the upstream never had to refuse');
      assert.ok(limited.log.length >= max, `the loop did exchange (${String(limited.log.length)} requests)`);
      // Every flap wants an exchange for the token it brings (the other one's JWT is on disk at best): far more
      // than 3 per 4 s per token were wanted, so the budget held some back.
      assert.ok(limited.log.length < flapsTotal, `${String(limited.log.length)} exchanges for ${String(flapsTotal)} flaps: the budget held some back`);
    } finally {
      await limited.close();
    }
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([A, B, ...api.issued()]), []);
  });
});
