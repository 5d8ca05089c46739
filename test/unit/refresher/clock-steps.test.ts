import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { settle } from '../../helpers/fake-timers.ts';
import { MemoryFiles } from '../../helpers/memory-files.ts';
import { MIN_TTL_MS, MINUTE, SECOND, T0, apiToken, harness, leaks, respond, start } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

// SPEC "Clocks step": a wall-clock step (NTP, VM resume) in either direction neither parks refreshes past expiry nor
// resets the persisted budget. Timers run on the monotonic clock; the wall clock moves alone here.
describe('wall-clock steps', () => {
  // Found: forward 10 min then back: the next refresh was 609 s away while the JWT expired (503s).
  test('forward 10 min then back: the JWT is refreshed before it falls under --min-ttl, and the next refresh is on time', async () => {
    const h = harness({ random: 0.5 });
    await start(h, apiToken('step-forward-back'));
    await h.timers.advance(60 * SECOND);
    h.clock.step(10 * MINUTE);
    // By the wall clock the JWT now has 900 - 60 - 600 = 240 s left: it must be refreshed at its latest safe point,
    // 240 - 60 (min-ttl) - 30 (margin) = 150 s from now, not at the 630 s planned before the step.
    for (let t = 0; t < 150; t += 10) {
      assert.ok(h.servedJwt() !== undefined, `served ${String(t)} s after the step`);
      await h.timers.advance(10 * SECOND);
    }
    assert.equal(h.client.calls.length, 2, 'refreshed at the latest safe point after the step');
    assert.ok(h.logs.some((line) => line.includes('"reason":"expiring"')), 'and the log says why');
    h.clock.step(-10 * MINUTE);
    // The new JWT (exp in the upstream's time) is planned for its own 630 s, by the monotonic clock.
    const calls = (): number => h.client.calls.length;
    const callsAfterStep = calls();
    for (let t = 0; t < 900; t += 15) {
      await h.timers.advance(15 * SECOND);
      assert.ok(h.servedJwt() !== undefined, `served ${String(t + 15)} s after stepping back`);
    }
    assert.ok(calls() > callsAfterStep, 'refreshed again, not parked');
    await h.stop();
  });

  test('back 10 min: the held JWT is not taken for fresher than it is (the monotonic deadline holds)', async () => {
    const h = harness({ random: 1, rateLimit: { max: 10, windowMs: MINUTE } });
    await start(h, apiToken('step-back'));
    h.client.fallback = respond.status(503);
    h.clock.step(-10 * MINUTE);
    await h.timers.advance(900 * SECOND - MIN_TTL_MS);
    assert.equal(h.servedJwt(), undefined, 'not served with no more than --min-ttl left, whatever the wall clock says');
    await h.stop();
  });

  // Found: back 5 min plus restarts gave 20 exchanges in 34 s (persisted records "in the future" were dropped).
  test('back 5 min and restarts: the persisted budget still holds', async () => {
    const files = new MemoryFiles();
    const LIMIT = { max: 10, windowMs: MINUTE };
    const run1 = harness({ random: 0.0001, rateLimit: LIMIT, files });
    run1.client.fallback = respond.status(503);
    run1.refresher.onCredential(apiToken('step-restart').credential);
    await settle();
    await run1.timers.advance(5 * SECOND);
    const first = run1.client.calls.length;
    await run1.stop();
    assert.ok(first >= 10, `${String(first)} attempts`);
    // A new process after the wall clock went back 5 minutes, on another boot (so wall time is all it has).
    const run2 = harness({ random: 0.0001, rateLimit: LIMIT, files, startMs: T0 - 5 * MINUTE + 6 * SECOND });
    const text = files.text('/volume/jwt.state.json') ?? '';
    files.tamper('/volume/jwt.state.json', text.replace(/"bootId": "[^"]+"/, '"bootId": "another-boot"'));
    await run2.restoreFromDisk();
    run2.client.fallback = respond.status(503);
    run2.refresher.onCredential(apiToken('step-restart').credential);
    await settle();
    await run2.timers.advance(20 * SECOND);
    assert.equal(run2.client.calls.length, 0, 'the records "in the future" still count');
    await run2.stop();
  });
});
