import { readFileSync } from 'node:fs';

/**
 * Time comes in as an argument so that every decision can be tested without sleeping. Two clocks, because the wall
 * clock steps (NTP, VM resume, an operator) and a sidecar must survive that in both directions:
 * - `now()` is wall time, the time JWTs (`exp`), the upstream and the state file speak;
 * - `monotonic()` never steps. In production it is CLOCK_MONOTONIC, which every process on the node shares, so a
 *   value persisted by one process can be compared by another on the same boot (see `bootId`).
 */
export interface Clock {
  /** Wall time, ms since the epoch. */
  now(): number;
  /** Monotonic ms from an arbitrary fixed point; never steps. */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => Number(process.hrtime.bigint() / 1_000_000n),
};

/** Wall time `wallMs` as a reading of the monotonic clock (both clocks read now). */
export function monotonicAt(clock: Clock, wallMs: number): number {
  return clock.monotonic() + (wallMs - clock.now());
}

/** A monotonic reading `monoMs` as wall time (both clocks read now). */
export function wallAt(clock: Clock, monoMs: number): number {
  return clock.now() + (monoMs - clock.monotonic());
}

/** A source of uniform numbers in [0, 1), like Math.random. */
export type Random = () => number;

/**
 * The kernel's boot id: monotonic times persisted with it are comparable by any process that reads the same id
 * (same node, same boot). Undefined off Linux; then persisted times fall back to wall time.
 */
export function readBootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return /^[0-9a-f-]{36}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** setTimeout/clearTimeout, injectable so that loops run on fake time in tests. Timers run on the monotonic clock. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => { clearTimeout(timer); },
};
