import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Random } from '../../src/core/clock.ts';
import { CredentialError, DiskError, ExchangeError } from '../../src/core/errors.ts';
import {
  NEW_CREDENTIAL,
  afterFailure,
  afterNewJwt,
  afterNoNewer,
  afterReuse,
  retryOnReload,
  wanted,
  type AttemptFailure,
  type AttemptState,
} from '../../src/refresh/attempt-state.ts';
import { AUTH_RETRY_MS, BROKER_AUTH_RETRY_BASE_MS, latestRefresh, latestSafeAt } from '../../src/refresh/refresh-policy.ts';

const NOW = 5_000_000;
const MIN_TTL = 60_000;
const WINDOW: readonly [number, number] = [0.6, 0.8];
const fixed = (value: number): Random => () => value;
const half = fixed(0.5);

const unauthorized = (fromBroker = false): ExchangeError => new ExchangeError('unauthorized', 'HTTP 401', { status: 401, fromBroker });
const serverError = new ExchangeError('server_error', 'HTTP 503', { status: 503, retryAfterMs: 2_000 });
const locked = new DiskError('locked', '/volume/jwt.state.json', 'locked');
const unreadable = new CredentialError('unreadable', '/secret/token: unreadable');

/** A state after `failures` failures of `error` for a credential that was (or was not) accepted. */
function failing(error: AttemptFailure, failures: number, accepted: boolean): AttemptState {
  return { ...NEW_CREDENTIAL, accepted, failures, lastError: error, notBeforeMs: NOW - 1, due: { atMs: NOW - 1, reason: 'retry' } };
}

void describe('afterFailure: the retry is the policy of the failure, and no attempt comes before it', () => {
  const table: readonly { name: string; before: AttemptState; error: AttemptFailure; delayMs: number }[] = [
    // backoff: full jitter of 1 s doubling; Retry-After added on top
    { name: 'first 5xx with Retry-After 2 s', before: NEW_CREDENTIAL, error: serverError, delayMs: 2_000 + 500 },
    { name: 'third 5xx in a row', before: failing(serverError, 2, true), error: serverError, delayMs: 2_000 + 2_000 },
    { name: 'the state file is locked: transient backoff', before: NEW_CREDENTIAL, error: locked, delayMs: 500 },
    { name: 'the credential cannot be read: transient backoff', before: failing(unreadable, 1, false), error: unreadable, delayMs: 1_000 },
    // 401/403: 5 minutes ±20 % (0 at random 0.5), or the broker's short ladder for a credential not accepted yet
    { name: 'Enkryptify refuses an accepted credential', before: NEW_CREDENTIAL, error: unauthorized(), delayMs: AUTH_RETRY_MS },
    { name: 'a broker refuses a new credential', before: NEW_CREDENTIAL, error: unauthorized(true), delayMs: BROKER_AUTH_RETRY_BASE_MS },
    { name: 'a broker refuses it again', before: failing(unauthorized(true), 1, false), error: unauthorized(true), delayMs: 2 * BROKER_AUTH_RETRY_BASE_MS },
    { name: 'a broker refuses a credential it accepted before', before: failing(unauthorized(true), 1, true), error: unauthorized(true), delayMs: AUTH_RETRY_MS },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const after = afterFailure(row.before, row.error, NOW, half);
      assert.equal(after.failures, row.before.failures + 1);
      assert.equal(after.lastError, row.error);
      assert.deepEqual(after.due, { atMs: NOW + row.delayMs, reason: 'retry' });
      assert.equal(after.notBeforeMs, NOW + row.delayMs);
      assert.equal(after.accepted, row.before.accepted, 'a failure never changes whether the credential was accepted');
    });
  }
});

void describe('the outcomes that clear the failure history', () => {
  const failed = failing(serverError, 4, false);

  void it('a new JWT: accepted, history cleared, due at its refresh point, the upstream block kept', () => {
    assert.deepEqual(afterNewJwt(NOW + 600_000, NOW + 30_000), {
      ...NEW_CREDENTIAL, accepted: true, upstreamBlockedUntilMs: NOW + 30_000, due: { atMs: NOW + 600_000, reason: 'schedule' },
    });
  });

  void it('a reused JWT: accepted, due at its refresh point', () => {
    assert.deepEqual(afterReuse(NOW + 100), { ...NEW_CREDENTIAL, accepted: true, due: { atMs: NOW + 100, reason: 'schedule' } });
  });

  void it('no newer JWT: accepted, the failures cleared, the repeats counted, and nothing before the re-ask', () => {
    const input = { nowMs: NOW, expiresAtMs: NOW + 400_000, latestSafeAtMs: NOW + 310_000 };
    const once = afterNoNewer(failed, input, WINDOW, MIN_TTL, fixed(0));
    // reaskAt: the refresh point of the remaining life (0.6 of 400 s) within the latest safe point
    assert.deepEqual(once, { ...failed, accepted: true, failures: 0, lastError: undefined, noNewerRepeats: 1, notBeforeMs: NOW + 240_000, due: { atMs: NOW + 240_000, reason: 'schedule' } });
    const past = afterNoNewer(once, { ...input, latestSafeAtMs: NOW }, WINDOW, MIN_TTL, fixed(0));
    // past the latest safe point: 5 s doubling per repeat (2nd: 10 s), jittered in [½, 1]
    assert.equal(past.noNewerRepeats, 2);
    assert.equal(past.notBeforeMs, NOW + 5_000);
    assert.equal(past.due?.atMs, NOW + 5_000);
  });
});

void describe('retryOnReload: the same credential re-read (SIGHUP, a rewritten file)', () => {
  void it('an authentication failure is retried without its backoff', () => {
    const before = failing(unauthorized(), 1, true);
    assert.deepEqual(retryOnReload(before), { ...before, notBeforeMs: undefined });
  });
  for (const error of [serverError, locked, unreadable]) {
    void it(`${error.code}: keeps its schedule`, () => {
      assert.equal(retryOnReload(failing(error, 1, true)), undefined);
    });
  }
  void it('no failure: keeps its schedule', () => {
    assert.equal(retryOnReload(wanted(NEW_CREDENTIAL, NOW + 1, 'schedule')), undefined);
  });
});

void describe('latestSafeAt', () => {
  const jwt = { issuedAtMs: 0, expiresAtMs: 900_000 };
  const planned = jwt.expiresAtMs - latestRefresh(jwt, MIN_TTL); // 90 s before expiry
  const table: readonly { name: string; remainingMs: number; expected: number }[] = [
    { name: 'life as planned: the latest refresh, on the other clock', remainingMs: 500_000, expected: NOW + 500_000 - planned },
    { name: 'life cut short (a wall-clock step forward): brought forward as much', remainingMs: 100_000, expected: NOW + 100_000 - planned },
    { name: 'already past it', remainingMs: 60_000, expected: NOW - 30_000 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.equal(planned, 90_000);
      assert.equal(latestSafeAt(jwt, row.remainingMs, NOW, MIN_TTL), row.expected);
    });
  }
});
