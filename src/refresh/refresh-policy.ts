import type { Random } from '../core/clock.ts';
import type { ExchangeError } from '../core/errors.ts';

/** Backoff after transient failures: 1 s doubling to 60 s, with full jitter. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 60_000;
/** 401/403 are not hammered: every 5 minutes ±20 %, so never sooner than 4 minutes. */
export const AUTH_RETRY_MS = 300_000;
export const AUTH_RETRY_JITTER = 0.2;
/** A Retry-After longer than this is treated as this: an absurd value must not park the daemon for days. */
export const RETRY_AFTER_CAP_MS = 15 * 60_000;
/** Floor of a jittered delay, so that a random draw near 0 never turns into a busy loop. */
const MIN_DELAY_MS = 100;

/**
 * When to refresh a JWT issued at `issuedAtMs` that expires at `expiresAtMs`:
 *  1. at a uniformly random fraction of its lifetime between window[0] and window[1], which spreads a fleet's
 *     exchanges over time instead of synchronising them;
 *  2. but never later than min-ttl (plus a margin for the exchange itself, up to 30 s) before expiry, so that
 *     a served JWT never falls under --min-ttl while the refresh succeeds;
 *  3. and never before it was issued.
 */
export function refreshPoint(
  jwt: { readonly issuedAtMs: number; readonly expiresAtMs: number },
  window: readonly [number, number],
  minTtlMs: number,
  random: Random,
): number {
  const lifetime = jwt.expiresAtMs - jwt.issuedAtMs;
  const fraction = window[0] + (window[1] - window[0]) * random();
  const drawn = jwt.issuedAtMs + lifetime * fraction;
  const usable = jwt.expiresAtMs - minTtlMs - jwt.issuedAtMs;
  const latest = jwt.expiresAtMs - minTtlMs - Math.min(30_000, Math.max(0, usable) / 4);
  return Math.round(Math.max(jwt.issuedAtMs, Math.min(drawn, latest)));
}

/** Full-jitter exponential backoff for the `failures`-th consecutive transient failure (1-based). */
export function backoffDelay(failures: number, random: Random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  return Math.max(MIN_DELAY_MS, Math.round(ceiling * random()));
}

/** Delay before retrying a 401/403: 5 minutes ±20 %. */
export function authRetryDelay(random: Random): number {
  return Math.round(AUTH_RETRY_MS * (1 - AUTH_RETRY_JITTER + 2 * AUTH_RETRY_JITTER * random()));
}

export function isAuthFailure(error: Pick<ExchangeError, 'code'>): boolean {
  return error.code === 'unauthorized' || error.code === 'forbidden';
}

/**
 * How long to wait after a failed exchange, in one fixed order:
 *  1. 401/403: the slow authentication retry (a new token or SIGHUP cuts it short);
 *  2. anything else (429, 5xx, network, invalid answer): full-jitter backoff,
 *  3. added on top of the upstream's Retry-After when it sends one (capped at 15 minutes). Retry-After alone would
 *     line up every client that shares the token on the same instant; the jitter spreads them, and grows with
 *     each failure, so a fleet that overran the shared budget drains instead of colliding again.
 */
export function retryDelay(error: Pick<ExchangeError, 'code' | 'retryAfterMs'>, failures: number, random: Random): number {
  if (isAuthFailure(error)) return authRetryDelay(random);
  const backoff = backoffDelay(failures, random);
  const asked = error.retryAfterMs === undefined ? 0 : Math.min(error.retryAfterMs, RETRY_AFTER_CAP_MS);
  return asked + backoff;
}

/** What the refresher knows when it decides what to do next. */
export interface PlanInput {
  readonly haveToken: boolean;
  /** When the schedule (refresh point, backoff, or "now" after a new token) wants the next attempt. */
  readonly dueAtMs: number | undefined;
  /** When the client-side budget next allows an exchange for the current token. */
  readonly budgetAllowsAtMs: number;
  /** Until when the upstream said it has nothing left for this token (RateLimit-Remaining: 0). */
  readonly upstreamBlockedUntilMs: number | undefined;
}

export type Plan = { readonly kind: 'idle' } | { readonly kind: 'exchange' } | { readonly kind: 'wait'; readonly untilMs: number; readonly cause: 'schedule' | 'budget' | 'upstream' };

/**
 * The next step, as the latest of three clocks: the schedule, the client-side budget and the upstream's own
 * budget. Exchanges the budget delays wait; they are never dropped.
 */
export function planNextStep(input: PlanInput, nowMs: number): Plan {
  if (!input.haveToken || input.dueAtMs === undefined) return { kind: 'idle' };
  const candidates = [
    { at: input.dueAtMs, cause: 'schedule' as const },
    { at: input.budgetAllowsAtMs, cause: 'budget' as const },
    { at: input.upstreamBlockedUntilMs ?? 0, cause: 'upstream' as const },
  ];
  const latest = candidates.reduce((a, b) => (b.at > a.at ? b : a));
  return latest.at <= nowMs ? { kind: 'exchange' } : { kind: 'wait', untilMs: latest.at, cause: latest.cause };
}

/** A JWT found on disk at start, described by the state file beside it. */
export interface RestorableJwt {
  readonly tokenFingerprint: string;
  readonly expiresAtMs: number;
}

/** Reuse a JWT from disk only when it was issued for this very API token and has more than --min-ttl left. */
export function isReusable(candidate: RestorableJwt, tokenFingerprint: string, minTtlMs: number, nowMs: number): boolean {
  return candidate.tokenFingerprint === tokenFingerprint && candidate.expiresAtMs - nowMs > minTtlMs;
}
