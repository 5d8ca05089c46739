// Slow clients against the real CLI's token API (SPEC.md: headers within 5 s, the whole request within 10 s). The
// deadlines themselves are unit-tested with short limits (test/unit/connections.test.ts "deadlines"); this proves
// that the CLI's listener uses SPEC's values. It waits 10 s on the daemon's clock, so it is a file of its own: the
// runner overlaps that wait with other files instead of holding up the token API's group in endpoints.test.ts.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_slow_clients_0123456789abcdef';

interface SlowClient {
  readonly ms: number;
  readonly reply: string;
}

/** Writes `first`, then `drip` every second; resolves with when the server closed and what it sent. */
function slowClient(port: number, first: string, drip: string): Promise<SlowClient> {
  return new Promise((resolve) => {
    const started = performance.now();
    let reply = '';
    const socket = connect(port, '127.0.0.1', () => { socket.write(first); });
    const timer = setInterval(() => { if (!socket.destroyed) socket.write(drip); }, 1_000);
    socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
    socket.on('error', () => undefined);
    setTimeout(() => { socket.destroy(); }, 20_000).unref();
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ ms: performance.now() - started, reply });
    });
  });
}

test('slow clients: headers must arrive within 5 s, the whole request within 10 s', async () => {
  const api = await startFakeApi({ tokens: { [TOKEN]: 'ok' } });
  const dir = await tempDir();
  try {
    const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
    const jwtFile = join(dir.path, 'jwt');
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }));
    const { token: port, metrics } = await daemon.ports();
    const jwt = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 5_000, () => 'ready');
    const [headers, body] = await Promise.all([
      slowClient(port, `GET /v1/token HTTP/1.1\r\nHost: localhost\r\n`, 'X-Drip: 1\r\n'),
      slowClient(port, `POST /v1/auth/exchange HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1000\r\n\r\n`, 'x'),
    ]);
    assert.ok(headers.ms >= 4_500 && headers.ms < 7_500, `headers dripped: closed after ${String(Math.round(headers.ms))} ms`);
    assert.ok(!headers.reply.includes(jwt) && !headers.reply.startsWith('HTTP/1.1 200'), 'no token for a slow-loris');
    assert.ok(body.ms >= 9_500 && body.ms < 12_500, `body dripped: closed after ${String(Math.round(body.ms))} ms`);
    assert.ok(!body.reply.startsWith('HTTP/1.1 200'), 'no token for a slow body');
    assert.equal((await daemon.stop()).code, 0);
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()], [headers.reply, body.reply]), [], 'nothing secret in the replies');
  } finally {
    await api.close();
    await dir.remove();
  }
});
