import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_atomic_writes_0123456789abcdef';

describe('readers racing the writer', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    // 1 s JWTs refreshed at 5-10 % of their life: a new file every 50-100 ms.
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, lifetimeSec: 1, limit: 10_000, ipLimit: 100_000 });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  for (const format of ['raw', 'json'] as const) {
    test(`${format}: a reader never sees an empty, partial or mixed file across many rewrites`, async () => {
      const tokenFile = await createSecretVolume(join(dir.path, `secret-${format}`), TOKEN);
      const jwtFile = join(dir.path, `jwt-${format}`);
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--jwt-format', format, '--min-ttl', '200ms', '--refresh-window', '0.05,0.1', '--rate-limit', '10000/1m'] }));
      await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
      const seen = new Set<string>();
      let reads = 0;
      // Bounded by a count, not by time: ten distinct JWTs seen, however slow the machine (20 s at most).
      const deadline = performance.now() + 20_000;
      while (seen.size < 10 && performance.now() < deadline) {
        const text = await readFile(jwtFile, 'utf8');
        reads += 1;
        const jwt = format === 'raw' ? text : (JSON.parse(text) as { accessToken: string }).accessToken;
        assert.ok(text.length > 0, 'never empty');
        assert.ok(api.issued().includes(jwt), `read ${String(reads)} is a whole JWT the upstream issued`);
        if (format === 'json') assert.deepEqual(Object.keys(JSON.parse(text) as object).sort(), ['accessToken', 'expiresAt', 'expiresIn', 'tokenType']);
        seen.add(jwt);
      }
      assert.equal((await daemon.stop()).code, 0);
      assert.ok(seen.size >= 10, `only ${String(seen.size)} distinct JWTs in ${String(reads)} reads`);
      const leftovers = (await readdir(dir.path)).filter((name) => name.startsWith(`jwt-${format}`) && ![`jwt-${format}`, `jwt-${format}.state.json`].includes(name));
      assert.deepEqual(leftovers, [], 'no temporary files left behind');
    });
  }

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});

describe('an exchange attempt that cannot be recorded', () => {
  test('is not sent (the budget fails closed); the old file stays intact; sent once the state can be written', async (t) => {
    const api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, limit: 1000 });
    const dir = await tempDir();
    const volume = join(dir.path, 'volume');
    const ROTATED = 'ek_live_atomic_writes_rotated_0123456789';
    try {
      await mkdir(volume);
      // An immutable directory refuses new files even to root, like a read-only or full volume refuses the temp file.
      try {
        execFileSync('chattr', ['+i', dir.path], { stdio: 'ignore' });
        execFileSync('chattr', ['-i', dir.path], { stdio: 'ignore' });
      } catch {
        t.skip('chattr +i is not available here: the refresher unit tests cover failed writes');
        return;
      }
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
      const jwtFile = join(volume, 'jwt');
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
      const { metrics } = await daemon.ports();
      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${String(metrics)}/metrics`)).text();
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200);
      const good = await readFile(jwtFile, 'utf8');
      const exchanges = api.log.length;
      execFileSync('chattr', ['+i', volume]);
      try {
        // A rotation wants an exchange; its attempt cannot be recorded in the state file.
        api.allow(ROTATED);
        await rotateSecretVolume(join(dir.path, 'secret'), ROTATED);
        await waitFor(async () => /^ek_sidecar_state_file_writes_total\{result="failure"\} [2-9]/m.test(await scrape()), 10_000, () => 'two failed state writes');
        assert.equal(api.log.length, exchanges, 'no exchange was sent');
        assert.equal(await readFile(jwtFile, 'utf8'), good, 'the old JWT file is intact');
      } finally {
        execFileSync('chattr', ['-i', volume]);
      }
      await waitFor(async () => (await readFile(jwtFile, 'utf8')) !== good, 10_000, () => 'the new JWT');
      assert.equal(api.log.length, exchanges + 1, 'one exchange for the rotation, once it could be recorded');
      assert.equal((await daemon.stop()).code, 0);
      assert.deepEqual((await readdir(volume)).sort(), ['jwt', 'jwt.state.json'], 'no temporary files left');
      assert.deepEqual(findLeaks([TOKEN, ROTATED, ...api.issued()]), []);
    } finally {
      try {
        execFileSync('chattr', ['-i', volume], { stdio: 'ignore' });
      } catch {
        // not immutable
      }
      await api.close();
      await dir.remove();
    }
  });
});
