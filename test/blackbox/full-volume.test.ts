// A real, nearly full volume: a tmpfs of a few pages, filled so that the JWT (padded past a page) does not fit.
// write-file-atomic once installed the first 4,096 bytes of a JWT there and counted it a success.
import assert from 'node:assert/strict';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { baseArgs, findLeaks, scrapeSample, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';
import { withSmallVolume } from '../helpers/small-volume.ts';

const TOKEN = 'ek_live_full_volume_0123456789abcdef';
/** About 12 KiB of JWT: three pages and more. */
const PADDING = 9_000;

describe('a full volume', () => {
  test('no truncated JWT is installed or counted, /readyz stays 503; once space is freed the write is retried and succeeds', (t) => withSmallVolume(t, 256 * 1024, async (volume) => {
    const api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, jwtPadding: PADDING });
    const dir = await tempDir();
    try {
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
      const jwtFile = join(volume.path, 'jwt');
      // Two pages free: room for the small state file, and for only part of the JWT whatever is written first.
      await volume.fillLeaving(8_192);
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
      try {
        const { metrics } = await daemon.ports();
        assert.ok(metrics !== undefined);
        const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status;
        await waitFor(async () => (await scrapeSample(metrics, 'ek_sidecar_jwt_file_writes_total{result="failure"}')) >= 1, 10_000, () => 'a failed JWT write');
        assert.ok((api.issued().at(-1)?.length ?? 0) > 12_000, 'the JWT is larger than the free space');
        assert.equal(await scrapeSample(metrics, 'ek_sidecar_jwt_file_writes_total{result="success"}'), 0, 'no write counted a success');
        await assert.rejects(lstat(jwtFile), { code: 'ENOENT' }, 'no JWT file at all, truncated or not');
        assert.equal(await readyz(), 503);
        assert.deepEqual((await readdir(volume.path)).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');
        await daemon.waitForLog((line) => /ENOSPC/.test(line.msg ?? '')); // the log says why

        await volume.drain();
        const jwt = await waitFor(async () => {
          const text = await readFile(jwtFile, 'utf8').catch(() => undefined);
          return text !== undefined && text === api.issued().at(-1) ? text : undefined;
        }, 20_000, () => 'the retried write');
        assert.ok(jwt.length > 12_000);
        await waitFor(async () => (await readyz()) === 200, 5_000, () => '/readyz 200 after the write');
        assert.equal(await scrapeSample(metrics, 'ek_sidecar_jwt_file_writes_total{result="success"}'), 1);
        assert.equal(api.countFor(TOKEN), 1, 'the retries wrote the same JWT: no new exchange');
      } finally {
        assert.equal((await daemon.stop()).code, 0);
      }
      assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
    } finally {
      await api.close();
      await dir.remove();
    }
  }));
});

// Found: with the volume full, attempts could not be recorded and were sent anyway: 118 exchanges in 60 s in a crash
// loop, against a limit of 10. The budget fails closed: no attempt is sent that is not durably recorded first.
describe('a crash loop on a full volume', () => {
  test('sends no exchange at all', (t) => withSmallVolume(t, 64 * 1024, async (volume) => {
    const api = await startFakeApi({ tokens: { [TOKEN]: 'ok' } });
    const dir = await tempDir();
    try {
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
      await volume.fillLeaving(0);
      const args = baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(volume.path, 'jwt') });
      for (let restart = 0; restart < 6; restart += 1) {
        const daemon = startDaemon(args);
        const { metrics } = await daemon.ports();
        // Each start fails to record its first attempt (observable), then is killed as a crash loop would.
        await waitFor(async () => (await scrapeSample(metrics ?? 0, 'ek_sidecar_state_file_writes_total{result="failure"}')) >= 1, 10_000, () => 'a failed attempt record');
        await daemon.kill9();
      }
      assert.equal(api.countFor(TOKEN), 0, 'no exchange was sent');
    } finally {
      await api.close();
      await dir.remove();
    }
  }));
});
