// A sidecar chained to a broker: its upstream answers with the JWT the broker holds, the same one again until the
// broker has refreshed. The chained sidecar keeps what it holds, never spins, and takes the broker's new JWT.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { REASK_FLOOR_MS, refreshPoint } from '../../../src/refresh/refresh-policy.ts';
import { mulberry32 } from '../../helpers/prng.ts';
import { MIN_TTL_MS, SECOND, T0, WINDOW, ScriptedBroker, apiToken, counter, harness, leaks, type Harness } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

const LIFETIME_S = 900;

/** A chained sidecar whose upstream is `broker`, started now. */
async function chained(h: Harness, broker: ScriptedBroker, name: string): Promise<void> {
  h.client.fallback = broker.responder;
  h.refresher.onCredential(apiToken(name).credential);
  await h.timers.advance(0);
}

function histogram(values: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[String(value)] = (out[String(value)] ?? 0) + 1;
  return out;
}

/** Wall times of the calls, in seconds after T0. */
function callSeconds(h: Harness): number[] {
  return h.client.calls.map((call) => (call.atMs - T0) / SECOND);
}

describe('a chained sidecar and a broker that has not refreshed yet', () => {
  test('the same JWT again is kept (not rewritten, no hook) and asked for again at the latest safe point, where the broker\'s new one is taken', async () => {
    const h = harness({ random: 0.5 });
    const broker = new ScriptedBroker(h.clock);
    broker.refresh();
    await h.timers.advanceTo(T0 + 100 * SECOND);
    await chained(h, broker, 'chained-same');
    const first = h.servedJwt();
    assert.ok(first !== undefined);
    // 800 s left at receipt: 0.7 of them → asked again at T0 + 660 s, before the broker refreshes (T0 + 700 s).
    await h.timers.advanceTo(T0 + 660 * SECOND);
    assert.deepEqual(callSeconds(h), [100, 660]);
    assert.equal(h.servedJwt(), first);
    assert.equal(h.installed.length, 1, 'no new installation, so no hook');
    assert.equal(h.jwtWriteAttempts(), 1, 'the file is not rewritten');
    assert.equal(await counter(h.metrics.exchanges, 'success'), 2, 'the exchange itself succeeded');
    assert.ok(h.logs.some((line) => line.includes('no newer JWT') && line.includes('"repeats":1')));
    // 240 s left: the refresh point of that remaining life, capped at the latest safe point (900 - 60 - 30 s).
    assert.equal(h.refresher.nextAttemptAt(), T0 + 810 * SECOND);
    await h.timers.advanceTo(T0 + 700 * SECOND);
    broker.refresh();
    await h.timers.advanceTo(T0 + 810 * SECOND);
    assert.deepEqual(callSeconds(h), [100, 660, 810]);
    assert.notEqual(h.servedJwt(), first, 'the broker\'s new JWT is served');
    assert.equal(h.installed.length, 2);
    await h.stop();
  });

  test('a broker that cannot refresh (its upstream is down): four asks after the first, never closer than 5 s, then its 503s back off; the chained sidecar recovers with it', async () => {
    const h = harness({ random: 0.5 });
    const broker = new ScriptedBroker(h.clock);
    broker.refresh();
    await chained(h, broker, 'chained-outage');
    const held = h.servedJwt();
    await h.timers.advanceTo(T0 + 839 * SECOND);
    assert.equal(h.servedJwt(), held, 'served while above --min-ttl');
    await h.timers.advanceTo(T0 + 841 * SECOND);
    assert.equal(h.servedJwt(), undefined, 'not served under --min-ttl');
    await h.timers.advanceTo(T0 + LIFETIME_S * SECOND);
    const sameAnswers = callSeconds(h).filter((at) => at > 0 && at < 840);
    // 630 (the refresh point), 810 (the latest safe point), then 5 s doubling, jittered to ¾: 817.5, 832.5.
    assert.deepEqual(sameAnswers, [630, 810, 817.5, 832.5]);
    const gaps = callSeconds(h).slice(1).map((at, i) => at - (callSeconds(h)[i] ?? 0));
    assert.ok(gaps.every((gap) => gap * SECOND >= REASK_FLOOR_MS), `gaps ${gaps.join(', ')}`);
    // Then the broker's 503s once its JWT is under its own --min-ttl: Retry-After 5 s plus the usual backoff.
    assert.deepEqual(callSeconds(h).filter((at) => at >= 840 && at <= 900), [862.5, 868, 874, 881, 890]);
    assert.equal(await counter(h.metrics.exchanges, 'server_error'), 5);
    // The broker's upstream comes back 5 minutes after the JWT expired.
    await h.timers.advanceTo(T0 + 1_200 * SECOND);
    const during = h.client.calls.length;
    broker.refresh();
    await h.timers.advance(66 * SECOND);
    assert.ok(h.servedJwt() !== undefined, 'recovered within the longest backoff plus Retry-After');
    assert.ok(during < 20, `${String(during)} asks during a 20-minute life, 5 of it without a JWT`);
    await h.stop();
  });

  test('a JWT with little life left at start (the broker is about to refresh): taken, and no spin while the broker catches up', async () => {
    const h = harness({ random: 0.5 });
    const broker = new ScriptedBroker(h.clock);
    broker.refresh();
    await h.timers.advanceTo(T0 + 800 * SECOND);
    await chained(h, broker, 'chained-late');
    assert.ok(h.servedJwt() !== undefined, 'a JWT with 100 s left is still over --min-ttl');
    // Latest safe point: 60 s + a quarter of the 40 s usable before expiry, i.e. 30 s from now.
    await h.timers.advanceTo(T0 + 830 * SECOND);
    assert.deepEqual(callSeconds(h), [800, 830]);
    await h.timers.advanceTo(T0 + 834 * SECOND);
    assert.equal(h.client.calls.length, 2, 'past the latest safe point: not before the 5 s floor');
    broker.refresh();
    await h.timers.advanceTo(T0 + 835 * SECOND);
    assert.deepEqual(callSeconds(h), [800, 830, 835]);
    assert.equal(h.installed.length, 2, 'the new JWT taken');
    await h.stop();
  });

  test('an older JWT from another broker replica is not taken: the one that lasts longer stays', async () => {
    const h = harness({ random: 0.5 });
    const replicaA = new ScriptedBroker(h.clock);
    const replicaB = new ScriptedBroker(h.clock);
    replicaB.refresh(800);
    await h.timers.advanceTo(T0 + 10 * SECOND);
    replicaA.refresh();
    await chained(h, replicaA, 'chained-replicas');
    const fromA = h.servedJwt();
    h.client.fallback = replicaB.responder;
    await h.timers.advanceTo(T0 + 640 * SECOND);
    assert.equal(h.client.calls.length, 2);
    assert.equal(h.servedJwt(), fromA, 'replica B\'s JWT expires sooner: kept A\'s');
    assert.equal(h.installed.length, 1);
    await h.stop();
  });

  test('a newer answer after same ones starts the ladder again', async () => {
    const h = harness({ random: 0.5 });
    const broker = new ScriptedBroker(h.clock);
    broker.refresh();
    await chained(h, broker, 'chained-reset');
    await h.timers.advanceTo(T0 + 817.5 * SECOND);
    assert.equal(h.client.calls.length, 4, 'three asks answered with the same JWT');
    broker.refresh();
    await h.timers.advanceTo(T0 + 832.5 * SECOND);
    assert.equal(h.installed.length, 2);
    assert.ok(h.logs.filter((line) => line.includes('no newer JWT')).length === 3);
    await h.stop();
  });
});

