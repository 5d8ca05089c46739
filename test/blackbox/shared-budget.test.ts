// Two daemons on one JWT file (found by the adversarial review: they kept two budgets, 20 in 60 s, and lost state
// records, 39 sent and 31 recorded): one budget between them, never more than the limit in any window.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startFakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';

const TOKEN = 'ek_live_shared_budget_0123456789abcdef';

// Found: two daemons on one JWT file kept two budgets (20 in 60 s) and lost state records (39 sent, 31 recorded).
describe('two daemons on one JWT file', () => {
  test('share one budget: never more than the limit in any window between them', async () => {
    const windowMs = 3_000;
    const max = 3;
    const api = await startFakeApi({ acceptAnyToken: true, limit: max, windowMs, lifetimeSec: 1 });
    const dir = await tempDir();
    try {
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
      const args = baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'jwt'), extra: ['--rate-limit', `${String(max)}/${String(windowMs)}ms`, '--min-ttl', '100ms'] });
      const one = startDaemon(args);
      const two = startDaemon(args);
      // 1 s JWTs refreshed at 70-85 % of their life: each daemon alone would want more than one exchange a second.
      await waitFor(() => api.countFor(TOKEN) >= 3 * max, 20_000, () => 'three windows of exchanges');
      await Promise.all([one.stop(), two.stop()]);
      assert.ok(api.maxInAnyWindow(TOKEN, windowMs) <= max, `${String(api.maxInAnyWindow(TOKEN, windowMs))} in one window`);
      assert.equal(api.log.filter((entry) => entry.status === 429).length, 0, 'the upstream never had to refuse');
      assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
    } finally {
      await api.close();
      await dir.remove();
    }
  });
});
