import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { settle } from '../../helpers/fake-timers.ts';
import { SECOND, T0, apiToken, harness, leaks, respond, start, type Responder } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('rotation during an exchange in flight', () => {
  // The old token's outcome must not overwrite the "now" that onCredential(new) set while the exchange was in flight.
  const outcomes: readonly (readonly [string, () => Responder])[] = [
    ['succeeds', () => respond.ok()],
    ['fails with 503', () => respond.status(503)],
    ['fails with 429 Retry-After 30', () => respond.status(429, { 'retry-after': '30' })],
    ['fails with 401', () => respond.status(401)],
  ];
  for (const [outcome, answer] of outcomes) {
    test(`the old token's exchange ${outcome} after the rotation: the new token is exchanged next, at once`, async () => {
      const h = harness({ random: 0.5 });
      const a = apiToken(`inflight-a-${outcome.replaceAll(' ', '-')}`);
      const b = apiToken(`inflight-b-${outcome.replaceAll(' ', '-')}`);
      const pending = respond.later();
      h.client.enqueue(pending.responder);
      h.refresher.onCredential(a.credential);
      await settle();
      assert.equal(h.client.calls.length, 1);

      await h.timers.advance(200);
      h.refresher.onCredential(b.credential);
      await settle();
      assert.equal(h.client.calls.length, 1, 'one exchange in flight at most');

      await h.timers.advance(300);
      pending.answer(answer());
      await settle();
      assert.equal(h.client.calls.length, 2, 'the new token is exchanged as soon as the old exchange ends');
      assert.equal(h.client.calls[1]?.token, b.value);
      assert.equal(h.client.calls[1].atMs, T0 + 500);
      assert.equal(h.state()?.jwt?.key, b.fingerprint, 'the new token\'s JWT is the one on disk');
      assert.ok(h.logs.some((line) => line.includes('"reason":"rotation"')));
      await h.stop();
    });
  }

  test('the old token\'s exchange is aborted by neither the rotation nor the new token: one exchange in flight at most', async () => {
    const h = harness({ random: 0.5 });
    const pending = respond.later();
    h.client.enqueue(pending.responder);
    h.refresher.onCredential(apiToken('one-in-flight-a').credential);
    await settle();
    for (const name of ['one-in-flight-b', 'one-in-flight-c']) {
      h.refresher.onCredential(apiToken(name).credential);
      await h.timers.advance(100);
    }
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.signal.aborted, false);
    pending.answer(respond.ok());
    await h.stop();
  });
});

describe('rotation while healthy', () => {
  test('a new token is exchanged at once and its JWT replaces the old one', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('rotate-old'));
    const old = h.onDisk();
    await h.timers.advance(100 * SECOND);
    const fresh = apiToken('rotate-new');
    h.refresher.onCredential(fresh.credential);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.token, fresh.value);
    assert.equal(h.client.calls[1].atMs, T0 + 100 * SECOND);
    assert.notEqual(h.servedJwt(), old);
    assert.equal(h.state()?.jwt?.key, fresh.fingerprint);
    assert.equal(h.refresher.nextAttemptAt(), T0 + 100 * SECOND + 630 * SECOND);
    await h.stop();
  });

  test('back to the token the JWT on disk belongs to, before the new one got a JWT: no exchange until its refresh point', async () => {
    const h = harness({ random: 1 });
    const a = apiToken('flap-a');
    await start(h, a);
    const jwt = h.onDisk();
    h.client.enqueue(respond.status(503));
    h.refresher.onCredential(apiToken('flap-b').credential);
    await settle();
    h.refresher.onCredential(a.credential);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.servedJwt(), jwt);
    assert.equal(h.refresher.nextAttemptAt(), T0 + 720 * SECOND);
    await h.stop();
  });
});

describe('a 401 from the upstream on a proxied request (a revoked JWT?)', () => {
  test('is checked by one new exchange, within the budget, at most once per JWT', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('proxy-401'));
    await h.timers.advance(10 * SECOND);
    h.refresher.onUpstreamUnauthorized();
    h.refresher.onUpstreamUnauthorized();
    await settle();
    assert.equal(h.client.calls.length, 2, 'one check');
    assert.ok(h.logs.some((line) => line.includes('"reason":"proxy-401"')));
    // The check brought a new JWT: a 401 with it may be checked once more.
    h.refresher.onUpstreamUnauthorized();
    await settle();
    assert.equal(h.client.calls.length, 3);
    await h.stop();
  });

  test('the same JWT after its check (the check failed): no more exchanges for it', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('proxy-401-same'));
    h.client.enqueue(respond.status(503));
    h.refresher.onUpstreamUnauthorized();
    await settle();
    assert.equal(h.client.calls.length, 2);
    h.refresher.onUpstreamUnauthorized();
    await settle();
    assert.equal(h.client.calls.length, 2, 'the JWT was checked already; the backoff retry is the only one pending');
    await h.stop();
  });
});
