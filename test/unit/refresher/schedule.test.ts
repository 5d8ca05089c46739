import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fingerprint } from '../../../src/core/fingerprint.ts';
import { MAX_WAKE_MS } from '../../../src/refresh/refresher.ts';
import { settle } from '../../helpers/fake-timers.ts';
import { MIN_TTL_MS, SECOND, T0, UPSTREAM_URL, apiToken, counter, gauge, harness, leaks, makeJwt, respond, start, type Responder } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('first credential', () => {
  test('one exchange at once, JWT written and served, state saved, next exchange at the drawn refresh point', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('first');
    await start(h, token);

    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.token, token.value);
    assert.equal(h.client.calls[0].atMs, T0);
    assert.deepEqual(h.client.calls[0].request, { path: '/v1/auth/exchange', headers: { authorization: `Bearer ${token.value}` }, body: undefined });
    const jwt = h.onDisk();
    assert.ok(jwt !== undefined, 'the JWT is written');
    assert.equal(h.servedJwt(), jwt);
    assert.deepEqual(h.served.readiness(), { ready: true });
    assert.deepEqual(h.installed.map((held) => held.jwt), [jwt], 'onInstalled fired once');
    assert.equal(h.installed[0]?.expiresAtMs, T0 + 900 * SECOND);

    // 0.6 + (0.8 - 0.6) * 0.5 = 0.7 of 900 s.
    const refreshAt = T0 + 630 * SECOND;
    const state = h.state();
    assert.ok(state?.jwt !== undefined, 'the state file names the JWT');
    assert.deepEqual({ ...state.jwt, mac: 'checked below' }, {
      key: token.fingerprint, fingerprint: fingerprint(jwt), issuedAtMs: T0, expiresAtMs: T0 + 900 * SECOND, refreshAtMs: refreshAt, mac: 'checked below',
    });
    assert.equal(state.exchanges.length, 1);
    assert.equal(state.exchanges[0]?.key, token.fingerprint);
    assert.equal(await counter(h.metrics.exchanges, 'success'), 1);
    assert.equal(await counter(h.metrics.jwtFileWrites, 'success'), 1);
    assert.equal(await gauge(h.metrics.jwtExpiry), (T0 + 900 * SECOND) / 1000);
    assert.equal(await gauge(h.metrics.nextRefresh), refreshAt / 1000);
    assert.equal(await gauge(h.metrics.rateLimitBudget), 9);
    assert.equal(h.refresher.nextAttemptAt(), refreshAt);

    await h.timers.advanceTo(refreshAt - 1);
    assert.equal(h.client.calls.length, 1, 'no call before the refresh point');
    assert.equal(h.servedJwt(), jwt, 'still served until then');
    await h.timers.advanceTo(refreshAt);
    assert.equal(h.client.calls.length, 2, 'one call at the refresh point');
    assert.equal(h.client.calls[1]?.atMs, refreshAt);
    assert.notEqual(h.servedJwt(), jwt, 'the new JWT is served');
    await h.stop();
  });

  test('the attempt is on disk before the request goes out (a crash right after it still spends the budget)', async () => {
    const h = harness({ random: 0.5 });
    const pending = respond.later();
    h.client.enqueue(pending.responder);
    h.refresher.onCredential(apiToken('recorded-first').credential);
    await settle();
    assert.equal(h.client.calls.length, 1, 'sent');
    assert.equal(h.state()?.exchanges.length, 1, 'and already recorded');
    pending.answer(respond.ok());
    await h.stop();
  });

  test('the refresh point spans the window: random 0 → 0.6, random 1 → 0.8 of the lifetime', async () => {
    for (const [random, at] of [[0, 540], [1, 720]] as const) {
      const h = harness({ random });
      await start(h, apiToken(`window-${String(random)}`));
      assert.equal(h.refresher.nextAttemptAt(), T0 + at * SECOND, `random ${String(random)}`);
      await h.stop();
    }
  });

  test('a JWT whose exp is earlier than expiresIn says: the earlier one decides the refresh point', async () => {
    const h = harness({ random: 0.5 });
    const shortExp: Responder = (call) => respond.body({ accessToken: makeJwt(call.atMs, 600), expiresIn: 900, tokenType: 'Bearer' })(call);
    await start(h, apiToken('short-exp'), shortExp);
    assert.equal(h.installed[0]?.expiresAtMs, T0 + 600 * SECOND);
    assert.equal(h.refresher.nextAttemptAt(), T0 + 420 * SECOND);
    await h.stop();
  });

  test('the loop wakes at least every 30 s while it waits (the heartbeat of /healthz), without calling the upstream', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('heartbeat'));
    for (let i = 0; i < 10; i += 1) {
      assert.ok((h.timers.nextDueAt() ?? Infinity) - h.clock.now() <= MAX_WAKE_MS);
      await h.timers.runNext();
      assert.equal(h.refresher.alive(), true);
    }
    assert.equal(h.client.calls.length, 1);
    await h.stop();
    assert.equal(h.refresher.alive(), false, 'not alive once stopped');
  });

  test('the upstream\'s numbers out of range are clamped and logged: refresh within the day, never in 2051', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('absurd-expires-in'), respond.body({ accessToken: makeJwt(T0, 1e9), expiresIn: 1e9, tokenType: 'Bearer' }));
    assert.ok(h.servedJwt() !== undefined);
    assert.equal(h.refresher.nextAttemptAt(), T0 + 0.7 * 24 * 3_600 * SECOND);
    assert.ok(h.logs.some((line) => line.includes('out of range') && line.includes('beyond 24 h')));
    await h.stop();
  });

  test('a 200 with RateLimit-Remaining 0 and an epoch Reset never parks the next refresh past the JWT\'s safe point', async () => {
    const h = harness({ random: 1 });
    await start(h, apiToken('epoch-reset'), respond.ok(900, { 'ratelimit-remaining': '0', 'ratelimit-reset': '1800000000' }));
    // The reset is clamped to 15 minutes, and in any case the refresh happens by the latest safe point.
    await h.timers.advanceTo(T0 + 900 * SECOND - MIN_TTL_MS - 30 * SECOND);
    assert.equal(h.client.calls.length, 2, 'refreshed at the latest safe point');
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });

  test('a 200 that is not the documented shape is invalid_response: never written, retried with backoff', async () => {
    const h = harness({ random: 1 });
    const extraField: Responder = (call) => respond.body({ accessToken: makeJwt(call.atMs, 900), expiresIn: 900, tokenType: 'Bearer', refreshToken: 'x' })(call);
    await start(h, apiToken('invalid-200'), extraField);
    assert.equal(await counter(h.metrics.exchanges, 'invalid_response'), 1);
    assert.equal(h.jwtWriteAttempts(), 0, 'nothing written');
    assert.equal(h.servedJwt(), undefined);
    assert.ok(UPSTREAM_URL.length > 0);
    await h.timers.advance(1 * SECOND);
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });
});
