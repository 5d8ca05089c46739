import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, runCli, startDaemon, tempDir, waitFor, type LogLine } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';
import { processGone, readPids } from '../helpers/processes.ts';

const T1 = 'ek_live_hooks_token_one_0123456789abcd';
const T2 = 'ek_live_hooks_token_two_0123456789abcd';
/** The CLI keeps its 60 s hook deadline; tests shorten it (it can only be shortened). */
const SHORT_DEADLINE = { EK_TEST_HOOK_DEADLINE_MS: '300' };

async function allGone(pids: readonly number[]): Promise<boolean> {
  return (await Promise.all(pids.map(processGone))).every(Boolean);
}

const hookOutput = (line: LogLine): boolean => line.hookOutput !== undefined;

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
    // The warning comes at start, before the first exchange: awaited as the log line it is, then counted once.
    await daemon.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('EK_API_TOKEN'));
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

  test('a hook that ignores SIGTERM is killed with its whole group at the deadline, and later runs still happen', async () => {
    const secret = join(dir.path, 'secret-stuck');
    const tokenFile = await createSecretVolume(secret, T1);
    const jwtFile = join(dir.path, 'jwt-stuck');
    const pids = join(dir.path, 'stuck-pids');
    // `trap "" TERM` is inherited by the background sleep: only SIGKILL to the group ends the run.
    const hook = `sh -c 'trap "" TERM; sleep 300 & echo $! >> ${pids}; echo $$ >> ${pids}; wait'`;
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', hook] }), SHORT_DEADLINE);
    await daemon.waitForLog((line) => line.msg?.includes('exceeded its deadline') === true);
    const first = await readPids(pids);
    assert.equal(first.length, 2);
    await waitFor(() => allGone(first), 2_000, () => 'the first run\'s group to be gone');
    await rotateSecretVolume(secret, T2);
    await waitFor(async () => (await readPids(pids)).length === 4, 5_000, () => 'a second run after the stuck one');
    await waitFor(() => daemon.logs().filter((line) => line.msg?.includes('exceeded its deadline') === true).length === 2);
    await waitFor(async () => allGone(await readPids(pids)), 2_000, () => 'the second run\'s group to be gone');
    assert.equal((await daemon.stop()).code, 0);
  });

  test('what a hook forks does not outlive the hook', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-fork'), T1);
    const jwtFile = join(dir.path, 'jwt-fork');
    const pids = join(dir.path, 'fork-pids');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', `sh -c 'sleep 300 & echo $! > ${pids}'`] }));
    const [grandchild] = await waitFor(async () => ((await readPids(pids)).length === 1 ? readPids(pids) : undefined));
    assert.ok(grandchild !== undefined);
    await waitFor(() => processGone(grandchild), 2_000, () => 'the forked sleep to be stopped');
    assert.equal((await daemon.stop()).code, 0);
  });

  test('no hook process outlives the daemon: a running group is killed at shutdown, and the daemon exits 0', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-shutdown'), T1);
    const jwtFile = join(dir.path, 'jwt-shutdown');
    const pids = join(dir.path, 'shutdown-pids');
    const hook = `sh -c 'trap "" TERM; sleep 300 & echo $! >> ${pids}; echo $$ >> ${pids}; wait'`;
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', hook] }));
    const running = await waitFor(async () => ((await readPids(pids)).length === 2 ? readPids(pids) : undefined));
    const { code } = await daemon.stop();
    assert.equal(code, 0);
    await waitFor(() => allGone(running), 1_000, () => 'the hook and its child to be gone once the daemon exited');
  });

  test('a hook\'s output is logged line by line, stdout at info and stderr at warn, redacted', async () => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret-cat'), T1);
    const jwtFile = join(dir.path, 'jwt-cat');
    const hook = `sh -c 'cat "$EK_JWT_FILE"; echo; echo reloaded; echo "warning: token ${T2}" >&2'`;
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--on-refresh', hook] }));
    await waitFor(() => daemon.logs().filter(hookOutput).length === 3);
    const jwt = await readFile(jwtFile, 'utf8');
    const output = daemon.logs().filter(hookOutput).map((line) => [line.level, line.hookOutput, line.msg]);
    assert.deepEqual(output.filter(([, stream]) => stream === 'stdout'), [['info', 'stdout', '[redacted]'], ['info', 'stdout', 'reloaded']]);
    assert.deepEqual(output.filter(([, stream]) => stream === 'stderr'), [['warn', 'stderr', 'warning: token [redacted]']]);
    assert.equal((await daemon.stop()).code, 0);
    assert.deepEqual(findLeaks([jwt, ...jwt.split('.').slice(1), T2]), []);
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([T1, T2, 'sk_wrong secret value', ...api.issued()]), []);
  });
});
