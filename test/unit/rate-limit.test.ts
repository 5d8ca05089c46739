import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimit } from '../../src/config/config.ts';
import { arrivalMargin, budget, combinedBudget, globalLimit, merge, prune, settle, type BudgetState, type ExchangeRecord } from '../../src/refresh/rate-limit.ts';
import { mulberry32 } from '../helpers/prng.ts';

const T0 = 1_700_000_000_000;
const FP = 'aaaa1111';
const OTHER = 'bbbb2222';
const LIMIT: RateLimit = { max: 3, windowMs: 60_000 };

const at = (offsetMs: number, key = FP): ExchangeRecord => ({ atMs: T0 + offsetMs, key });
/** arrivalMargin(LIMIT): 2 % of a minute. */
const MARGIN = 1_200;

void describe('arrivalMargin', () => {
  const table: readonly (readonly [number, number])[] = [
    [60_000, 1_200],
    [30_000, 600],
    [10_000, 200],
    [2_500, 50],
    [1_000, 50],
    [1, 50],
    [100_000, 2_000],
    [3_600_000, 2_000],
  ];
  for (const [windowMs, expected] of table) {
    void it(`2 % of ${String(windowMs)} ms, within [50 ms, 2 s] → ${String(expected)} ms`, () => {
      assert.equal(arrivalMargin({ max: 10, windowMs }), expected);
    });
  }
});

void describe('budget', () => {
  const table: readonly { name: string; records: readonly ExchangeRecord[]; limit?: RateLimit; expected: BudgetState }[] = [
    { name: 'no records: the whole budget, now', records: [], expected: { remaining: 3, nextAllowedAtMs: T0 } },
    { name: 'one record', records: [at(-10_000)], expected: { remaining: 2, nextAllowedAtMs: T0 } },
    { name: 'two records', records: [at(-10_000), at(-5_000)], expected: { remaining: 1, nextAllowedAtMs: T0 } },
    {
      name: 'max records: next allowed once the oldest has left the window, plus the arrival margin',
      records: [at(-50_000), at(-30_000), at(-10_000)],
      expected: { remaining: 0, nextAllowedAtMs: T0 - 50_000 + 60_000 + MARGIN },
    },
    {
      name: 'records given out of order',
      records: [at(-10_000), at(-50_000), at(-30_000)],
      expected: { remaining: 0, nextAllowedAtMs: T0 + 10_000 + MARGIN },
    },
    {
      name: 'more than max records (a lowered limit): the record max places back decides',
      records: [at(-59_000), at(-40_000), at(-30_000), at(-20_000), at(-10_000)],
      expected: { remaining: 0, nextAllowedAtMs: T0 - 30_000 + 60_000 + MARGIN },
    },
    {
      name: 'a short window: the margin is at least 50 ms',
      records: [at(-500), at(-400), at(-300)],
      limit: { max: 3, windowMs: 1_000 },
      expected: { remaining: 0, nextAllowedAtMs: T0 + 500 + 50 },
    },
    {
      name: 'other tokens are not counted',
      records: [at(-1_000, OTHER), at(-2_000, OTHER), at(-3_000, OTHER), at(-4_000, OTHER), at(-10_000)],
      expected: { remaining: 2, nextAllowedAtMs: T0 },
    },
    {
      name: 'a record exactly windowMs ago still counts',
      records: [at(-60_000), at(-30_000), at(-10_000)],
      expected: { remaining: 0, nextAllowedAtMs: T0 + MARGIN },
    },
    {
      name: 'a record older than windowMs and the margin no longer counts',
      records: [at(-60_000 - MARGIN - 1), at(-30_000), at(-10_000)],
      expected: { remaining: 1, nextAllowedAtMs: T0 },
    },
    {
      name: 'three records at the same millisecond',
      records: [at(-5_000), at(-5_000), at(-5_000)],
      expected: { remaining: 0, nextAllowedAtMs: T0 + 55_000 + MARGIN },
    },
    {
      name: 'max 1: the single record blocks for a whole window plus the margin',
      records: [at(-1)],
      limit: { max: 1, windowMs: 60_000 },
      expected: { remaining: 0, nextAllowedAtMs: T0 + 59_999 + MARGIN },
    },
    {
      name: 'default limit 10/1m with 10 records',
      records: Array.from({ length: 10 }, (_, index) => at(-55_000 + index * 5_000)),
      limit: { max: 10, windowMs: 60_000 },
      expected: { remaining: 0, nextAllowedAtMs: T0 + 5_000 + MARGIN },
    },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.deepEqual(budget(row.records, FP, row.limit ?? LIMIT, T0), row.expected);
    });
  }

  void it('still counts a record that is exactly windowMs old', () => {
    const records = [at(-50_000), at(-30_000), at(-10_000)];
    assert.equal(budget(records, FP, LIMIT, T0 + 10_000).remaining, 0);
  });

  void it('is free at nextAllowedAtMs', () => {
    const records = [at(-50_000), at(-30_000), at(-10_000)];
    const { nextAllowedAtMs } = budget(records, FP, LIMIT, T0);
    assert.equal(budget(records, FP, LIMIT, nextAllowedAtMs).remaining, 1);
  });

  void it('reports no remaining exchange before nextAllowedAtMs', () => {
    const records = [at(-50_000), at(-30_000), at(-10_000)];
    const { nextAllowedAtMs } = budget(records, FP, LIMIT, T0);
    for (let now = T0; now < nextAllowedAtMs; now += 100) assert.equal(budget(records, FP, LIMIT, now).remaining, 0, `at T0 + ${String(now - T0)} ms`);
    assert.equal(budget(records, FP, LIMIT, nextAllowedAtMs - 1).remaining, 0);
  });
});

