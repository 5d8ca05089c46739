import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Random } from '../../src/core/clock.ts';
import {
  AUTH_RETRY_MS,
  BACKOFF_CAP_MS,
  REASK_FLOOR_MS,
  authRetryDelay,
  backoffDelay,
  brokerAuthRetryDelay,
  isAuthFailure,
  isNewerJwt,
  planNextStep,
  reaskAt,
  refreshPoint,
  retryDelay,
  usesBrokerAuthLadder,
  type Plan,
  type PlanInput,
} from '../../src/refresh/refresh-policy.ts';
import type { ExchangeError } from '../../src/core/errors.ts';

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const fixed = (value: number): Random => () => value;
/** The largest value a Random may return. */
const ALMOST_ONE = 1 - Number.EPSILON;

void describe('refreshPoint', () => {
  const table: readonly { name: string; issuedAtMs: number; expiresAtMs: number; window: readonly [number, number]; minTtlMs: number; random: number; expected: number }[] = [
    { name: '900 s JWT, window start at random 0', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.6, 0.8], minTtlMs: MIN, random: 0, expected: T0 + 540_000 },
    { name: '900 s JWT, middle of the window', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.6, 0.8], minTtlMs: MIN, random: 0.5, expected: T0 + 630_000 },
    { name: '900 s JWT, window end at random ~1', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.6, 0.8], minTtlMs: MIN, random: ALMOST_ONE, expected: T0 + 720_000 },
    { name: 'a point window ignores the draw', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.5, 0.5], minTtlMs: MIN, random: 0.9, expected: T0 + 450_000 },
    { name: 'zero min-ttl', issuedAtMs: 0, expiresAtMs: 1_000_000, window: [0.6, 0.8], minTtlMs: 0, random: 0, expected: 600_000 },
    // latest = expiry - min-ttl - min(30 s, usable / 4), usable = lifetime - min-ttl
    { name: 'late window clamped to min-ttl plus 30 s margin', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.95, 0.99], minTtlMs: MIN, random: 0, expected: T0 + 810_000 },
    { name: 'late window clamped, random ~1', issuedAtMs: T0, expiresAtMs: T0 + 900_000, window: [0.95, 0.99], minTtlMs: MIN, random: ALMOST_ONE, expected: T0 + 810_000 },
    { name: 'short lifetime: clamped to before min-ttl with a quarter of the usable time as margin', issuedAtMs: T0, expiresAtMs: T0 + 100_000, window: [0.6, 0.8], minTtlMs: MIN, random: 0, expected: T0 + 30_000 },
    { name: 'short lifetime, large min-ttl', issuedAtMs: T0, expiresAtMs: T0 + 300_000, window: [0.6, 0.8], minTtlMs: 240_000, random: 0.5, expected: T0 + 45_000 },
    { name: 'lifetime equal to min-ttl: at issue', issuedAtMs: T0, expiresAtMs: T0 + MIN, window: [0.6, 0.8], minTtlMs: MIN, random: 0.5, expected: T0 },
    { name: 'lifetime under min-ttl: never before issue', issuedAtMs: T0, expiresAtMs: T0 + 30_000, window: [0.6, 0.8], minTtlMs: MIN, random: 0.5, expected: T0 },
    { name: 'already expired at issue: never before issue', issuedAtMs: T0, expiresAtMs: T0 - 1_000, window: [0.6, 0.8], minTtlMs: MIN, random: 0.5, expected: T0 },
    { name: 'rounded to whole ms', issuedAtMs: 0, expiresAtMs: 1_000, window: [0.6, 0.8], minTtlMs: 0, random: 0.3333, expected: 667 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const actual = refreshPoint({ issuedAtMs: row.issuedAtMs, expiresAtMs: row.expiresAtMs }, row.window, row.minTtlMs, fixed(row.random));
      assert.equal(actual, row.expected);
    });
  }

  void it('stays inside [issue, expiry - min-ttl] and inside the window when that fits, for any draw', () => {
    const lifetimes = [10_000, 61_000, 120_000, 300_000, 900_000, 3_600_000];
    const windows: readonly (readonly [number, number])[] = [[0.6, 0.8], [0.1, 0.2], [0.9, 0.99], [0.5, 0.5]];
    for (const lifetime of lifetimes) {
      for (const window of windows) {
        for (let step = 0; step <= 20; step++) {
          const random = Math.min(step / 20, ALMOST_ONE);
          const at = refreshPoint({ issuedAtMs: T0, expiresAtMs: T0 + lifetime }, window, MIN, fixed(random));
          assert.ok(at >= T0, 'never before issue');
          if (lifetime > MIN) assert.ok(at <= T0 + lifetime - MIN, `before min-ttl (${String(lifetime)}, ${window.join(',')}, ${String(random)})`);
          assert.ok(at <= Math.round(T0 + lifetime * window[1]), 'never after the window end');
        }
      }
    }
  });
});

