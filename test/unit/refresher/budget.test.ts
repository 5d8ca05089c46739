import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { RateLimit } from '../../../src/config/config.ts';
import { arrivalMargin } from '../../../src/refresh/rate-limit.ts';
import { settle } from '../../helpers/fake-timers.ts';
import { BOOT, MINUTE, SECOND, STATE_FILE, T0, apiToken, callTimes, expectNextCallIn, gauge, harness, leaks, notReadyReason, respond, type Responder } from '../../helpers/refresher-harness.ts';
import { MemoryFiles } from '../../helpers/memory-files.ts';
import { mulberry32 } from '../../helpers/prng.ts';
import { CredentialError } from '../../../src/core/errors.ts';

after(() => { assert.deepEqual(leaks(), []); });

const LIMIT: RateLimit = { max: 3, windowMs: MINUTE };
const SPAN = LIMIT.windowMs + arrivalMargin(LIMIT);

/** A state file as another process (or the previous run) left it, with these attempts in it. */
function stateWith(records: readonly { key: string; agoMs: number }[]): MemoryFiles {
  const files = new MemoryFiles();
  // The harness's monotonic clock starts at 5,000,000 (fake-timers.ts) on the same boot.
  const exchanges = records.map((record, i) => ({ key: record.key, id: `0000000${String(i)}`, at: T0 - record.agoMs, mono: 5_000_000 - record.agoMs }));
  files.tamper(STATE_FILE, JSON.stringify({ version: 2, bootId: BOOT, exchanges, jwt: null }));
  return files;
}

