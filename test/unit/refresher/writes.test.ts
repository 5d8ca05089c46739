import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { settle } from '../../helpers/fake-timers.ts';
import { JWT_FILE, SECOND, T0, apiToken, counter, harness, leaks, notReadyReason, start } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('JWT file write failures', () => {
  test('a failed write keeps the old JWT, is counted, and is retried with backoff without a new exchange', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('write-failure'));
    const old = h.onDisk();
    assert.ok(old !== undefined);

    h.setRandom(1);
    h.files.failNext = 2;
    h.files.failPath = (path) => path === JWT_FILE;
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2, 'the refresh exchanged');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'failure'), 1);
    assert.equal(h.servedJwt(), old, 'the old JWT is still served');
    assert.equal(h.onDisk(), old);
    assert.equal(h.installed.length, 1, 'onInstalled not fired for the failed write');

    const attempts = h.jwtWriteAttempts();
    await h.timers.advance(1 * SECOND - 1);
    assert.equal(h.jwtWriteAttempts(), attempts, 'not retried before 1 s');
    await h.timers.advance(1);
    assert.equal(h.jwtWriteAttempts(), attempts + 1, 'retried after 1 s');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'failure'), 2);
    assert.equal(h.servedJwt(), old);
    await h.timers.advance(2 * SECOND);
    assert.equal(h.jwtWriteAttempts(), attempts + 2, 'retried 2 s later');
    assert.equal(await counter(h.metrics.jwtFileWrites, 'success'), 2);
    const fresh = h.onDisk();
    assert.notEqual(fresh, old);
    assert.equal(h.servedJwt(), fresh, 'the new JWT is served once written');
    assert.equal(h.installed.at(-1)?.jwt, fresh);
    assert.equal(h.client.calls.length, 2, 'no new exchange for the rewrite');
    await h.stop();
  });

  test('the first write failing: nothing served until the retry succeeds; readiness says why, without a path', async () => {
    const h = harness({ random: 1 });
    h.files.failNext = 1;
    h.files.failPath = (path) => path === JWT_FILE;
    await start(h, apiToken('first-write-failure'));
    assert.equal(h.servedJwt(), undefined);
    const reason = notReadyReason(h);
    assert.match(reason, /writing the JWT file failed \(write_failed\)/);
    assert.doesNotMatch(reason, /\//);
    await h.timers.advance(1 * SECOND);
    assert.ok(h.servedJwt() !== undefined);
    assert.equal(h.client.calls.length, 1);
    await h.stop();
  });
});

describe('the JWT file deleted or replaced by someone else', () => {
  test('deleted: not ready until it is rewritten from memory, without an exchange', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('deleted'));
    const jwt = h.onDisk();
    h.files.tamper(JWT_FILE, undefined);
    const hold = h.files.hold();
    const verifying = h.sink.verifyFile();
    await settle();
    assert.match(notReadyReason(h), /JWT file is missing or was replaced/);
    hold();
    await verifying;
    await settle();
    assert.equal(h.onDisk(), jwt, 'rewritten');
    assert.equal(h.served.readiness().ready, true);
    assert.equal(h.client.calls.length, 1, 'no exchange');
    await h.stop();
  });

  test('replaced with a planted JWT: our JWT is written back', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('replaced'));
    const jwt = h.onDisk();
    h.files.tamper(JWT_FILE, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.cGxhbnRlZA');
    await h.sink.verifyFile();
    await settle();
    assert.equal(h.onDisk(), jwt);
    assert.ok(h.logs.some((line) => line.includes('changed by someone else')));
    await h.stop();
  });

  test('our own write is not mistaken for tampering', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('own-write'));
    const writes = h.files.writes.length;
    await h.sink.verifyFile();
    await settle();
    assert.equal(h.files.writes.length, writes);
    await h.stop();
  });
});