void describe('backoffDelay', () => {
  void it('with random ~1 follows the ceiling 1 s doubling to the 60 s cap', () => {
    const delays = Array.from({ length: 10 }, (_, index) => backoffDelay(index + 1, fixed(1)));
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  });

  void it('with random 0 never goes under the 100 ms floor', () => {
    for (const failures of [1, 2, 5, 10, 100]) assert.equal(backoffDelay(failures, fixed(0)), 100);
  });

  const table: readonly { failures: number; random: number; expected: number }[] = [
    { failures: 1, random: 0.5, expected: 500 },
    { failures: 3, random: 0.25, expected: 1_000 },
    { failures: 7, random: 0.5, expected: 30_000 },
    { failures: 0, random: 0.5, expected: 500 },
    { failures: 2_000, random: 0.5, expected: 30_000 },
    { failures: 1, random: 0.01, expected: 100 },
  ];
  for (const row of table) {
    void it(`failure ${String(row.failures)}, random ${String(row.random)} → ${String(row.expected)} ms`, () => {
      assert.equal(backoffDelay(row.failures, fixed(row.random)), row.expected);
    });
  }

  void it('full jitter: every draw lies in [100 ms, ceiling]', () => {
    for (let failures = 1; failures <= 12; failures++) {
      const ceiling = Math.min(BACKOFF_CAP_MS, 1_000 * 2 ** (failures - 1));
      for (let step = 0; step < 100; step++) {
        const delay = backoffDelay(failures, fixed(step / 100));
        assert.ok(delay >= 100 && delay <= ceiling, `${String(delay)} for failure ${String(failures)}`);
      }
    }
  });
});

void describe('authRetryDelay', () => {
  const table: readonly (readonly [number, number])[] = [
    [0, 240_000],
    [0.5, 300_000],
    [ALMOST_ONE, 360_000],
    [1, 360_000],
  ];
  for (const [random, expected] of table) {
    void it(`random ${String(random)} → ${String(expected)} ms`, () => {
      assert.equal(authRetryDelay(fixed(random)), expected);
    });
  }

  void it('is never sooner than 4 minutes nor later than 6', () => {
    for (let step = 0; step <= 100; step++) {
      const delay = authRetryDelay(fixed(Math.min(step / 100, ALMOST_ONE)));
      assert.ok(delay >= 240_000 && delay <= 360_000);
    }
    assert.equal(AUTH_RETRY_MS, 300_000);
  });
});

type Failure = Pick<ExchangeError, 'code' | 'retryAfterMs'> & { readonly fromBroker?: boolean };

void describe('retryDelay', () => {
  const table: readonly { name: string; error: Failure; failures: number; random: number; expected: number }[] = [
    { name: '401 → auth delay', error: { code: 'unauthorized', retryAfterMs: undefined }, failures: 1, random: 0.5, expected: 300_000 },
    { name: '403 → auth delay', error: { code: 'forbidden', retryAfterMs: undefined }, failures: 1, random: 0, expected: 240_000 },
    { name: '401 ignores a short Retry-After', error: { code: 'unauthorized', retryAfterMs: 1_000 }, failures: 1, random: 0.5, expected: 300_000 },
    { name: '403 ignores a long Retry-After', error: { code: 'forbidden', retryAfterMs: 3_600_000 }, failures: 1, random: 0.5, expected: 300_000 },
    { name: '429 with Retry-After → Retry-After plus the jittered backoff', error: { code: 'rate_limited', retryAfterMs: 30_000 }, failures: 1, random: 0.5, expected: 30_500 },
    { name: '429 with a short Retry-After after 3 failures → Retry-After plus the grown backoff', error: { code: 'rate_limited', retryAfterMs: 200 }, failures: 3, random: 0.5, expected: 2_200 },
    { name: '429 with the longest Retry-After the reading keeps (15 min) → plus backoff', error: { code: 'rate_limited', retryAfterMs: 900_000 }, failures: 1, random: 0.5, expected: 900_500 },
    { name: '429 without Retry-After → backoff', error: { code: 'rate_limited', retryAfterMs: undefined }, failures: 2, random: 0.5, expected: 1_000 },
    { name: '503 with Retry-After → Retry-After plus the jittered backoff', error: { code: 'server_error', retryAfterMs: 5_000 }, failures: 1, random: 0.5, expected: 5_500 },
    { name: '5xx → backoff', error: { code: 'server_error', retryAfterMs: undefined }, failures: 4, random: 1, expected: 8_000 },
    { name: 'network error → backoff', error: { code: 'network_error', retryAfterMs: undefined }, failures: 10, random: 1, expected: 60_000 },
    { name: 'invalid response → backoff', error: { code: 'invalid_response', retryAfterMs: undefined }, failures: 1, random: 0, expected: 100 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.equal(retryDelay(row.error, row.failures, fixed(row.random)), row.expected);
    });
  }
});

