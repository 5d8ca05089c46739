import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CredentialError } from '../../../src/core/errors.ts';
import { settle } from '../../helpers/fake-timers.ts';
import { SECOND, T0, apiToken, counter, expectNextCallIn, harness, leaks, notReadyReason, respond, start } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

/** How an ek-sidecar broker's drop-in marks its own refusals. */
const BROKER = { 'ek-sidecar-broker': '1' };

describe('authentication failures: slow retry, at once on a new credential or SIGHUP', () => {
  for (const [status, code] of [[401, 'unauthorized'], [403, 'forbidden']] as const) {
    for (const [random, delayS] of [[0, 240], [0.5, 300], [1, 360]] as const) {
      test(`${String(status)} for a token that worked (revoked), random ${String(random)} → next attempt ${String(delayS)} s later`, async () => {
        const h = harness({ random });
        await start(h, apiToken(`auth-${String(status)}-${String(random)}`));
        h.client.fallback = respond.status(status);
        await h.timers.advanceTo(h.refresher.nextAttemptAt() ?? Infinity);
        assert.equal(await counter(h.metrics.exchanges, code), 1);
        await expectNextCallIn(h, delayS * SECOND, `${String(status)} retry`);
        await h.stop();
      });
    }
  }

  test('an upstream 401 for a token no exchange has accepted yet keeps SPEC\'s cadence: every 5 minutes, never sooner than 4', async () => {
    // An independent suite checks exactly this against a fake upstream: no second exchange within 4 minutes of a 401.
    for (const [status, random, delayS] of [[401, 0.5, 300], [401, 0, 240], [403, 1, 360]] as const) {
      const h = harness({ random });
      h.client.fallback = respond.status(status);
      await start(h, apiToken(`new-upstream-${String(status)}-${String(random)}`), respond.status(status));
      for (let retry = 0; retry < 3; retry += 1) await expectNextCallIn(h, delayS * SECOND, `retry ${String(retry + 1)}`);
      await h.stop();
    }
  });

  test('a broker\'s 401 (Ek-Sidecar-Broker: 1) for a token no exchange has accepted yet is retried at 5, 10, 20, 40, 80 s, then every 5 minutes', async () => {
    // A chained sidecar that rotated before its broker did, or a new pod started with the new token: the broker
    // reloads its copy within a minute or two, and the sidecar must not wait 5 minutes without a JWT.
    const h = harness({ random: 0.5 });
    h.client.fallback = respond.status(401, BROKER);
    await start(h, apiToken('fresh-401'), respond.status(401, BROKER));
    for (const delayS of [5, 10, 20, 40, 80, 300, 300]) await expectNextCallIn(h, delayS * SECOND, `retry after ${String(delayS)} s`);
    h.client.fallback = respond.ok();
    await h.timers.advance(300 * SECOND);
    assert.ok(h.servedJwt() !== undefined, 'accepted at last');
    await h.stop();
  });

  test('the short ladder is ±20 %: random 0 → 4 s, random 1 → 6 s for the first retry', async () => {
    for (const [random, delayMs] of [[0, 4_000], [1, 6_000]] as const) {
      const h = harness({ random });
      h.client.fallback = respond.status(403, BROKER);
      await start(h, apiToken(`fresh-jitter-${String(random)}`), respond.status(403, BROKER));
      await expectNextCallIn(h, delayMs, `random ${String(random)}`);
      await h.stop();
    }
  });

  test('a rotation to a token the broker does not know yet keeps the old JWT served and takes the new one once it is known', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('before-rotation'));
    const kept = h.servedJwt();
    const next = apiToken('rotated-early');
    h.client.enqueue(respond.status(401, BROKER), respond.status(401, BROKER));
    h.refresher.onCredential(next.credential);
    await settle();
    assert.equal(h.servedJwt(), kept, 'the JWT held stays served');
    await expectNextCallIn(h, 5 * SECOND, 'first retry');
    await expectNextCallIn(h, 10 * SECOND, 'second retry');
    assert.notEqual(h.servedJwt(), kept, 'the third attempt got a JWT for the new token');
    assert.equal(h.client.calls.at(-1)?.token, next.value);
    await h.stop();
  });

  test('a rotation to a token the upstream refuses keeps the old JWT served and retries only after 4–6 minutes', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('before-upstream-rotation'));
    const kept = h.servedJwt();
    h.client.enqueue(respond.status(401));
    h.refresher.onCredential(apiToken('rotated-unknown').credential);
    await settle();
    assert.equal(h.servedJwt(), kept, 'the JWT held stays served');
    await expectNextCallIn(h, 300 * SECOND, 'the 5-minute cadence');
    await h.stop();
  });

  test('a broker\'s 401 for a token that worked before keeps the 5-minute cadence', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('worked-at-broker'));
    h.client.fallback = respond.status(401, BROKER);
    await h.timers.advanceTo(h.refresher.nextAttemptAt() ?? Infinity);
    assert.equal(await counter(h.metrics.exchanges, 'unauthorized'), 1);
    await expectNextCallIn(h, 300 * SECOND, 'revoked at the broker');
    await h.stop();
  });

  test('a new token after a 401 is exchanged at once', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('revoked'), respond.status(401));
    await h.timers.advance(3 * SECOND);
    const fresh = apiToken('replacement');
    h.refresher.onCredential(fresh.credential);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.token, fresh.value);
    assert.equal(h.client.calls[1].atMs, T0 + 3 * SECOND);
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });

  test('the same token re-reported after a 401 (SIGHUP) is exchanged at once', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('sighup');
    await start(h, token, respond.status(401));
    await h.timers.advance(3 * SECOND);
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.atMs, T0 + 3 * SECOND);
    assert.ok(h.servedJwt() !== undefined);
    assert.ok(h.logs.some((line) => line.includes('"reason":"signal"')), 'the exchange says why it happened');
    await h.stop();
  });

  test('the same token re-reported while healthy changes nothing', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('healthy');
    await start(h, token);
    await h.timers.advance(10 * SECOND);
    const due = h.refresher.nextAttemptAt();
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.refresher.nextAttemptAt(), due, 'the refresh point is kept');
    await h.stop();
  });

  test('the same token re-reported after a 503 keeps the backoff (only auth failures are cut short)', async () => {
    const h = harness({ random: 1 });
    const token = apiToken('sighup-503');
    h.client.enqueue(respond.status(503), respond.status(503));
    h.refresher.onCredential(token.credential);
    await settle();
    await expectNextCallIn(h, 1 * SECOND, '1st retry');
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 2);
    await expectNextCallIn(h, 2 * SECOND, '2nd retry unchanged');
    await h.stop();
  });
});