describe('asks per JWT lifetime against a healthy broker (seeded)', () => {
  // The broker refreshes by the same policy and window (its own draws): a new 900 s JWT each time.
  for (const [window, low, high] of [[WINDOW, 1.8, 2.1], [[0.7, 0.85], 1.6, 1.9]] as const) {
    test(`window ${window.join('–')}: a chained sidecar asks ${String(low)}–${String(high)} times per 900 s, at most 3 times for one broker JWT`, async () => {
      const random = mulberry32(20_260_101);
      const h = harness({ refreshWindow: window });
      h.setRandom(random);
      const broker = new ScriptedBroker(h.clock);
      const brokerRandom = mulberry32(7);
      const brokerRefreshes: number[] = [];
      const scheduleBroker = (): void => {
        broker.refresh();
        brokerRefreshes.push(h.clock.now());
        const at = refreshPoint({ issuedAtMs: h.clock.now(), expiresAtMs: broker.expiresAtMs }, window, MIN_TTL_MS, brokerRandom);
        h.timers.setTimeout(scheduleBroker, at - h.clock.now());
      };
      scheduleBroker();
      // The chained sidecar starts at a random point of the broker's first JWT.
      await h.timers.advance(Math.round(random() * 600 * SECOND));
      await chained(h, broker, `chained-model-${window.join('-')}`);
      const startedAt = h.clock.now();
      const lifetimes = 200;
      await h.timers.advance(lifetimes * LIFETIME_S * SECOND);
      const perLifetime = h.client.calls.filter((call) => call.atMs >= startedAt).length / lifetimes;
      // Asks per broker JWT: the calls between two broker refreshes.
      const perBrokerJwt = brokerRefreshes.slice(1, -1).map((from, i) => h.client.calls.filter((call) => call.atMs >= from && call.atMs < (brokerRefreshes[i + 2] ?? Infinity)).length);
      process.stdout.write(`# window ${window.join('-')}: chained sidecar ${perLifetime.toFixed(2)} asks per 900 s, broker ${String(brokerRefreshes.length / lifetimes)} exchanges per 900 s; asks per broker JWT ${JSON.stringify(histogram(perBrokerJwt))}\n`);
      assert.ok(Math.max(...perBrokerJwt) <= 3, `at most ${String(Math.max(...perBrokerJwt))} asks per broker JWT`);
      assert.ok(perLifetime > low && perLifetime < high, `${perLifetime.toFixed(2)} asks per 900 s`);
      assert.equal(await counter(h.metrics.exchanges, 'success'), h.client.calls.length, 'never a failure');
      await h.stop();
    });
  }
});