void describe('brokerAuthRetryDelay (a broker refused a credential no exchange has accepted yet)', () => {
  const table: readonly (readonly [number, number, number])[] = [
    [1, 0.5, 5_000], [2, 0.5, 10_000], [3, 0.5, 20_000], [4, 0.5, 40_000], [5, 0.5, 80_000],
    [1, 0, 4_000], [1, 1, 6_000], [5, 1, 96_000],
    [6, 0.5, 300_000], [50, 0, 240_000],
  ];
  for (const [failures, random, expected] of table) {
    void it(`failure ${String(failures)}, random ${String(random)} → ${String(expected)} ms`, () => {
      assert.equal(brokerAuthRetryDelay(failures, fixed(random)), expected);
    });
  }
});

void describe('the 401/403 cadence: SPEC\'s 5 minutes unless a broker refused a credential never accepted', () => {
  // SPEC: 401/403 are retried every 5 minutes ±20 %, never sooner than 4 minutes. The short ladder is for an
  // ek-sidecar broker's own refusal (Ek-Sidecar-Broker: 1) of a token it may not have read yet.
  const table: readonly { name: string; error: Failure; accepted: boolean; failures: number; ladder: boolean; expected: number }[] = [
    { name: 'upstream 401, credential never accepted → 5 min', error: { code: 'unauthorized', retryAfterMs: undefined }, accepted: false, failures: 1, ladder: false, expected: 300_000 },
    { name: 'upstream 403, credential never accepted → 5 min', error: { code: 'forbidden', retryAfterMs: undefined }, accepted: false, failures: 1, ladder: false, expected: 300_000 },
    { name: 'upstream 401 saying fromBroker false, never accepted → 5 min', error: { code: 'unauthorized', retryAfterMs: undefined, fromBroker: false }, accepted: false, failures: 2, ladder: false, expected: 300_000 },
    { name: 'upstream 401 after having worked (revoked) → 5 min', error: { code: 'unauthorized', retryAfterMs: undefined }, accepted: true, failures: 1, ladder: false, expected: 300_000 },
    { name: 'broker 401, credential never accepted → ladder, 1st', error: { code: 'unauthorized', retryAfterMs: undefined, fromBroker: true }, accepted: false, failures: 1, ladder: true, expected: 5_000 },
    { name: 'broker 401, credential never accepted → ladder, 3rd', error: { code: 'unauthorized', retryAfterMs: undefined, fromBroker: true }, accepted: false, failures: 3, ladder: true, expected: 20_000 },
    { name: 'broker 403, credential never accepted → ladder, 2nd', error: { code: 'forbidden', retryAfterMs: undefined, fromBroker: true }, accepted: false, failures: 2, ladder: true, expected: 10_000 },
    { name: 'broker 401, never accepted, past the ladder → 5 min', error: { code: 'unauthorized', retryAfterMs: undefined, fromBroker: true }, accepted: false, failures: 6, ladder: true, expected: 300_000 },
    { name: 'broker 401 after having worked → 5 min', error: { code: 'unauthorized', retryAfterMs: undefined, fromBroker: true }, accepted: true, failures: 1, ladder: false, expected: 300_000 },
    { name: 'broker 503 (fromBroker is only read for auth failures) → backoff', error: { code: 'server_error', retryAfterMs: undefined, fromBroker: true }, accepted: false, failures: 1, ladder: false, expected: 500 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.equal(usesBrokerAuthLadder(row.error, row.accepted), row.ladder);
      assert.equal(retryDelay(row.error, row.failures, fixed(0.5), row.accepted), row.expected);
    });
  }

  void it('without a broker\'s mark no draw retries sooner than 4 minutes, whatever the failure count', () => {
    for (const accepted of [false, true]) {
      for (let failures = 1; failures <= 8; failures += 1) {
        for (const random of [0, 0.25, 0.5, ALMOST_ONE]) {
          assert.ok(retryDelay({ code: 'unauthorized', retryAfterMs: undefined }, failures, fixed(random), accepted) >= 240_000);
        }
      }
    }
  });
});