describe('an unusable credential', () => {
  test('keeps the last good one: the next scheduled refresh still uses it', async () => {
    const h = harness({ random: 0.5 });
    const token = apiToken('keep');
    await start(h, token);
    const jwt = h.onDisk();
    h.refresher.onCredentialProblem(new CredentialError('malformed', 'token file /secrets/token does not hold a valid API token'));
    assert.equal(h.servedJwt(), jwt, 'the last good JWT stays served');
    await h.timers.advanceTo(T0 + 630 * SECOND);
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.client.calls[1]?.token, token.value);
    await h.stop();
  });

  test('before any good one: readiness says why, nothing is exchanged', async () => {
    const h = harness({ random: 0.5 });
    h.refresher.onCredentialProblem(new CredentialError('missing', 'token file /secrets/token does not exist'));
    await h.timers.advance(10 * 60 * SECOND);
    assert.equal(h.client.calls.length, 0);
    const reason = notReadyReason(h);
    assert.match(reason, /token file is unusable \(missing\)/);
    assert.doesNotMatch(reason, /\/secrets/, 'no path in a readiness reason');
    await h.stop();
  });

  test('a credential that cannot build its request (an expired projected token) sends nothing and retries with backoff', async () => {
    const h = harness({ random: 1 });
    const token = apiToken('cannot-send');
    let usable = false;
    const credential = { ...token.credential, exchangeRequest: () => usable ? token.credential.exchangeRequest() : Promise.reject(new CredentialError('expired', 'the projected token has expired')) };
    h.refresher.onCredential(credential);
    await settle();
    assert.equal(h.client.calls.length, 0, 'nothing sent');
    assert.equal(h.state()?.exchanges.length ?? 0, 0, 'and no budget spent');
    assert.match(notReadyReason(h), /token file is unusable \(expired\)/);
    usable = true;
    await expectNextCallIn(h, 1 * SECOND, 'retried with backoff');
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });
});
