import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi, type Fault, type MalformedKind } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';

let counter = 0;
const nextToken = (): string => `ek_live_upstream_${String(++counter).padStart(4, '0')}_${'z'.repeat(20)}`;
const usedTokens: string[] = [];

/**
 * The malformed 200s met through a spawned daemon: one of the body, the size cap and the redirect (the client's
 * transport). How every other kind of MALFORMED_KINDS is interpreted is unit-tested without a process, in
 * test/unit/exchange-response.test.ts ("a 200 that is rejected as invalid_response": not JSON, an array, an extra
 * property, each field missing or of the wrong type or value, an expired or short-lived JWT, the content-type).
 */
const SPAWNED_KINDS: readonly MalformedKind[] = ['not-json', 'body-too-large', 'redirect'];

/** ek_sidecar_exchanges_total{result} from the metrics listener. */
async function exchanges(metricsPort: number, result: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
  return Number(new RegExp(`^ek_sidecar_exchanges_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? '0');
}

async function tokenFromApi(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } });
  return { status: response.status, body: await response.text() };
}

describe('bad upstream answers: rejected, the last good JWT kept', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let daemon: Daemon;
  let secret: string;
  let jwtFile: string;
  let tokenPort: number;
  let metricsPort: number;
  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true, limit: 1000, ipLimit: 10_000 });
    dir = await tempDir();
    secret = join(dir.path, 'secret');
    jwtFile = join(dir.path, 'jwt');
    const first = nextToken();
    usedTokens.push(first);
    const tokenFile = await createSecretVolume(secret, first);
    daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--rate-limit', '1000/1m', '--timeout', '1s'] }));
    const ports = await daemon.ports();
    tokenPort = ports.token;
    metricsPort = ports.metrics ?? 0;
    // In the file and served: the file is renamed into place before the state file is written and the JWT served.
    await waitFor(async () => {
      const jwt = await readFile(jwtFile, 'utf8').catch(() => undefined);
      return jwt !== undefined && (await tokenFromApi(tokenPort)).body === jwt;
    }, 5_000, () => 'the first JWT in the file and served');
  });
  after(async () => {
    if (daemon.child.exitCode === null) await daemon.stop();
    await api.close();
    await dir.remove();
  });

  /** Rotate to a new token so the next exchange happens now and meets `fault`; the old JWT must survive it. */
  async function meet(fault: Fault, result: string): Promise<void> {
    const good = await readFile(jwtFile, 'utf8');
    const token = nextToken();
    usedTokens.push(token);
    const before = await exchanges(metricsPort, result);
    api.enqueue(fault);
    await rotateSecretVolume(secret, token);
    // The faulty answer has been met once it is counted.
    await waitFor(async () => api.countFor(token) >= 1 && (await exchanges(metricsPort, result)) > before, 4_000, () => `${result} counted`);
    assert.equal(await readFile(jwtFile, 'utf8'), good, `${JSON.stringify(fault)}: the JWT file is unchanged`);
    const served = await tokenFromApi(tokenPort);
    assert.equal(served.status, 200);
    assert.equal(served.body, good, `${JSON.stringify(fault)}: the old JWT is still served`);
    // The retry (no fault queued any more) brings the new token's JWT: in the file, then served (the file is written
    // first), so the next test starts from one JWT in both places.
    await waitFor(async () => {
      const now = await readFile(jwtFile, 'utf8');
      return now !== good && api.issued().includes(now) && (await tokenFromApi(tokenPort)).body === now;
    }, 4_000, () => `recovery after ${JSON.stringify(fault)}`);
  }

  for (const kind of SPAWNED_KINDS) {
    test(`malformed 200: ${kind}`, async () => {
      await meet(kind, 'invalid_response');
    });
  }
  for (const [fault, result] of [['500', 'server_error'], ['502', 'server_error'], ['503', 'server_error'], ['429', 'rate_limited'], ['reset', 'network_error']] as const) {
    test(`transient ${fault} is retried with backoff`, async () => {
      await meet(fault, result);
    });
  }
  test('a request slower than --timeout is a network_error and retried', async () => {
    await meet({ fault: 'slow', delayMs: 1_500 }, 'network_error');
  });

  test('exchanges_total counts every result', async () => {
    const count = (result: string): Promise<number> => exchanges(metricsPort, result);
    assert.ok((await count('invalid_response')) >= SPAWNED_KINDS.length);
    assert.ok((await count('server_error')) >= 3);
    assert.ok((await count('rate_limited')) >= 1);
    assert.ok((await count('network_error')) >= 2);
    assert.ok((await count('success')) >= SPAWNED_KINDS.length + 6);
  });

  test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([...usedTokens, ...api.issued()]), []);
  });
});
