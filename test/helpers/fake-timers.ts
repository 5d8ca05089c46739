import type { Clock } from '../../src/core/clock.ts';
import type { Timers } from '../../src/core/clock.ts';

/**
 * A clock and timers that only move when a test says so. `advance()` fires due callbacks one at a time, in due
 * order, with the clock set to each one's due time, and lets the async work each callback starts finish before
 * the next one fires: the refresher's timers start promise chains, and a test must observe their outcome at the
 * instant it happened, not some later one.
 */

/**
 * A clock a test sets. Time passing (`set`, timers firing) moves the wall and the monotonic clock together; `step`
 * moves only the wall clock, as NTP or a VM resume does. It never goes backwards on its own.
 */
export class FakeClock implements Clock {
  #nowMs: number;
  /** Deliberately far from the wall clock, so code that mixes the two up fails loudly. */
  #monoMs = 5_000_000;

  constructor(startMs: number) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  monotonic(): number {
    return this.#monoMs;
  }

  /** Let time pass up to wall time `ms` (a no-op for a time in the past: use `step` to move the wall clock back). */
  set(ms: number): void {
    if (ms <= this.#nowMs) return;
    this.#monoMs += ms - this.#nowMs;
    this.#nowMs = ms;
  }

  /** Step the wall clock by `deltaMs` (either sign) without time passing. */
  step(deltaMs: number): void {
    this.#nowMs += deltaMs;
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
  /** Timers run on the monotonic clock, as Node's do: a wall-clock step does not move them. */
  dueAtMono: number;
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
    this.#scheduled.set(handle, { handle, callback, delayMs, dueAtMono: this.clock.monotonic() + delayMs, seq: this.#seq });
    return handle;
  }

  clearTimeout(timer: NodeJS.Timeout | undefined): void {
    if (timer instanceof FakeTimeout) this.#scheduled.delete(timer);
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#scheduled.size;
  }

  /** When the earliest pending timer fires, in wall time as the clock reads now, or undefined when none is pending. */
  nextDueAt(): number | undefined {
    const next = this.#earliest();
    return next === undefined ? undefined : this.#wallOf(next.dueAtMono);
  }

  #wallOf(mono: number): number {
    return this.clock.now() + (mono - this.clock.monotonic());
  }

  /**
   * Move the clock forward by `ms`, firing every timer that falls due on the way at its own due time,
   * and settling the promise work of each before the next fires.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.clock.now() + ms);
  }

  /** Let time pass until the wall clock reads `targetMs` (no wall-clock step may happen meanwhile). */
  async advanceTo(targetMs: number): Promise<void> {
    await settle();
    const targetMono = this.clock.monotonic() + (targetMs - this.clock.now());
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.dueAtMono > targetMono) break;
      this.#scheduled.delete(next.handle);
      this.clock.set(this.#wallOf(Math.max(this.clock.monotonic(), next.dueAtMono)));
      next.callback();
      await settle();
    }
    this.clock.set(this.#wallOf(targetMono));
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
    scheduled.dueAtMono = this.clock.monotonic() + scheduled.delayMs;
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
      if (best === undefined || candidate.dueAtMono < best.dueAtMono || (candidate.dueAtMono === best.dueAtMono && candidate.seq < best.seq)) best = candidate;
    }
    return best;
  }
}

/** A clock and its timers, starting at `startMs`. */
export function fakeTime(startMs: number): { clock: FakeClock; timers: FakeTimers } {
  const clock = new FakeClock(startMs);
  return { clock, timers: new FakeTimers(clock) };
}
