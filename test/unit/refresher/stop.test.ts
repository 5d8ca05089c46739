import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { settle } from '../../helpers/fake-timers.ts';
import { JWT_FILE, SECOND, T0, apiToken, harness, leaks, respond, start } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('stop', () => {
  test('aborts the exchange in flight and resolves promptly; no calls after it', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('stop');
    await start(h, token);
    h.client.enqueue(respond.hang());
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2);
    const signal = h.client.calls[1]?.signal;
    assert.equal(signal?.aborted, false);

    let stopped = false;
    const stopping = h.stop().then(() => { stopped = true; });
    await settle();
    assert.equal(signal.aborted, true, 'the fake client saw its signal aborted');
    assert.equal(stopped, true, 'stop resolved without any time passing');
    await stopping;
    assert.equal(h.failures.length, 0, 'a shutdown is not an exchange failure');

    h.refresher.onCredential(apiToken('after-stop').credential);
    h.refresher.onCredential(token.credential);
    await h.timers.advance(3_600 * SECOND);
    assert.equal(h.client.calls.length, 2, 'no call after stop');
    assert.equal(h.timers.pending, 0, 'no timer left behind');
  });

  test('while waiting for the next refresh or a write retry: nothing fires after it', async () => {
    const h = harness({ random: 1 });
    h.files.failNext = 1;
    h.files.failPath = (path) => path === JWT_FILE;
    await start(h, apiToken('stop-idle'));
    assert.equal(h.timers.pending, 2, 'the loop\'s timer and a write-retry timer');
    await h.stop();
    assert.equal(h.timers.pending, 0);
    await h.timers.advance(3_600 * SECOND);
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.jwtWriteAttempts(), 1);
  });
});
