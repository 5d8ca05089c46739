import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';

const TOKEN = 'ek_live_tls_and_proxy_0123456789abcdef';

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Forward every request to the fake API: lets the same fake stand behind TLS. */
function forwardTo(api: FakeApi) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const upstream = request(`${api.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  };
}

describe('upstream over TLS with --ca-file, and through an HTTP proxy', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let tls: Server;
  let proxy: Server;
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const sockets = new Set<Socket>();
  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, limit: 100 });
    dir = await tempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir.path, 'key.pem'), '-out', join(dir.path, 'cert.pem')], { stdio: 'ignore' });
    tls = createHttpsServer({ key: await readFile(join(dir.path, 'key.pem')), cert: await readFile(join(dir.path, 'cert.pem')) }, forwardTo(api));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    // A proxy that tunnels CONNECT and forwards absolute-form requests, recording which it did.
    proxy = createHttpServer((req, res) => {
      forwarded.push(req.url ?? '');
      const upstream = request(req.url ?? '', { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    proxy.on('connect', (req, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const [host = '', port = ''] = (req.url ?? '').split(':');
      const target = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        target.write(head);
        target.pipe(client);
        client.pipe(target);
      });
      sockets.add(client).add(target);
      target.on('error', () => client.destroy());
      client.on('error', () => target.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    tls.closeAllConnections();
    proxy.closeAllConnections();
    await Promise.all([new Promise((resolve) => tls.close(resolve)), new Promise((resolve) => proxy.close(resolve))]);
    await api.close();
    await dir.remove();
  });

  async function runUntil(name: string, apiUrl: string, extra: string[], env: Record<string, string>, until: 'jwt' | 'network_error'): Promise<void> {
    const tokenFile = join(dir.path, `${name}.token`);
    await writeFile(tokenFile, TOKEN);
    const jwtFile = join(dir.path, `${name}.jwt`);
    const daemon = startDaemon(baseArgs({ apiUrl, tokenFile, jwtFile, extra }), env);
    try {
      if (until === 'jwt') await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined), 5_000, () => `a JWT (${daemon.stdout()})`);
      else await daemon.waitForLog((line) => line.result === 'network_error');
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
  }

  test('a self-signed upstream is refused without --ca-file', async () => {
    await runUntil('no-ca', `https://127.0.0.1:${String(portOf(tls))}`, [], {}, 'network_error');
  });

  test('--ca-file adds the CA and the exchange succeeds over TLS', async () => {
    await runUntil('ca', `https://127.0.0.1:${String(portOf(tls))}`, ['--ca-file', join(dir.path, 'cert.pem')], {}, 'jwt');
  });

  test('HTTPS_PROXY tunnels the TLS exchange (CONNECT), with the extra CA still applied', async () => {
    const before = tunnels.length;
    await runUntil('https-proxy', `https://127.0.0.1:${String(portOf(tls))}`, ['--ca-file', join(dir.path, 'cert.pem')], { HTTPS_PROXY: `http://127.0.0.1:${String(portOf(proxy))}` }, 'jwt');
    assert.ok(tunnels.length > before, 'the proxy carried the request');
  });

  test('http_proxy (lower case) carries a plain-HTTP upstream; NO_PROXY bypasses it', async () => {
    const before = tunnels.length + forwarded.length;
    await runUntil('http-proxy', api.url, [], { http_proxy: `http://127.0.0.1:${String(portOf(proxy))}` }, 'jwt');
    assert.ok(tunnels.length + forwarded.length > before, 'the proxy carried the request');
    const bypassBefore = tunnels.length + forwarded.length;
    await runUntil('no-proxy', api.url, [], { HTTP_PROXY: `http://127.0.0.1:${String(portOf(proxy))}`, NO_PROXY: '127.0.0.1' }, 'jwt');
    assert.equal(tunnels.length + forwarded.length, bypassBefore, 'NO_PROXY bypassed the proxy');
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});
