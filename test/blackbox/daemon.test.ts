import assert from 'node:assert/strict';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jwtVerify } from 'jose';
import { baseArgs, findLeaks, runCli, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts';
import { createSecretVolume } from '../helpers/kubelet-secret.ts';

const TOKEN = 'ek_live_daemon_test_0123456789abcdef';

describe('ek-sidecar run: the first JWT', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  test('writes a valid JWT, raw, mode 0640, no newline; becomes ready; exits 0 on SIGTERM', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-raw'), TOKEN);
    const jwtFile = join(dir.path, 'jwt');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    const { metrics } = await daemon.ports();
    const jwt = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    assert.equal(jwt, api.issued()[0], 'the file holds exactly the issued JWT');
    assert.ok(!jwt.endsWith('\n'));
    const { payload } = await jwtVerify(jwt, api.jwtKey);
    assert.ok(typeof payload.exp === 'number' && payload.exp * 1000 > Date.now() + 800_000);
    assert.equal((await stat(jwtFile)).mode & 0o777, 0o640);
    // The JWT file comes first, then the state file, then readiness.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 5_000, () => '/readyz 200');
    const state = await readFile(`${jwtFile}.state.json`, 'utf8');
    assert.ok(!state.includes(TOKEN) && !state.includes(jwt), 'the state file holds no secret');
    const { code, ms } = await daemon.stop();
    assert.equal(code, 0);
    assert.ok(ms < 2_000, `exit took ${ms} ms`);
    assert.deepEqual((await readdir(dir.path)).sort(), ['jwt', 'jwt.state.json', 'secret-raw'], 'no temporary files left');
  });

  test('json format and a custom mode', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-json'), TOKEN);
    const jwtFile = join(dir.path, 'jwt.json');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--jwt-format', 'json', '--jwt-file-mode', '600'] }));
    const text = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    const doc = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc).sort(), ['accessToken', 'expiresAt', 'expiresIn', 'tokenType']);
    assert.ok(api.issued().includes(doc.accessToken as string));
    assert.equal(doc.tokenType, 'Bearer');
    assert.match(doc.expiresAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok((doc.expiresIn as number) > 890 && (doc.expiresIn as number) <= 900);
    assert.equal((await stat(jwtFile)).mode & 0o777, 0o600);
    assert.equal((await daemon.stop()).code, 0);
  });

  test('SIGTERM while the exchange hangs: exit 0 within 2 s', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-hang'), TOKEN);
    await api.setMode('hang');
    try {
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'jwt-hang') }));
      await waitFor(() => api.log.some((entry) => entry.fault === 'hang'));
      const { code, ms } = await daemon.stop();
      assert.equal(code, 0);
      assert.ok(ms < 2_000, `exit took ${ms} ms`);
    } finally {
      await api.setMode('ok');
    }
  });

  test('a bad JWT path is reported at start and exits 1', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-badpath'), TOKEN);
    const missing = await runCli(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'no-such-dir', 'jwt') }));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no-such-dir/);
    await writeFile(join(dir.path, 'a-file'), 'x');
    const notDir = await runCli(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'a-file', 'jwt') }));
    assert.equal(notDir.code, 1);
    assert.match(notDir.stderr, /a-file/);
  });

  test('--delete-on-exit removes the JWT file on SIGTERM', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-delete'), TOKEN);
    const jwtFile = join(dir.path, 'jwt-delete');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--delete-on-exit'] }));
    await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    assert.equal((await daemon.stop()).code, 0);
    await assert.rejects(stat(jwtFile), { code: 'ENOENT' });
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});
