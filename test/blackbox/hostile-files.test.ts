// Files a hostile or broken pod can put where the sidecar reads and writes: a FIFO or a link to /dev/zero at the
// token path, a link at the JWT path. Nothing may wedge the daemon, grow its memory, or be followed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, runCli, scrapeSample, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume, rotateSecretVolumeWith } from '../../testkit/kubelet-volume.ts';

const T1 = 'ek_live_hostile_files_first_0123456789';
const T2 = 'ek_live_hostile_files_second_0123456789';

/** Resident set size of a process, in bytes (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN) * 1024;
}

describe('hostile files', () => {
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

  test('a FIFO, then a link to /dev/zero, at --token-file: refused without blocking, the JWT still served, rotation and SIGHUP still work', async () => {
    const secret = join(dir.path, 'secret');
    const tokenFile = await createSecretVolume(secret, T1);
    const jwtFile = join(dir.path, 'jwt');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    try {
      const { token: port, metrics } = await daemon.ports();
      assert.ok(metrics !== undefined);
      const invalid = (): Promise<number> => scrapeSample(metrics, 'ek_sidecar_token_file_reloads_total{result="invalid"}');
      const served = async (): Promise<string> => (await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } })).text();
      const first = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
      // Served too: the file is renamed into place before the state file is written and the JWT served.
      await waitFor(async () => (await served()) === first, 5_000, () => 'the first JWT served');

      await rotateSecretVolumeWith(secret, (path) => {
        execFileSync('mkfifo', [path]);
        return Promise.resolve();
      });
      await waitFor(async () => (await invalid()) >= 1, 5_000, () => 'the FIFO reported as unusable');
      await daemon.waitForLog((line) => line.problem === 'unreadable' && /FIFO/.test(line.msg ?? '')); // the log says what is there
      assert.equal(await served(), first, 'the last good JWT is still served');
      daemon.child.kill('SIGHUP');
      await waitFor(async () => (await invalid()) >= 2, 5_000, () => 'SIGHUP re-reading the FIFO: nothing is wedged');

      await rotateSecretVolume(secret, T2);
      // The fake counts a request when it arrives and lists its JWT once signed: a new JWT in the file, the newest
      // issued, served too (the file is written first).
      const second = await waitFor(async () => {
        const text = await readFile(jwtFile, 'utf8').catch(() => undefined);
        return api.countFor(T2) > 0 && text !== first && text === api.issued().at(-1) && (await served()) === text ? text : undefined;
      }, 5_000, () => 'the JWT of the token rotated in after the FIFO');

      const rssBefore = await rssOf(daemon.child.pid ?? 0);
      await rotateSecretVolumeWith(secret, (path) => symlink('/dev/zero', path));
      await waitFor(async () => (await invalid()) >= 3, 5_000, () => '/dev/zero reported as unusable');
      await daemon.waitForLog((line) => line.problem === 'unreadable' && /character device/.test(line.msg ?? ''));
      const grown = (await rssOf(daemon.child.pid ?? 0)) - rssBefore;
      assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${String(Math.round(grown / 1024 / 1024))} MiB reading /dev/zero`);
      daemon.child.kill('SIGHUP');
      await waitFor(async () => (await invalid()) >= 4, 5_000, () => 'SIGHUP re-reading /dev/zero');
      assert.equal(await served(), second);
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
  });

  test('a link at --jwt-file is refused at start, saying so, and its target is never written', async () => {
    const tokenFile = join(dir.path, 'plain-token');
    await writeFile(tokenFile, T1);
    const victim = join(dir.path, 'victim');
    await writeFile(victim, 'victim');
    const jwtFile = join(dir.path, 'jwt-link');
    await symlink(victim, jwtFile);
    const exchanges = api.log.length;
    const result = await runCli(['once', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile]);
    assert.equal(result.code, 1);
    assert.match(result.stderr + result.stdout, /symbolic link/);
    assert.equal(await readFile(victim, 'utf8'), 'victim');
    assert.equal(await readlink(jwtFile), victim);
    assert.equal(api.log.length, exchanges, 'no exchange for a JWT that could not be written');
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([T1, T2, ...api.issued()]), []);
  });
});
