// A flood of idle connections against the real CLI (SPEC.md "Bounded inputs everywhere": both listeners cap
// concurrent connections and keep answering probes). Found from outside: 12,000 idle connections to the metrics port
// took the daemon past the chart's 160 MiB memory limit. The flood never sends a byte and never reads, as an
// attacker would not; the probes and the token request must still be answered, and RSS and open descriptors stay
// bounded.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_connection_flood_0123456789abcdef';
/** Idle connections opened to each listener: several times the cap (512). */
const FLOOD_PER_PORT = 3_000;
/**
 * The chart's memory limit is 160 MiB; an idle daemon uses about 85 MiB. Before the cap, 6,000 idle connections
 * cost about 80 MiB more (13 KiB each) and crossed the limit; with it they stay well under.
 */
const RSS_BOUND_MIB = 150;
/** Both caps (512 each) plus the daemon's own descriptors, with room to spare. */
const FD_BOUND = 1_200;

interface Answer {
  readonly status: number;
  readonly body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => { req.destroy(new Error(`no answer to GET ${path} within 5 s`)); });
    req.end();
  });
}

async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  assert.ok(kib !== undefined, `${field} in /proc/${String(pid)}/status`);
  return Number(kib) / 1024;
}

/** Open `count` connections that never send and never read; resolves once each is connected or has failed. */
async function flood(port: number, count: number, into: Socket[]): Promise<number> {
  let connected = 0;
  for (let start = 0; start < count; start += 500) {
    const batch = Array.from({ length: Math.min(500, count - start) }, () => new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.pause();
      into.push(socket);
      socket.once('connect', () => { connected += 1; resolve(); });
      socket.on('error', () => { resolve(); });
    }));
    await Promise.all(batch);
  }
  return connected;
}

describe('connection flood', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let daemon: Daemon;
  let ports: { token: number; metrics: number | undefined };
  const sockets: Socket[] = [];
  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' } });
    dir = await tempDir();
    const tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
    daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'jwt') }));
    ports = await daemon.ports();
    await waitFor(async () => (await get(ports.metrics ?? 0, '/readyz')).status === 200, 5_000, () => 'ready');
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    if (daemon.child.exitCode === null) assert.equal((await daemon.stop()).code, 0);
    await api.close();
    await dir.remove();
  });

  test(`${FLOOD_PER_PORT} idle connections on each listener: probes and the token answered, RSS and descriptors bounded`, async () => {
    const pid = daemon.child.pid ?? 0;
    const metricsPort = ports.metrics ?? 0;
    const connected = (await flood(metricsPort, FLOOD_PER_PORT, sockets)) + (await flood(ports.token, FLOOD_PER_PORT, sockets));
    // Most were accepted and then closed to make room; the kernel completes every handshake before that.
    assert.ok(connected > FLOOD_PER_PORT, `only ${connected} connections were made`);
    // The flood's sockets are all still open on this side (none reads, none is closed): the probes come during it.
    for (let round = 0; round < 3; round += 1) {
      assert.equal((await get(metricsPort, '/readyz')).status, 200, '/readyz during the flood');
      assert.equal((await get(metricsPort, '/healthz')).status, 200, '/healthz during the flood');
      assert.equal((await get(metricsPort, '/metrics')).status, 200, '/metrics during the flood');
      const token = await get(ports.token, '/v1/token', { 'Ek-Sidecar-Request': 'true' });
      assert.equal(token.status, 200, 'GET /v1/token during the flood');
      assert.ok(api.issued().includes(token.body));
      const fds = (await readdir(`/proc/${String(pid)}/fd`)).length;
      assert.ok(fds < FD_BOUND, `${fds} open descriptors`);
    }
    const peak = await procStatus(pid, 'VmHWM');
    assert.ok(peak < RSS_BOUND_MIB, `peak RSS ${peak.toFixed(1)} MiB under ${RSS_BOUND_MIB} MiB`);
    assert.equal(daemon.child.exitCode, null, 'still running');
    // Operators learn of it: the cap is logged (once a minute at most), naming the listener.
    await daemon.waitForLog((line) => line.level === 'warn' && /^metrics listener: connection cap/.test(line.msg ?? ''));
    await daemon.waitForLog((line) => line.level === 'warn' && /^token API: connection cap/.test(line.msg ?? ''));
  });

  test('nothing secret was printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});
