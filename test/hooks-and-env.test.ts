import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, runCli, startDaemon, tempDir, waitFor } from './helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../testkit/kubelet-volume.ts';

const T1 = 'ek_live_hooks_token_one_0123456789abcd';
const T2 = 'ek_live_hooks_token_two_0123456789abcd';

describe('--on-refresh and EK_API_TOKEN', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    api = await startFakeApi({ tokens: { [T1]: 'ok', [T2]: 'ok' } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  test('the hook runs after each new JWT, without a shell, with EK_JWT_FILE set', async () => {
    const secret = join(dir.path, 'secret');
    const tokenFile = await createSecretVolume(secret, T1);
    const jwtFile = join(dir.path, 'jwt');
    const marks = join(dir.path, 'marks');
    // Quotes group the script into one argv word; `$EK_JWT_FILE` stays literal for the hook's own sh to expand.
    const hook = `sh -c 'echo "refreshed $EK_JWT_FILE" >> ${marks}'`;
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', hook] }));
    await waitFor(async () => (await readFile(marks, 'utf8').catch(() => '')).includes('refreshed'));
    await rotateSecretVolume(secret, T2);
    const text = await waitFor(async () => {
      const content = await readFile(marks, 'utf8').catch(() => '');
      return content.split('\n').filter(Boolean).length >= 2 ? content : undefined;
    });
    assert.deepEqual(text.split('\n').filter(Boolean), [`refreshed ${jwtFile}`, `refreshed ${jwtFile}`]);
    assert.equal((await daemon.stop()).code, 0);
  });

  test('a failing or missing hook is logged and never fatal', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-fail'), T1);
    const jwtFile = join(dir.path, 'jwt-fail');
    for (const hook of ['sh -c "exit 3"', '/nonexistent/hook --flag']) {
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', hook] }));
      await daemon.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('--on-refresh command'));
      const { metrics } = await daemon.ports();
      assert.equal((await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status, 200);
      assert.equal((await daemon.stop()).code, 0);
    }
  });

  test('EK_API_TOKEN is used when no token file is given, with one warning, and never passed to the hook', async () => {
    const jwtFile = join(dir.path, 'jwt-env');
    const hookEnv = join(dir.path, 'hook-env');
    const args = ['run', '--api-url', api.url, '--jwt-file', jwtFile, '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--on-refresh', `sh -c 'env > ${hookEnv}'`];
    const daemon = startDaemon(args, { EK_API_TOKEN: T1 });
    await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    assert.equal(daemon.logs().filter((line) => typeof line.msg === 'string' && line.msg.includes('EK_API_TOKEN')).length, 1);
    const seenByHook = await waitFor(async () => (await readFile(hookEnv, 'utf8').catch(() => '')) || undefined);
    assert.match(seenByHook, /^EK_JWT_FILE=/m);
    assert.ok(!seenByHook.includes(T1), 'the hook does not get the API token');
    assert.equal((await daemon.stop()).code, 0);
  });

  test('EK_API_TOKEN is ignored when a token file is given explicitly', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-explicit'), T2);
    const jwtFile = join(dir.path, 'jwt-explicit');
    const before = api.countFor(T1);
    const result = await runCli(['once', '--api-url', api.url, '--jwt-file', jwtFile], { EK_API_TOKEN: T1, EK_TOKEN_FILE: tokenFile });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(api.countFor(T1), before);
  });

  test('a malformed EK_API_TOKEN exits 2 without echoing it', async () => {
    const result = await runCli(['once', '--api-url', api.url, '--jwt-file', join(dir.path, 'x')], { EK_API_TOKEN: 'sk_wrong secret value' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /EK_API_TOKEN/);
    assert.ok(!result.stderr.includes('sk_wrong'));
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([T1, T2, 'sk_wrong secret value', ...api.issued()]), []);
  });
});
