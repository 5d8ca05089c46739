// Chaining: a broker (TLS, beyond loopback) and sidecars whose --api-url is the broker. The fleet costs the
// upstream the broker's exchanges only; the broker keeps the upstream's credential rules; the chain follows a
// rotation of the API token. A broker's outage and restart: broker-outage.test.ts.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rotateSecretVolume } from '../../testkit/kubelet-volume.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { BROKER_SERVICE, brokerPki, brokerRequest, ready, startBroker, startChained, type BrokerPki, type Started } from '../helpers/broker.ts';
import { findLeaks, scrapeSample, tempDir, waitFor } from '../helpers/daemon.ts';

const TOKEN = 'ek_live_broker_fleet_0123456789abcdef';
const ROTATED = 'ek_live_broker_rotated_0123456789abcd';
const OTHER = 'ek_live_another_workload_0123456789ab';
/** A token the upstream does not know. */
const UNKNOWN = 'ek_live_unknown_upstream_0123456789ab';
/** Short JWTs, so that refreshes happen within a test: 20 s lifetime, refreshed at 14–17 s, --min-ttl 2 s. */
const LIFETIME_S = 20;
const SHORT = ['--min-ttl', '2s'];

async function jwtOf(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

describe('a broker and sidecars chained to it, over TLS on loopback', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pki: BrokerPki;
  let broker: Started;
  let brokerUrl: string;
  const chained: Started[] = [];
  let sequence = 0;
  const scratch = async (name: string): Promise<string> => {
    const path = join(dir.path, `${name}-${String(++sequence)}`);
    await mkdir(path);
    return path;
  };

  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok', [ROTATED]: 'ok', [OTHER]: 'ok' }, lifetimeSec: LIFETIME_S });
    dir = await tempDir('ek-broker-test-');
    pki = await brokerPki(dir.path);
    broker = await startBroker({ apiUrl: api.url, pki, dir: await scratch('broker'), token: TOKEN, extra: SHORT });
    brokerUrl = `https://127.0.0.1:${String(broker.ports.token)}`;
    await ready(broker);
  });
  after(async () => {
    await Promise.all([broker.daemon, ...chained.map((c) => c.daemon)].map((d) => d.stop()));
    await api.close();
    await dir.remove();
  });

  test('three chained sidecars hold the broker\'s JWT; the upstream saw one exchange', async () => {
    for (let i = 0; i < 3; i++) chained.push(await startChained(brokerUrl, pki, await scratch('chained'), TOKEN, SHORT));
    await Promise.all(chained.map((c) => ready(c)));
    const held = await jwtOf(broker.jwtFile);
    for (const c of chained) assert.equal(await jwtOf(c.jwtFile), held, 'the broker\'s JWT');
    assert.equal(api.countFor(TOKEN), 1, 'only the broker exchanged');
    assert.equal(await scrapeSample(broker.ports.metrics ?? 0, 'ek_sidecar_token_requests_total{path="/v1/auth/exchange",code="200"}'), 3);
  });

  test('the drop-in keeps the upstream\'s credential rule: a wrong token is 401 and never reaches the upstream', async () => {
    const answer = await brokerRequest({ port: broker.ports.token, ca: pki.ca.certPem, path: '/v1/auth/exchange', method: 'POST', headers: { authorization: `Bearer ${OTHER}` } });
    assert.equal(answer.status, 401);
    assert.equal(answer.headers['ek-sidecar-broker'], '1', 'the refusal is marked as a broker\'s');
    assert.doesNotMatch(answer.body, /eyJ/, 'no JWT in the refusal');
    const wrong = await startChained(brokerUrl, pki, await scratch('wrong-token'), OTHER, SHORT);
    try {
      await waitFor(async () => await scrapeSample(wrong.ports.metrics ?? 0, 'ek_sidecar_exchanges_total{result="unauthorized"}') === 1, 5_000, () => 'the broker\'s 401');
      assert.equal(await scrapeSample(wrong.ports.metrics ?? 0, 'ek_sidecar_ready'), 0);
      assert.equal(await jwtOf(wrong.jwtFile), undefined, 'no JWT written');
      assert.equal(api.countFor(OTHER), 0, 'the upstream never saw that token');
    } finally {
      await wrong.daemon.stop();
    }
  });

  test('the Host allow-list: the Service name passes, any other name is 403, whatever the credential', async () => {
    const ask = (host: string): ReturnType<typeof brokerRequest> => brokerRequest({ port: broker.ports.token, ca: pki.ca.certPem, path: '/v1/auth/exchange', method: 'POST', host, headers: { authorization: `Bearer ${TOKEN}` } });
    const allowed = await ask(BROKER_SERVICE);
    assert.equal(allowed.status, 200);
    assert.equal((JSON.parse(allowed.body) as { accessToken: string }).accessToken, await jwtOf(broker.jwtFile));
    // TLS checked the broker's name; the Host header is what a DNS-rebinding page controls, and the guard refuses it.
    const other = await brokerRequest({ port: broker.ports.token, ca: pki.ca.certPem, path: '/v1/auth/exchange', method: 'POST', host: 'evil.example', servername: BROKER_SERVICE, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(other.status, 403);
    assert.match(other.body, /Host/);
    const forwarded = await brokerRequest({ port: broker.ports.token, ca: pki.ca.certPem, path: '/v1/auth/exchange', method: 'POST', host: BROKER_SERVICE, headers: { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '10.0.0.7' } });
    assert.equal(forwarded.status, 403, 'a request through a proxy is refused');
  });

  test('a chained sidecar that does not trust the broker\'s CA sends nothing to it (network_error)', async () => {
    const stranger = await brokerPki(await scratch('other-ca'));
    const untrusting = await startChained(brokerUrl, stranger, await scratch('untrusting'), TOKEN, SHORT);
    try {
      await waitFor(async () => await scrapeSample(untrusting.ports.metrics ?? 0, 'ek_sidecar_exchanges_total{result="network_error"}') >= 1, 5_000, () => 'a TLS failure');
      assert.equal(await jwtOf(untrusting.jwtFile), undefined);
      assert.match(untrusting.daemon.stdout(), /certificate|self.signed|verify/i, 'the log says why');
    } finally {
      await untrusting.daemon.stop();
    }
  });

  test('a rotation of the API token reaches the chain: a sidecar that rotates first retries within seconds and takes the broker\'s new JWT', async () => {
    const [first, second] = chained;
    assert.ok(first !== undefined && second !== undefined);
    // Which token a JWT was issued for: the fake API's `sub` names the token's fingerprint.
    const subOf = (jwt: string | undefined): string | undefined => jwt === undefined ? undefined : (JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: string }).sub;
    const oldSub = subOf(await jwtOf(broker.jwtFile));
    const kept = await jwtOf(first.jwtFile);
    // The kubelet updates each pod's copy of the Secret at its own time: here a sidecar first, the broker a second later.
    await rotateSecretVolume(first.tokenDir, ROTATED);
    await waitFor(async () => await scrapeSample(first.ports.metrics ?? 0, 'ek_sidecar_exchanges_total{result="unauthorized"}') === 1, 5_000, () => 'the broker refuses the new token until it has it');
    assert.equal(await jwtOf(first.jwtFile), kept, 'the JWT held stays');
    assert.equal(await scrapeSample(first.ports.metrics ?? 0, 'ek_sidecar_ready'), 1, 'and so does readiness');
    await rotateSecretVolume(broker.tokenDir, ROTATED);
    await waitFor(() => api.countFor(ROTATED) === 1, 5_000, () => 'the broker exchanges the new token');
    const rotated = await waitFor(async () => { const jwt = await jwtOf(broker.jwtFile); return jwt !== undefined && subOf(jwt) !== oldSub ? jwt : undefined; }, 5_000, () => 'the broker\'s new JWT');
    // The broker marked its 401 (Ek-Sidecar-Broker: 1), so the first retry of a token not accepted yet comes 4–6 s
    // after it, not 4–6 minutes.
    await waitFor(async () => await jwtOf(first.jwtFile) === rotated, 10_000, () => 'the rotated sidecar takes the broker\'s new JWT');
    // The other sidecars rotate too and are answered at once.
    for (const c of chained.slice(1)) await rotateSecretVolume(c.tokenDir, ROTATED);
    await Promise.all(chained.slice(1).map((c) => waitFor(async () => subOf(await jwtOf(c.jwtFile)) === subOf(rotated), 5_000, () => 'a rotated sidecar\'s JWT')));
    assert.equal(api.countFor(ROTATED), 1, 'still one upstream exchange for the whole chain');
    assert.ok(await scrapeSample(first.ports.metrics ?? 0, 'ek_sidecar_exchanges_total{result="unauthorized"}') <= 2, 'a refusal or two, not a storm');
  });

  test('the upstream\'s own 401 for a token never accepted keeps SPEC\'s cadence: the next attempt is 4–6 minutes away', async () => {
    const direct = await startChained(api.url, pki, await scratch('direct-unknown'), UNKNOWN, SHORT);
    try {
      const metrics = direct.ports.metrics ?? 0;
      const nextIn = async (): Promise<number> => await scrapeSample(metrics, 'ek_sidecar_jwt_next_refresh_timestamp_seconds') - Date.now() / 1000;
      // Only the slow retry satisfies this: a short ladder would plan the next attempt seconds away.
      await waitFor(async () => await scrapeSample(metrics, 'ek_sidecar_exchanges_total{result="unauthorized"}') === 1 && await nextIn() > 200, 5_000, () => 'a 401 and a retry planned minutes ahead');
      const left = await nextIn();
      assert.ok(left > 230 && left <= 360, `next attempt in ${String(Math.round(left))} s`);
      assert.equal(api.countFor(UNKNOWN), 1, 'one request to the upstream');
    } finally {
      await direct.daemon.stop();
    }
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ROTATED, OTHER, ...api.issued()]), []);
  });
});
