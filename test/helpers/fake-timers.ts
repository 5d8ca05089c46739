import type { Clock } from '../../src/core/clock.ts';
import type { Timers } from '../../src/refresh/refresher.ts';

/**
 * A clock and timers that only move when a test says so. `advance()` fires due callbacks one at a time, in due
 * order, with the clock set to each one's due time, and lets the async work each callback starts finish before
 * the next one fires: the refresher's timers start promise chains, and a test must observe their outcome at the
 * instant it happened, not some later one.
 */

/** A clock a test sets; it never goes backwards on its own. */
export class FakeClock implements Clock {
  #nowMs: number;

  constructor(startMs: number) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  set(ms: number): void {
    this.#nowMs = ms;
  }
}

/**
 * Let every piece of promise work the fakes started run to completion. Node drains the whole microtask queue
 * (promise reactions and nextTicks, including the ones they queue) before it runs the next macrotask, so once a
 * setImmediate fires, all work that does not wait on real I/O or a real timer is done. The fakes here do neither;
 * the extra rounds only cover a stream that defers a write to the next turn.
 */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Node's own rule: a delay that is not a number in [1, 2^31-1] becomes 1 ms (so an overflow fires at once). */
const MAX_DELAY_MS = 2 ** 31 - 1;
function effectiveDelay(ms: number): number {
  return Number.isFinite(ms) && ms >= 1 && ms <= MAX_DELAY_MS ? Math.floor(ms) : 1;
}

interface Scheduled {
  readonly handle: FakeTimeout;
  readonly callback: () => void;
  readonly delayMs: number;
  dueAtMs: number;
  /** Creation order: timers due at the same millisecond fire in the order they were set, as in Node. */
  seq: number;
}

/** The handle `setTimeout` returns: a real NodeJS.Timeout shape whose methods act on the fake schedule. */
class FakeTimeout implements NodeJS.Timeout {
  readonly #timers: FakeTimers;
  readonly id: number;
  #ref = true;

  constructor(timers: FakeTimers, id: number) {
    this.#timers = timers;
    this.id = id;
  }

  close(): this {
    this.#timers.clearTimeout(this);
    return this;
  }

  hasRef(): boolean {
    return this.#ref;
  }

  ref(): this {
    this.#ref = true;
    return this;
  }

  unref(): this {
    this.#ref = false;
    return this;
  }

  refresh(): this {
    this.#timers.refresh(this);
    return this;
  }

  [Symbol.toPrimitive](): number {
    return this.id;
  }

  [Symbol.dispose](): void {
    this.#timers.clearTimeout(this);
  }

  _onTimeout(): void {
    this.#timers.fire(this);
  }
}

export class FakeTimers implements Timers {
  readonly clock: FakeClock;
  readonly #scheduled = new Map<FakeTimeout, Scheduled>();
  #seq = 0;
  /** Every delay ever asked for, in order: lets a test see what was planned, not only what fired. */
  readonly requestedDelays: number[] = [];

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  setTimeout(callback: () => void, ms: number): NodeJS.Timeout {
    this.requestedDelays.push(ms);
    this.#seq += 1;
    const handle = new FakeTimeout(this, this.#seq);
    const delayMs = effectiveDelay(ms);
    this.#scheduled.set(handle, { handle, callback, delayMs, dueAtMs: this.clock.now() + delayMs, seq: this.#seq });
    return handle;
  }

  clearTimeout(timer: NodeJS.Timeout | undefined): void {
    if (timer instanceof FakeTimeout) this.#scheduled.delete(timer);
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#scheduled.size;
  }

  /** When the earliest pending timer fires, or undefined when none is pending. */
  nextDueAt(): number | undefined {
    return this.#earliest()?.dueAtMs;
  }

  /**
   * Move the clock forward by `ms`, firing every timer that falls due on the way at its own due time,
   * and settling the promise work of each before the next fires.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.clock.now() + ms);
  }

  async advanceTo(targetMs: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.dueAtMs > targetMs) break;
      this.#scheduled.delete(next.handle);
      this.clock.set(Math.max(this.clock.now(), next.dueAtMs));
      next.callback();
      await settle();
    }
    this.clock.set(Math.max(this.clock.now(), targetMs));
    await settle();
  }

  /** Jump to the earliest pending timer and fire it (and any due at the same time); false when none is pending. */
  async runNext(): Promise<boolean> {
    const due = this.nextDueAt();
    if (due === undefined) return false;
    await this.advanceTo(due);
    return true;
  }

  refresh(handle: FakeTimeout): void {
    const scheduled = this.#scheduled.get(handle);
    if (scheduled === undefined) return;
    this.#seq += 1;
    scheduled.dueAtMs = this.clock.now() + scheduled.delayMs;
    scheduled.seq = this.#seq;
  }

  fire(handle: FakeTimeout): void {
    const scheduled = this.#scheduled.get(handle);
    if (scheduled === undefined) return;
    this.#scheduled.delete(handle);
    scheduled.callback();
  }

  #earliest(): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const candidate of this.#scheduled.values()) {
      if (best === undefined || candidate.dueAtMs < best.dueAtMs || (candidate.dueAtMs === best.dueAtMs && candidate.seq < best.seq)) best = candidate;
    }
    return best;
  }
}

/** A clock and its timers, starting at `startMs`. */
export function fakeTime(startMs: number): { clock: FakeClock; timers: FakeTimers } {
  const clock = new FakeClock(startMs);
  return { clock, timers: new FakeTimers(clock) };
}
