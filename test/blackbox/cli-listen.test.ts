import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_cli_listen_0123456789abcdef';

/** True when this machine's loopback has IPv6 (so a dual-stack listener can be reached on ::1). */
function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((address) => address.family === 'IPv6' && address.internal) === true);
}

describe('the listeners as configured on the command line', () => {
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

  test('--listen off: no token API, the JWT file only; metrics on `:port` answer on IPv4 and IPv6 loopback', async (t) => {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
    const jwtFile = join(dir.path, 'jwt');
    // `:0`: every interface, the host left to Node (dual-stack where the kernel has IPv6), a free port.
    const daemon = startDaemon(['run', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile, '--listen', 'off', '--metrics-listen', ':0']);
    try {
      const { metrics } = await daemon.ports();
      assert.ok(metrics !== undefined);
      const started = daemon.logs().find((line) => line.msg === 'ek-sidecar started');
      assert.equal(started?.tokenApi, 'off');
      await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
      const v4 = await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200);
      assert.ok(v4);
      if (!hasIpv6Loopback()) {
        t.diagnostic('no IPv6 loopback on this machine: the IPv6 half is not checked');
      } else {
        assert.equal((await fetch(`http://[::1]:${String(metrics)}/healthz`)).status, 200);
      }
      assert.equal((await daemon.stop()).code, 0);
    } finally {
      daemon.child.kill('SIGKILL');
    }
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});
