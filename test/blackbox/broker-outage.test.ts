// A broker outage, for a sidecar chained to it: the broker is the upstream of the chain, so its outage is an
// upstream outage (the JWT held stays, the sidecar backs off) and its restart is a restart (it reuses its JWT on
// disk). A file of its own, with JWTs of 10 s: the wait for the sidecar's next refresh then overlaps other files.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { brokerPki, ready, startBroker, startChained, type BrokerPki, type Started } from '../helpers/broker.ts';
import { findLeaks, scrapeSample, tempDir, waitFor } from '../helpers/daemon.ts';

const TOKEN = 'ek_live_broker_outage_0123456789abcdef';
/** 10 s JWTs and --min-ttl 1s: a chained sidecar refreshes 6–6.75 s into its JWT (the window, then the margin). */
const LIFETIME_S = 10;
const SHORT = ['--min-ttl', '1s'];

let api: FakeApi;
let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: BrokerPki;
let broker: Started;
let chained: Started;

async function jwtOf(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

before(async () => {
  api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, lifetimeSec: LIFETIME_S });
  dir = await tempDir('ek-broker-outage-');
  pki = await brokerPki(dir.path);
  await Promise.all(['broker', 'chained'].map((name) => mkdir(join(dir.path, name))));
  broker = await startBroker({ apiUrl: api.url, pki, dir: join(dir.path, 'broker'), token: TOKEN, extra: SHORT });
  await ready(broker);
  chained = await startChained(`https://127.0.0.1:${String(broker.ports.token)}`, pki, join(dir.path, 'chained'), TOKEN, SHORT);
  await ready(chained);
});

after(async () => {
  await Promise.all([broker.daemon.stop(), chained.daemon.stop()]);
  await api.close();
  await dir.remove();
});

test('a broker outage is an upstream outage for the chain: the JWT held stays, the sidecar backs off and recovers from the restarted broker, which reuses its JWT', async () => {
  const metrics = chained.ports.metrics ?? 0;
  const exchangesBefore = api.log.length;
  const port = broker.ports.token;
  assert.equal((await broker.daemon.stop()).code, 0);
  const kept = await jwtOf(chained.jwtFile);
  // The sidecar's next refresh meets a closed port.
  await waitFor(async () => await scrapeSample(metrics, 'ek_sidecar_exchanges_total{result="network_error"}') >= 1, 15_000, () => 'a refresh against the stopped broker');
  assert.equal(await jwtOf(chained.jwtFile), kept, 'the JWT held stays on disk');
  broker = await startBroker({ apiUrl: api.url, pki, dir: join(dir.path, 'broker'), token: TOKEN, restart: true, listen: `127.0.0.1:${String(port)}`, extra: SHORT });
  await ready(broker);
  // Its JWT on disk is reused while it has life left (past its refresh point, that costs the one exchange it was due).
  assert.ok(api.log.length - exchangesBefore <= 1, 'at most one upstream exchange to restart the broker');
  const current = await waitFor(async () => { const jwt = await jwtOf(chained.jwtFile); return jwt !== kept ? jwt : undefined; }, 30_000, () => 'the chained sidecar recovers');
  assert.equal(current, await jwtOf(broker.jwtFile));
  const failures = await scrapeSample(metrics, 'ek_sidecar_exchanges_total{result="network_error"}');
  assert.ok(failures <= 6, `${String(failures)} failed asks: a backoff, not a spin`);
  assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
});