void describe('isNewerJwt', () => {
  const held = { jwt: 'a.b.c', expiresAtMs: T0 + 900_000 };
  const table: readonly { name: string; answered: { jwt: string; expiresAtMs: number }; held: typeof held | undefined; expected: boolean }[] = [
    { name: 'nothing held: anything is news', answered: held, held: undefined, expected: true },
    { name: 'the same JWT again (a broker that has not refreshed)', answered: held, held, expected: false },
    { name: 'the same JWT with expiresIn rounded down', answered: { jwt: 'a.b.c', expiresAtMs: T0 + 899_400 }, held, expected: false },
    { name: 'the same JWT with expiresIn rounded down less than last time', answered: { jwt: 'a.b.c', expiresAtMs: T0 + 900_600 }, held, expected: false },
    { name: 'another JWT expiring earlier (another broker replica)', answered: { jwt: 'x.y.z', expiresAtMs: T0 + 800_000 }, held, expected: false },
    { name: 'another JWT expiring at the same time', answered: { jwt: 'x.y.z', expiresAtMs: T0 + 900_000 }, held, expected: false },
    { name: 'a JWT expiring later (the upstream, or a refreshed broker)', answered: { jwt: 'x.y.z', expiresAtMs: T0 + 900_001 }, held, expected: true },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.equal(isNewerJwt(row.answered, row.held), row.expected);
    });
  }
});

void describe('reaskAt (after an answer with no newer JWT)', () => {
  const WINDOW: readonly [number, number] = [0.7, 0.85];
  const now = T0;
  const table: readonly { name: string; expiresIn: number; latestSafeIn: number; repeats: number; random: number; expected: number }[] = [
    { name: 'far from the latest safe point: the refresh point of the remaining life', expiresIn: 600_000, latestSafeIn: 510_000, repeats: 1, random: 0, expected: 420_000 },
    { name: 'the refresh point of the remaining life is capped at the latest safe point', expiresIn: 240_000, latestSafeIn: 150_000, repeats: 1, random: 0.5, expected: 150_000 },
    { name: 'a latest safe point closer than the floor: the floor', expiresIn: 93_000, latestSafeIn: 3_000, repeats: 1, random: 0.5, expected: REASK_FLOOR_MS },
    { name: 'past the latest safe point, first repeat: 5 s', expiresIn: 85_000, latestSafeIn: -5_000, repeats: 1, random: 1, expected: 5_000 },
    { name: 'past it, second repeat: 5–10 s', expiresIn: 85_000, latestSafeIn: -5_000, repeats: 2, random: 1, expected: 10_000 },
    { name: 'past it, third repeat at random 0: half of 20 s', expiresIn: 85_000, latestSafeIn: -5_000, repeats: 3, random: 0, expected: 10_000 },
    { name: 'past it, many repeats: at most 60 s', expiresIn: 85_000, latestSafeIn: -5_000, repeats: 30, random: 1, expected: 60_000 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const at = reaskAt({ nowMs: now, expiresAtMs: now + row.expiresIn, latestSafeAtMs: now + row.latestSafeIn, repeats: row.repeats }, WINDOW, MIN, fixed(row.random));
      assert.equal(at - now, row.expected);
    });
  }

  void it('the floor and the cap follow --min-ttl: a twelfth of it and all of it, within [50 ms, 5 s] and [500 ms, 60 s]', () => {
    const past = (minTtlMs: number, repeats: number): number => reaskAt({ nowMs: now, expiresAtMs: now + minTtlMs + 1_000, latestSafeAtMs: now - 1, repeats }, WINDOW, minTtlMs, fixed(1)) - now;
    assert.deepEqual([past(600, 1), past(600, 2), past(600, 20)], [50, 100, 600], 'the bench\'s --min-ttl 600ms');
    assert.deepEqual([past(12_000, 1), past(12_000, 20)], [1_000, 12_000]);
    assert.deepEqual([past(0, 1), past(0, 20)], [50, 500], '--min-ttl 0');
    assert.deepEqual([past(600_000, 1), past(600_000, 20)], [5_000, 60_000], 'a long --min-ttl keeps 5 s and 60 s');
  });

  void it('never sooner than the floor, never later than a minute past the latest safe point (sweep)', () => {
    for (let expiresIn = 61_000; expiresIn <= 900_000; expiresIn += 7_919) {
      const latestSafeIn = expiresIn - MIN - Math.min(30_000, (expiresIn - MIN) / 4);
      for (const repeats of [1, 2, 5, 9]) {
        for (const random of [0, 0.3, ALMOST_ONE]) {
          const delay = reaskAt({ nowMs: now, expiresAtMs: now + expiresIn, latestSafeAtMs: now + latestSafeIn, repeats }, WINDOW, MIN, fixed(random)) - now;
          assert.ok(delay >= REASK_FLOOR_MS, `${String(delay)} ≥ floor`);
          assert.ok(delay <= Math.max(latestSafeIn, 0) + 60_000, `${String(delay)} within a minute of the latest safe point`);
        }
      }
    }
  });
});

