import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { settle } from '../../helpers/fake-timers.ts';
import { MINUTE, SECOND, T0, apiToken, counter, expectNextCallIn, harness, leaks, notReadyReason, respond, start } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('transient failures: full-jitter backoff, the old JWT kept', () => {
  test('503s then success: retries 1 s, 2 s, 4 s later with random 1; the old JWT served throughout', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('backoff'));
    const old = h.onDisk();
    assert.ok(old !== undefined);

    h.client.enqueue(respond.status(503), respond.status(503), respond.status(503), respond.ok());
    h.setRandom(1);
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2, 'the scheduled refresh met a 503');
    for (const delay of [1, 2, 4]) {
      assert.equal(h.servedJwt(), old, 'the old JWT is still served');
      assert.equal(h.onDisk(), old, 'and still on disk');
      await expectNextCallIn(h, delay * SECOND, `retry after ${String(delay)} s`);
    }
    assert.equal(h.client.calls.length, 5);
    assert.notEqual(h.servedJwt(), old, 'the retry that succeeded brought a new JWT');
    assert.equal(await counter(h.metrics.exchanges, 'server_error'), 3);
    assert.equal(await counter(h.metrics.exchanges, 'success'), 2);
    assert.deepEqual(h.failures.map((error) => 'code' in error ? error.code : ''), ['server_error', 'server_error', 'server_error']);
    await h.stop();
  });

  test('repeated failures: 1 s doubling, capped at 60 s; a success resets the backoff', async () => {
    const h = harness({ random: 1, rateLimit: { max: 100, windowMs: MINUTE } });
    h.client.fallback = respond.status(502);
    h.client.enqueue(respond.networkError());
    h.refresher.onCredential(apiToken('cap').credential);
    await settle();
    for (const delay of [1, 2, 4, 8, 16, 32, 60, 60, 60]) await expectNextCallIn(h, delay * SECOND, `backoff ${String(delay)} s`);
    assert.equal(await counter(h.metrics.exchanges, 'network_error'), 1);
    assert.equal(await counter(h.metrics.exchanges, 'server_error'), 9);
    assert.equal(h.servedJwt(), undefined);
    assert.match(notReadyReason(h), /last exchange failed \(server_error, HTTP 502\)/);

    h.client.enqueue(respond.ok(), respond.status(500));
    await expectNextCallIn(h, 60 * SECOND, 'the next retry');
    assert.ok(h.servedJwt() !== undefined, 'served once the upstream is back');
    // The next failure starts again from 1 s.
    const refreshAt = h.refresher.nextAttemptAt();
    assert.ok(refreshAt !== undefined);
    await h.timers.advanceTo(refreshAt);
    await expectNextCallIn(h, 1 * SECOND, 'backoff restarts at 1 s');
    await h.stop();
  });

  test('full jitter: random 0.25 on the 3rd failure waits 1 s (a quarter of 4 s), and never less than 100 ms', async () => {
    const h = harness({ random: 0.25 });
    h.client.fallback = respond.status(503);
    h.refresher.onCredential(apiToken('jitter').credential);
    await settle();
    await expectNextCallIn(h, 250, 'quarter of 1 s');
    await expectNextCallIn(h, 500, 'quarter of 2 s');
    // The delay is drawn when a failure happens: this one is drawn at the 4th failure, with random 0.
    h.setRandom(0);
    await expectNextCallIn(h, 1_000, 'quarter of 4 s');
    await expectNextCallIn(h, 100, 'random 0 still waits 100 ms');
    await h.stop();
  });

  test('429 with Retry-After: 30 → the next attempt after 30 s plus the jittered backoff', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-after'), respond.status(429, { 'retry-after': '30' }));
    assert.equal(await counter(h.metrics.exchanges, 'rate_limited'), 1);
    await expectNextCallIn(h, 31 * SECOND, 'Retry-After 30 + backoff 1 s');
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });

  test('429 with Retry-After as an HTTP-date 45 s ahead → the next attempt 45 s plus backoff later', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-date'), respond.status(429, { 'retry-after': new Date(T0 + 45 * SECOND).toUTCString() }));
    await expectNextCallIn(h, 46 * SECOND, 'Retry-After date + backoff 1 s');
    await h.stop();
  });

  test('an absurd Retry-After is capped at 15 minutes', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('retry-after-cap'), respond.status(429, { 'retry-after': '86400' }));
    await expectNextCallIn(h, 15 * MINUTE + SECOND, 'capped Retry-After + backoff 1 s');
    await h.stop();
  });

  test('Retry-After adds to the grown backoff, so clients sharing a token spread out', async () => {
    const h = harness({ random: 1 });
    h.client.enqueue(respond.status(503), respond.status(503), respond.status(503), respond.status(429, { 'retry-after': '2' }));
    h.refresher.onCredential(apiToken('longer-backoff').credential);
    await settle();
    await expectNextCallIn(h, 1 * SECOND, '1st');
    await expectNextCallIn(h, 2 * SECOND, '2nd');
    await expectNextCallIn(h, 4 * SECOND, '3rd');
    await expectNextCallIn(h, 10 * SECOND, 'the 4th failure: Retry-After 2 s + backoff 8 s');
    await h.stop();
  });

  test('the upstream\'s RateLimit-Remaining is exposed, from successes and failures alike', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('remaining'), respond.ok(900, { 'ratelimit-remaining': '7' }));
    assert.equal((await h.metrics.upstreamRateLimitRemaining.get()).values[0]?.value, 7);
    h.client.enqueue(respond.status(429, { 'ratelimit-remaining': '0', 'retry-after': '1' }));
    await h.timers.advanceTo(T0 + 720 * SECOND);
    assert.equal((await h.metrics.upstreamRateLimitRemaining.get()).values[0]?.value, 0);
    await h.stop();
  });
});