describe('the client-side rate limit', () => {
  test('fast retries: the 4th attempt waits until the 1st has left the window plus the arrival margin', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.0001 });
    h.client.fallback = respond.status(503);
    h.refresher.onCredential(apiToken('budget').credential);
    await settle();
    await expectNextCallIn(h, 100, '2nd attempt after the 100 ms floor');
    await expectNextCallIn(h, 100, '3rd attempt');
    assert.equal(await gauge(h.metrics.rateLimitBudget), 0);
    assert.equal(await gauge(h.metrics.nextRefresh), (T0 + SPAN) / 1000, 'the 3rd failure wants 300 ms; the budget says T0 + 61.2 s');
    assert.equal(h.served.retryAfterSeconds(), Math.ceil((SPAN - 200) / 1000), 'the 503 Retry-After of the token API says so');
    assert.ok(h.logs.some((line) => line.includes('exchange delayed by the client-side rate limit')));
    await h.timers.advanceTo(T0 + SPAN - 1);
    assert.equal(h.client.calls.length, 3);
    await h.timers.advanceTo(T0 + SPAN);
    assert.equal(h.client.calls.length, 4, 'the delayed attempt is made, not dropped');
    await h.stop();
  });

  test('a long run of random failures, SIGHUPs and token flaps never puts more than max calls in a window per token', async () => {
    const h = harness({ rateLimit: LIMIT });
    const prng = mulberry32(0x5eed);
    // Mostly tiny delays, so that the backoff alone would blow through the budget.
    h.setRandom(() => (prng() < 0.8 ? prng() * 0.02 : prng()));
    const responders: readonly Responder[] = [
      respond.status(503), respond.status(503), respond.networkError(), respond.status(429, { 'retry-after': '1' }), respond.status(401), respond.ok(120),
    ];
    h.client.fallback = (call) => (responders[Math.floor(prng() * responders.length)] ?? respond.ok())(call);
    const a = apiToken('long-run-a');
    const b = apiToken('long-run-b');
    h.refresher.onCredential(a.credential);
    let current = a;
    for (let step = 0; step < 1_500; step += 1) {
      await h.timers.advance(Math.floor(prng() * 5 * SECOND));
      const event = prng();
      if (event < 0.03) {
        current = current === a ? b : a;
        h.refresher.onCredential(current.credential);
      } else if (event < 0.08) {
        h.refresher.onCredential(current.credential); // SIGHUP
      } else if (event < 0.09) {
        h.refresher.onCredentialProblem(new CredentialError('empty', 'token file /secrets/token is empty'));
      }
    }
    await settle();
    assert.ok(h.logs.some((line) => line.includes('exchange delayed by the client-side rate limit')), 'the budget had to hold calls back');
    for (const token of [a, b]) {
      const times = callTimes(h, token);
      assert.ok(times.length > 30, `the run made ${String(times.length)} calls for ${token.fingerprint}`);
      for (let i = 0; i + LIMIT.max < times.length; i += 1) {
        const first = times[i] ?? 0;
        const later = times[i + LIMIT.max] ?? 0;
        assert.ok(later - first >= SPAN, `calls ${String(i)} and ${String(i + LIMIT.max)} for ${token.fingerprint} are ${String(later - first)} ms apart`);
      }
    }
    await h.stop();
  });

  test('a restart with max recent attempts for the token on disk delays the first exchange (crash-loop protection)', async () => {
    const token = apiToken('crash-loop');
    const other = apiToken('crash-loop-other');
    const files = stateWith([{ key: token.fingerprint, agoMs: 30 * SECOND }, { key: token.fingerprint, agoMs: 20 * SECOND }, { key: token.fingerprint, agoMs: 10 * SECOND }, { key: other.fingerprint, agoMs: 5 * SECOND }]);
    const h = harness({ rateLimit: LIMIT, random: 0.5, files });
    await h.restoreFromDisk();
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 0, 'no exchange yet');
    assert.equal(await gauge(h.metrics.rateLimitBudget), 0);
    await expectNextCallIn(h, SPAN - 30 * SECOND, 'the first exchange once the oldest restored record leaves the window');
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });

  test('records of other tokens and stale records do not delay the first exchange', async () => {
    const token = apiToken('restore-free');
    const other = apiToken('restore-free-other');
    const files = stateWith([{ key: token.fingerprint, agoMs: SPAN + 1 }, { key: token.fingerprint, agoMs: 20 * SECOND }, { key: token.fingerprint, agoMs: 10 * SECOND }, { key: other.fingerprint, agoMs: 5 * SECOND }]);
    const h = harness({ rateLimit: LIMIT, random: 0.5, files });
    await h.restoreFromDisk();
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    await h.stop();
  });

  test('another process spending the budget meanwhile is seen at the moment of the attempt (one budget, not two)', async () => {
    const token = apiToken('shared');
    const files = new MemoryFiles();
    const h = harness({ rateLimit: LIMIT, random: 0.0001, files });
    h.client.fallback = respond.status(503);
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    // Another daemon on the same JWT file records two attempts of its own.
    const mine = JSON.parse(files.text(STATE_FILE) ?? '{}') as { exchanges: unknown[] };
    const theirs = [1, 2].map((i) => ({ key: token.fingerprint, id: `ffffff0${String(i)}`, at: T0 + 50, mono: 5_000_050 }));
    files.tamper(STATE_FILE, JSON.stringify({ version: 2, bootId: BOOT, exchanges: [...mine.exchanges, ...theirs], jwt: null }));
    await h.timers.advance(10 * SECOND);
    assert.equal(h.client.calls.length, 1, 'the budget is spent by the other process: no second attempt');
    await h.timers.advanceTo(T0 + SPAN);
    assert.equal(h.client.calls.length, 2, 'until the window frees');
    await h.stop();
  });

  test('a token rotation spends the new token\'s budget, not the old one\'s', async () => {
    const h = harness({ rateLimit: LIMIT, random: 0.0001 });
    const a = apiToken('rot-budget-a');
    const b = apiToken('rot-budget-b');
    h.client.fallback = respond.status(503);
    h.refresher.onCredential(a.credential);
    await settle();
    await h.timers.advance(100);
    await h.timers.advance(100);
    assert.equal(callTimes(h, a).length, 3);
    h.refresher.onCredential(b.credential);
    await settle();
    assert.deepEqual(callTimes(h, b), [T0 + 200], 'the new token is exchanged at once');
    await h.stop();
  });

  // Found: a token file rewritten with a new token every few ms sent 4,886 exchanges in 55 s.
  test('a rotation storm is held by the global cap: twice the per-token cap per window, all tokens together', async () => {
    const h = harness({ rateLimit: { max: 10, windowMs: MINUTE }, random: 0.5 });
    for (let i = 0; i < 200; i += 1) {
      h.refresher.onCredential(apiToken(`storm-${String(i)}`).credential);
      await h.timers.advance(250);
    }
    assert.ok(h.client.calls.length <= 20, `${String(h.client.calls.length)} exchanges in 50 s`);
    assert.ok(h.client.calls.length >= 10, 'but rotations are still exchanged');
    await h.stop();
  });

  test('an attempt that cannot be recorded is not sent (the budget fails closed), and is retried with backoff', async () => {
    const files = new MemoryFiles();
    const h = harness({ random: 1, files });
    files.failNext = 2;
    files.failPath = (path) => path === STATE_FILE;
    h.refresher.onCredential(apiToken('fail-closed').credential);
    await settle();
    assert.equal(h.client.calls.length, 0, 'not sent');
    assert.match(notReadyReason(h), /could not be recorded/);
    await h.timers.advance(1 * SECOND);
    assert.equal(h.client.calls.length, 0, 'the second attempt could not be recorded either');
    await expectNextCallIn(h, 2 * SECOND, 'sent once it can be recorded');
    assert.ok(h.servedJwt() !== undefined);
    await h.stop();
  });
});