void describe('prune', () => {
  void it('drops records older than the window widened by the margin, keeps the rest (the future is clamped when read, never dropped)', () => {
    const records = [at(-120_000), at(-60_000 - MARGIN), at(-60_000 - MARGIN + 1), at(-60_001), at(-1), at(0, OTHER), at(30_000), at(3_600_000)];
    assert.deepEqual(prune(records, LIMIT, T0), [at(-60_000 - MARGIN + 1), at(-60_001), at(-1), at(0, OTHER), at(30_000), at(3_600_000)]);
  });

  void it('of nothing is nothing', () => {
    assert.deepEqual(prune([], LIMIT, T0), []);
  });
});

void describe('the global cap across identities', () => {
  const TEN: RateLimit = { max: 10, windowMs: 60_000 };
  void it('is twice the per-identity cap over the same window', () => {
    assert.deepEqual(globalLimit(TEN), { max: 20, windowMs: 60_000 });
  });

  void it('holds a rotation storm: each new identity has its own budget, all of them together only twice one', () => {
    const records: ExchangeRecord[] = [];
    let sent = 0;
    for (let i = 0; i < 100; i += 1) {
      const key = i.toString(16).padStart(8, '0');
      const now = T0 + i * 100;
      if (combinedBudget(records, key, TEN, now).remaining > 0) {
        records.push({ atMs: now, key });
        sent += 1;
      }
    }
    assert.equal(sent, 20, '100 rotations in 10 s: 20 exchanges');
  });

  void it('combines: the later of the two next-allowed times, the smaller of the two remainders', () => {
    const mine = [at(-30_000), at(-20_000)];
    const others = Array.from({ length: 18 }, (_, i) => at(-50_000 + i * 100, (i + 16).toString(16).padStart(8, '0')));
    const result = combinedBudget([...mine, ...others], FP, TEN, T0);
    assert.equal(result.remaining, 0, 'the global cap is spent although this identity has 8 left');
    assert.equal(result.nextAllowedAtMs, T0 - 50_000 + 60_000 + MARGIN);
  });
});

void describe('merge', () => {
  const table: readonly { name: string; a: readonly ExchangeRecord[]; b: readonly ExchangeRecord[]; expected: readonly ExchangeRecord[] }[] = [
    { name: 'two empty logs', a: [], b: [], expected: [] },
    { name: 'union, sorted by time', a: [at(-10), at(-30)], b: [at(-20), at(-40)], expected: [at(-40), at(-30), at(-20), at(-10)] },
    { name: 'duplicates removed', a: [at(-10), at(-20)], b: [at(-20), at(-10), at(-5)], expected: [at(-20), at(-10), at(-5)] },
    { name: 'same time, different tokens: both kept', a: [at(-10)], b: [at(-10, OTHER)], expected: [at(-10), at(-10, OTHER)] },
    { name: 'one side empty', a: [], b: [at(-1), at(-2)], expected: [at(-2), at(-1)] },
    { name: 'one id at two times (settled here, not yet on disk): one record, the later time', a: [withId(-10, 'a1')], b: [withId(-40, 'a1')], expected: [withId(-10, 'a1')] },
    { name: 'two ids at one time (two processes in one millisecond): both kept', a: [withId(-10, 'a1')], b: [withId(-10, 'b2')], expected: [withId(-10, 'a1'), withId(-10, 'b2')] },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.deepEqual(merge(row.a, row.b), row.expected);
    });
  }

  void it('does not modify its inputs', () => {
    const a = [at(-10), at(-30)];
    const b = [at(-20)];
    merge(a, b);
    assert.deepEqual(a, [at(-10), at(-30)]);
    assert.deepEqual(b, [at(-20)]);
  });
});

