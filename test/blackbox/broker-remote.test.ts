// The broker seen from another host: a client in a network namespace of the test's own, joined by a veth pair, so
// that the broker sees a peer that is not on loopback. What needs a credential works from there; what needs none
// (GET /v1/token, --proxy inject) does not: a broker is never an open JWT dispenser. Skipped, saying why, where
// network namespaces cannot be made (not root).
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ECHO_PATH, type Echo } from '../../testkit/fake-api/probes.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { BROKER_SERVICE, brokerPki, brokerRequest, ready, startBroker, type BrokerPki, type Started } from '../helpers/broker.ts';
import { CLI, PROJECT_ROOT, baseArgs, findLeaks, tempDir, waitFor } from '../helpers/daemon.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';

const TOKEN = 'ek_live_broker_remote_0123456789abcdef';
const WRONG = 'ek_live_broker_wrong_0123456789abcdef0';
const CLIENT = join(PROJECT_ROOT, 'test', 'helpers', 'https-client.ts');

const made = await createNetns();
const skip = 'skip' in made ? made.skip : false;
if (skip !== false) process.stdout.write(`# broker-remote: skipped: ${skip}\n`);

describe('the broker from a peer that is not on loopback (a network namespace)', { skip }, () => {
  const netns = made as Netns;
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pki: BrokerPki;
  let broker: Started;

  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok', [WRONG]: 'ok' } });
    dir = await tempDir('ek-broker-remote-');
    pki = await brokerPki(dir.path, [netns.hostAddress]);
    const brokerDir = join(dir.path, 'broker');
    await mkdir(brokerDir);
    // Every interface, as in a pod: the namespace reaches it through its end of the veth pair.
    broker = await startBroker({ apiUrl: api.url, pki, dir: brokerDir, token: TOKEN, listen: '0.0.0.0:0' });
    await ready(broker);
  });
  after(async () => {
    await broker.daemon.stop();
    await api.close();
    await netns.remove();
    await dir.remove();
  });

  /** A request from inside the namespace, to the broker at this side's address. */
  async function remote(path: string, options: { method?: string; headers?: Record<string, string>; host?: string } = {}): Promise<{ status: number; body: string }> {
    const host = options.host ?? BROKER_SERVICE;
    const ask = { address: netns.hostAddress, port: broker.ports.token, path, method: options.method ?? 'GET', host: `${host}:${String(broker.ports.token)}`, servername: BROKER_SERVICE, ca: pki.ca.certPem, headers: options.headers ?? {} };
    const result = await netns.exec([process.execPath, CLIENT, JSON.stringify(ask)]);
    assert.equal(result.code, 0, `the client inside the namespace failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as { status: number; body: string };
  }

  test('GET /v1/token is 403 from the remote peer, and 200 from loopback', async () => {
    const refused = await remote('/v1/token', { headers: { 'ek-sidecar-request': 'true' } });
    assert.equal(refused.status, 403);
    assert.match(refused.body, /loopback/);
    const local = await brokerRequest({ port: broker.ports.token, ca: pki.ca.certPem, path: '/v1/token', headers: { 'ek-sidecar-request': 'true' } });
    assert.equal(local.status, 200);
    assert.equal(local.body, await readFile(broker.jwtFile, 'utf8'));
  });

  test('the drop-in answers the remote peer that holds the API token, and only it', async () => {
    const granted = await remote('/v1/auth/exchange', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(granted.status, 200);
    assert.equal((JSON.parse(granted.body) as { accessToken: string }).accessToken, await readFile(broker.jwtFile, 'utf8'));
    const wrong = await remote('/v1/auth/exchange', { method: 'POST', headers: { authorization: `Bearer ${WRONG}` } });
    assert.equal(wrong.status, 401);
    const none = await remote('/v1/auth/exchange', { method: 'POST' });
    assert.equal(none.status, 401);
  });

  test('a Host that is neither loopback nor an --allowed-hosts name is 403 from the remote peer', async () => {
    const byAddress = await remote('/v1/auth/exchange', { method: 'POST', host: netns.hostAddress, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(byAddress.status, 403);
    assert.match(byAddress.body, /Host/);
  });

  test('a sidecar in the namespace chained to the broker by its Service name gets its JWT', async () => {
    await netns.setHosts({ [BROKER_SERVICE]: netns.hostAddress });
    const jwtFile = join(dir.path, 'remote-jwt');
    const tokenFile = join(dir.path, 'remote-token');
    await writeFile(tokenFile, TOKEN);
    const exchangesBefore = api.countFor(TOKEN);
    const sidecar = netns.spawn([process.execPath, CLI, ...baseArgs({ apiUrl: `https://${BROKER_SERVICE}:${String(broker.ports.token)}`, tokenFile, jwtFile, extra: ['--ca-file', pki.caFile] })]);
    try {
      const jwt = await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined), 10_000, () => `the chained sidecar's JWT; its log: ${sidecar.stdout().slice(-2_000)}`);
      assert.equal(jwt, await readFile(broker.jwtFile, 'utf8'));
      assert.equal(api.countFor(TOKEN), exchangesBefore, 'no upstream exchange for it');
    } finally {
      sidecar.kill();
      await sidecar.exited;
    }
  });

  test('--proxy inject forwards nothing for the remote peer (403), since it needs no credential', async () => {
    const injectDir = join(dir.path, 'inject');
    await mkdir(injectDir);
    const injecting = await startBroker({ apiUrl: api.url, pki, dir: injectDir, token: TOKEN, listen: '0.0.0.0:0', extra: ['--proxy', 'inject'] });
    try {
      await ready(injecting);
      // From loopback the same request is forwarded with the broker's JWT (the fake's echo reports the credential).
      const local = await brokerRequest({ port: injecting.ports.token, ca: pki.ca.certPem, host: BROKER_SERVICE, path: ECHO_PATH });
      assert.equal(local.status, 200, local.body);
      assert.equal((JSON.parse(local.body) as Echo).authorization.kind, 'jwt');
      const ask = { address: netns.hostAddress, port: injecting.ports.token, path: ECHO_PATH, method: 'GET', host: `${BROKER_SERVICE}:${String(injecting.ports.token)}`, servername: BROKER_SERVICE, ca: pki.ca.certPem, headers: {} };
      const result = await netns.exec([process.execPath, CLIENT, JSON.stringify(ask)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal((JSON.parse(result.stdout) as { status: number }).status, 403);
    } finally {
      await injecting.daemon.stop();
    }
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, WRONG, ...api.issued()]), []);
  });
});