void describe('isAuthFailure', () => {
  const table: readonly (readonly [Failure['code'], boolean])[] = [
    ['unauthorized', true],
    ['forbidden', true],
    ['rate_limited', false],
    ['server_error', false],
    ['network_error', false],
    ['invalid_response', false],
  ];
  for (const [code, expected] of table) {
    void it(`${code} → ${String(expected)}`, () => {
      assert.equal(isAuthFailure({ code }), expected);
    });
  }
});

void describe('planNextStep', () => {
  const now = T0;
  const base: PlanInput = { haveCredential: true, dueAtMs: now, latestSafeAtMs: undefined, budgetAllowsAtMs: now, upstreamBlockedUntilMs: undefined };
  const table: readonly { name: string; input: Partial<PlanInput>; expected: Plan }[] = [
    { name: 'idle without a credential', input: { haveCredential: false }, expected: { kind: 'idle' } },
    { name: 'idle without a credential even when due', input: { haveCredential: false, dueAtMs: now - 1 }, expected: { kind: 'idle' } },
    { name: 'idle when nothing is due', input: { dueAtMs: undefined }, expected: { kind: 'idle' } },
    { name: 'exchange when every clock is now', input: {}, expected: { kind: 'exchange' } },
    { name: 'exchange when every clock has passed', input: { dueAtMs: now - 5_000, budgetAllowsAtMs: now - 1, upstreamBlockedUntilMs: now - 10_000 }, expected: { kind: 'exchange' } },
    { name: 'exchange when the upstream block ends exactly now', input: { upstreamBlockedUntilMs: now }, expected: { kind: 'exchange' } },
    { name: 'wait for the schedule', input: { dueAtMs: now + 60_000 }, expected: { kind: 'wait', untilMs: now + 60_000, cause: 'schedule' } },
    { name: 'wait for the budget', input: { budgetAllowsAtMs: now + 20_000 }, expected: { kind: 'wait', untilMs: now + 20_000, cause: 'budget' } },
    { name: 'wait for the upstream', input: { upstreamBlockedUntilMs: now + 12_000 }, expected: { kind: 'wait', untilMs: now + 12_000, cause: 'upstream' } },
    { name: 'the latest clock wins: budget over schedule', input: { dueAtMs: now + 1_000, budgetAllowsAtMs: now + 2_000, upstreamBlockedUntilMs: now + 1_500 }, expected: { kind: 'wait', untilMs: now + 2_000, cause: 'budget' } },
    { name: 'the latest clock wins: upstream over budget', input: { dueAtMs: now + 1_000, budgetAllowsAtMs: now + 2_000, upstreamBlockedUntilMs: now + 3_000 }, expected: { kind: 'wait', untilMs: now + 3_000, cause: 'upstream' } },
    { name: 'the latest clock wins: schedule over the rest', input: { dueAtMs: now + 9_000, budgetAllowsAtMs: now + 2_000, upstreamBlockedUntilMs: now + 3_000 }, expected: { kind: 'wait', untilMs: now + 9_000, cause: 'schedule' } },
    { name: 'a due time in the past still waits for the budget', input: { dueAtMs: now - 60_000, budgetAllowsAtMs: now + 1 }, expected: { kind: 'wait', untilMs: now + 1, cause: 'budget' } },
    // The JWT's life got shorter than planned (a wall-clock step forward, an early exp): the latest safe point wins.
    { name: 'the latest safe point brings a later schedule forward', input: { dueAtMs: now + 600_000, latestSafeAtMs: now + 30_000 }, expected: { kind: 'wait', untilMs: now + 30_000, cause: 'schedule' } },
    { name: 'a latest safe point already passed: exchange now', input: { dueAtMs: now + 600_000, latestSafeAtMs: now - 1 }, expected: { kind: 'exchange' } },
    { name: 'a latest safe point after the schedule changes nothing', input: { dueAtMs: now + 1_000, latestSafeAtMs: now + 600_000 }, expected: { kind: 'wait', untilMs: now + 1_000, cause: 'schedule' } },
    { name: 'the upstream\'s block never holds a refresh past the latest safe point', input: { dueAtMs: now + 1_000, latestSafeAtMs: now + 5_000, upstreamBlockedUntilMs: now + 900_000 }, expected: { kind: 'wait', untilMs: now + 5_000, cause: 'upstream' } },
    { name: 'the client-side budget is never overridden, even past the latest safe point', input: { dueAtMs: now, latestSafeAtMs: now, budgetAllowsAtMs: now + 40_000 }, expected: { kind: 'wait', untilMs: now + 40_000, cause: 'budget' } },
    { name: 'a failure\'s backoff holds past the latest safe point (no retry at every tick)', input: { dueAtMs: now + 8_000, latestSafeAtMs: now - 1, notBeforeMs: now + 8_000 }, expected: { kind: 'wait', untilMs: now + 8_000, cause: 'schedule' } },
    { name: 'the re-ask floor holds even when the schedule is due', input: { dueAtMs: now - 1, notBeforeMs: now + 5_000 }, expected: { kind: 'wait', untilMs: now + 5_000, cause: 'schedule' } },
    { name: 'a floor already passed changes nothing', input: { dueAtMs: now + 600_000, latestSafeAtMs: now + 30_000, notBeforeMs: now - 1 }, expected: { kind: 'wait', untilMs: now + 30_000, cause: 'schedule' } },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.deepEqual(planNextStep({ ...base, ...row.input }, now), row.expected);
    });
  }
});