void describe('settle: an attempt counts from its answer on', () => {
  void it('moves only the named attempt, and only later', () => {
    const records = [withId(-5_000, 'a1'), withId(-4_000, 'b2')];
    assert.deepEqual(settle(records, 'a1', T0 - 3_000), [withId(-3_000, 'a1'), withId(-4_000, 'b2')]);
    assert.deepEqual(settle(records, 'a1', T0 - 6_000), records, 'never earlier than the reservation');
    assert.deepEqual(settle(records, 'zz', T0), records);
  });

  void it('keeps the next attempt a whole window after the slow one was answered', () => {
    // One a minute; the attempt sent 59 s ago was answered 3 s later (a slow upstream): the next waits for its answer.
    const one = { max: 1, windowMs: 60_000 };
    const records = settle([withId(-59_000, 'r0')], 'r0', T0 - 56_000);
    assert.equal(budget(records, FP, one, T0).nextAllowedAtMs, T0 - 56_000 + 60_000 + MARGIN);
  });
});

function withId(offsetMs: number, id: string): ExchangeRecord {
  return { ...at(offsetMs), id };
}

/** The most records of `times` (sorted) inside any closed interval [s, s + windowMs]. */
function busiestWindow(times: readonly number[], windowMs: number): number {
  let most = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] ?? 0) - (times[start] ?? 0) > windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

void describe('budget under a greedy client (property)', () => {
  const limits: readonly RateLimit[] = [
    { max: 10, windowMs: 60_000 },
    { max: 1, windowMs: 60_000 },
    { max: 3, windowMs: 1_000 },
    { max: 5, windowMs: 30_000 },
    { max: 200, windowMs: 60_000 },
  ];
  for (const limit of limits) {
    for (const seed of [1, 42, 2024]) {
      void it(`never more than ${String(limit.max)} in any ${String(limit.windowMs)} ms window (seed ${String(seed)})`, () => {
        const random = mulberry32(seed);
        let records: ExchangeRecord[] = [];
        const taken: number[] = [];
        let now = T0;
        for (let step = 0; step < 5_000; step++) {
          // Mostly small steps (demand about twice the cap), sometimes none (asking again at the same ms), sometimes
          // straight to nextAllowedAtMs or 1 ms before it.
          const roll = random();
          const state = budget(records, FP, limit, now);
          if (roll < 0.05) now = Math.max(now, state.nextAllowedAtMs - 1);
          else if (roll < 0.1) now = state.nextAllowedAtMs;
          else if (roll > 0.2) now += Math.floor(random() * (limit.windowMs / limit.max));
          // Another token's traffic must neither help nor hurt.
          if (random() < 0.2) records.push({ atMs: now, key: OTHER });
          const current = budget(records, FP, limit, now);
          assert.ok(current.nextAllowedAtMs >= now);
          if (current.remaining > 0) {
            assert.equal(current.nextAllowedAtMs, now);
            records.push({ atMs: now, key: FP });
            taken.push(now);
          } else {
            // Waiting is enough: the slot is free at nextAllowedAtMs.
            assert.ok(budget(records, FP, limit, current.nextAllowedAtMs).remaining > 0);
          }
          // What a long-running daemon does with its log; must not lose anything that still counts.
          if (step % 50 === 0) records = prune(records, limit, now);
        }
        const busiest = busiestWindow(taken, limit.windowMs);
        assert.ok(busiest <= limit.max, `busiest window ${String(busiest)} > ${String(limit.max)}`);
        // The cap was actually reached, so the property was exercised (and the budget is not overly strict).
        assert.equal(busiest, limit.max);
      });
    }
  }
});
