import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { hasLifeLeft, remainingMs, type HeldJwt } from '../core/held-jwt.ts';

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/**
 * Why no JWT can be served, in words fit for `/readyz` (served on every interface): no paths, hosts, URLs or
 * values, only what kind of thing went wrong. The details are in the log.
 */
export type Problem =
  | { readonly kind: 'credential'; readonly code: string }
  | { readonly kind: 'exchange'; readonly code: string; readonly status: number | undefined }
  | { readonly kind: 'write'; readonly code: string }
  | { readonly kind: 'budget-record'; readonly code: string };

/** How many earlier JWTs are remembered for the proxy's credential check (an SDK keeps its JWT until near expiry). */
const MAX_ISSUED = 16;

/**
 * What the sidecar serves right now: the one place both listeners read from, written only by the refresher. Serving
 * a token is a memory read of this object; nothing on a request path touches the disk or the upstream.
 */
export class ServedJwt {
  readonly #minTtlMs: number;
  readonly #clock: Clock;
  #held: HeldJwt | undefined;
  #fileMissing = false;
  #nextAttemptAtMono: number | undefined;
  #problem: Problem | undefined;
  /** Digests of the JWTs this sidecar obtained, with their expiry, newest last. */
  #issued: { digest: string; held: HeldJwt }[] = [];

  constructor(minTtlMs: number, clock: Clock) {
    this.#minTtlMs = minTtlMs;
    this.#clock = clock;
  }

  /** A JWT is now held and durably on disk, with the state file that names it. */
  install(held: HeldJwt): void {
    this.#held = held;
    this.#fileMissing = false;
    this.#problem = undefined;
    const digest = digestOf(held.jwt);
    this.#issued = [...this.#issued.filter((entry) => entry.digest !== digest && remainingMs(entry.held, this.#clock) > 0), { digest, held }].slice(-MAX_ISSUED);
  }

  /** The JWT file vanished (or was replaced by someone else) and is being rewritten: not ready until it is. */
  setFileMissing(missing: boolean): void {
    this.#fileMissing = missing;
  }

  /** When the next exchange attempt is planned, on the monotonic clock; the Retry-After of a 503. */
  setNextAttempt(atMono: number | undefined): void {
    this.#nextAttemptAtMono = atMono;
  }

  /** Why the last step failed; cleared by the next JWT installed. */
  setProblem(problem: Problem | undefined): void {
    this.#problem = problem;
  }

  /** The held JWT if it is valid for more than --min-ttl now. */
  servable(): HeldJwt | undefined {
    const held = this.#held;
    if (held === undefined) return undefined;
    return hasLifeLeft(remainingMs(held, this.#clock), this.#minTtlMs) ? held : undefined;
  }

  /** The held JWT, however much life it has left (for gauges). */
  held(): HeldJwt | undefined {
    return this.#held;
  }

  /** Whether `jwt` is one this sidecar obtained and it has not expired: the proxy's `verify` accepts it. */
  isIssuedAndValid(jwt: string): boolean {
    const digest = digestOf(jwt);
    const entry = this.#issued.find((candidate) => candidate.digest === digest);
    return entry !== undefined && remainingMs(entry.held, this.#clock) > 0;
  }

  readiness(): Readiness {
    if (this.servable() !== undefined && !this.#fileMissing) return { ready: true };
    const base = this.#fileMissing ? 'the JWT file is missing or was replaced; rewriting it'
      : this.#held === undefined ? 'no JWT has been obtained yet'
      : 'the held JWT is expired or within --min-ttl of expiry';
    return { ready: false, reason: this.#problem === undefined ? base : `${base}; ${describeProblem(this.#problem)}` };
  }

  /** Whole seconds until the next exchange attempt, at least 1. */
  retryAfterSeconds(): number {
    const at = this.#nextAttemptAtMono;
    if (at === undefined) return 1;
    return Math.max(1, Math.ceil((at - this.#clock.monotonic()) / 1000));
  }
}

function describeProblem(problem: Problem): string {
  switch (problem.kind) {
    case 'credential':
      return `the token file is unusable (${problem.code})`;
    case 'exchange':
      return `the last exchange failed (${problem.code}${problem.status === undefined ? '' : `, HTTP ${String(problem.status)}`})`;
    case 'write':
      return `writing the JWT file failed (${problem.code})`;
    case 'budget-record':
      return `the exchange attempt could not be recorded in the state file, so none is sent (${problem.code})`;
  }
}

function digestOf(jwt: string): string {
  return createHash('sha256').update(jwt, 'utf8').digest('hex');
}