void describe('the default refresh window: cheap and still safe (a table over the upstream\'s 900 s JWT)', () => {
  const WINDOW: readonly [number, number] = [0.7, 0.85];
  const LIFETIME = 900_000;
  const LADDER_TO_CAP = [1, 2, 4, 8, 16, 32].reduce((sum, s) => sum + s * 1_000, 0);
  const UPSTREAM_WINDOW = 60_000;

  void it('costs E[1/f] = ln(b/a)/(b-a) ≤ 1.3 exchanges per lifetime (SPEC\'s 0.6,0.8 costs 1.44)', () => {
    const cost = (w: readonly [number, number]): number => Math.log(w[1] / w[0]) / (w[1] - w[0]);
    assert.ok(cost(WINDOW) <= 1.3, String(cost(WINDOW)));
    assert.ok(Math.abs(cost([0.6, 0.8]) - 1.438) < 0.001);
  });

  const table: readonly { minTtlMs: number; margin: number }[] = [
    { minTtlMs: 60_000, margin: 75_000 },
    { minTtlMs: 30_000, margin: 105_000 },
  ];
  for (const row of table) {
    void it(`with --min-ttl ${String(row.minTtlMs / 1000)} s, the latest draw leaves ${String(row.margin / 1000)} s of retries: the ladder to its cap (63 s) and one upstream window plus backoff (61 s)`, () => {
      const latestDraw = refreshPoint({ issuedAtMs: T0, expiresAtMs: T0 + LIFETIME }, WINDOW, row.minTtlMs, fixed(1));
      const margin = T0 + LIFETIME - row.minTtlMs - latestDraw;
      assert.equal(margin, row.margin);
      assert.ok(margin >= LADDER_TO_CAP, `${String(margin)} ms covers 1+2+4+8+16+32 s of backoff`);
      assert.ok(margin >= UPSTREAM_WINDOW + 1_000, `${String(margin)} ms covers a Retry-After of the upstream's 60 s window`);
    });
  }
});
