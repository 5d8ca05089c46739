/** Time and randomness come in as arguments so that every decision can be tested without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A source of uniform numbers in [0, 1), like Math.random. */
export type Random = () => number;
