import { timingSafeEqual, createHash } from 'node:crypto';

/** A JWT the daemon obtained and validated. `expiresAtMs` is already the earlier of `exp` and issue time + `expiresIn`. */
export interface HeldJwt {
  readonly jwt: string;
  readonly tokenType: string;
  readonly expiresAtMs: number;
}

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/**
 * What the daemon holds right now: the one place both listeners read from, written only by the refresher.
 * Serving a token is a memory read of this object; nothing on a request path touches the disk or the upstream.
 */
export class Status {
  readonly #minTtlMs: number;
  #held: HeldJwt | undefined;
  #written = false;
  #nextAttemptAtMs: number | undefined;
  #apiTokenDigest: Buffer | undefined;
  #problem: string | undefined;

  constructor(minTtlMs: number) {
    this.#minTtlMs = minTtlMs;
  }

  /** A JWT is now held and on disk. */
  setHeld(held: HeldJwt): void {
    this.#held = held;
    this.#written = true;
    this.#problem = undefined;
  }

  /** Forget the held JWT (it was issued for a token that is no longer the current one). */
  clearHeld(): void {
    this.#held = undefined;
    this.#written = false;
  }

  setNextAttempt(atMs: number | undefined): void {
    this.#nextAttemptAtMs = atMs;
  }

  /** Why the last attempt failed, in words safe to show (no secret); cleared by the next success. */
  setProblem(reason: string | undefined): void {
    this.#problem = reason;
  }

  /** The API token the held JWT belongs to; kept only as a digest, for the drop-in endpoint's bearer check. */
  setApiToken(token: string | undefined): void {
    this.#apiTokenDigest = token === undefined ? undefined : digest(token);
  }

  /** The held JWT if it is valid for more than --min-ttl at `nowMs`. */
  servable(nowMs: number): HeldJwt | undefined {
    const held = this.#held;
    if (held === undefined || !this.#written) return undefined;
    return held.expiresAtMs - nowMs > this.#minTtlMs ? held : undefined;
  }

  held(): HeldJwt | undefined {
    return this.#held;
  }

  readiness(nowMs: number): Readiness {
    if (this.servable(nowMs) !== undefined) return { ready: true };
    const base = this.#held === undefined ? 'no JWT has been obtained yet' : 'the held JWT is expired or within --min-ttl of expiry';
    return { ready: false, reason: this.#problem === undefined ? base : `${base}: ${this.#problem}` };
  }

  /** Whole seconds until the next exchange attempt, at least 1: the Retry-After of a 503. */
  retryAfterSeconds(nowMs: number): number {
    const at = this.#nextAttemptAtMs;
    if (at === undefined) return 1;
    return Math.max(1, Math.ceil((at - nowMs) / 1000));
  }

  /** Constant-time comparison of a presented bearer with the current API token. */
  apiTokenMatches(candidate: string): boolean {
    const expected = this.#apiTokenDigest;
    if (expected === undefined) return false;
    // Comparing fixed-length digests keeps the comparison constant-time whatever the candidate's length.
    return timingSafeEqual(expected, digest(candidate));
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
