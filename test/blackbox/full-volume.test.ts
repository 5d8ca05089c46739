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
        assert.ok(daemon.logs().some((line) => /ENOSPC/.test(line.msg ?? '')), 'the log says why');

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
