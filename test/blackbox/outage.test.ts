// An upstream outage longer than a JWT's life, against the real CLI: served while valid, then 503 and not ready,
// then back. The other bad answers of the upstream: upstream-failures.test.ts.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { baseArgs, findLeaks, scrapeSample, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_outage_token_0123456789abcdef00';

describe('an outage is ridden out until the JWT expires', () => {
  test('the JWT stays served while valid; then 503 and not ready; back when the upstream is', async () => {
    const api = await startFakeApi({ acceptAnyToken: true, lifetimeSec: 4, limit: 1000 });
    const dir = await tempDir();
    try {
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
      const jwtFile = join(dir.path, 'jwt');
      const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--min-ttl', '1s', '--refresh-window', '0.25,0.3', '--rate-limit', '1000/1m', '--timeout', '500ms'] }));
      const { token: port, metrics } = await daemon.ports();
      const good = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
      await api.setMode('down');
      // While the JWT has more than --min-ttl left it is served, despite failing refreshes.
      await waitFor(async () => (await scrapeSample(metrics ?? 0, 'ek_sidecar_exchanges_total{result="network_error"}')) >= 1, 3_000, () => 'a failed refresh counted');
      const served = await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } });
      assert.equal(await served.text(), good);
      // Once under --min-ttl: 503 with Retry-After, readiness fails, the file is left as it was.
      const unavailable = await waitFor(async () => {
        const response = await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } });
        return response.status === 503 ? response : undefined;
      }, 5_000, () => '503 after expiry');
      assert.ok(Number(unavailable.headers.get('retry-after')) >= 1);
      assert.equal((await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status, 503);
      assert.equal(await readFile(jwtFile, 'utf8'), good);
      await api.setMode('ok');
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 70_000, () => 'ready again');
      assert.notEqual(await readFile(jwtFile, 'utf8'), good);
      assert.equal((await daemon.stop()).code, 0);
      assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
    } finally {
      await api.close();
      await dir.remove();
    }
  });
});
