import type { Random } from '../core/clock.ts';
import type { ExchangeError } from '../core/errors.ts';

/** Backoff after transient failures: 1 s doubling to 60 s, with full jitter. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 60_000;
/** 401/403 are not hammered: every 5 minutes ±20 %, so never sooner than 4 minutes. */
export const AUTH_RETRY_MS = 300_000;
export const AUTH_RETRY_JITTER = 0.2;
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
  return Math.round(Math.max(jwt.issuedAtMs, Math.min(drawn, latestRefresh(jwt, minTtlMs))));
}

/**
 * The latest point at which a refresh still keeps the served JWT above --min-ttl while the exchange itself takes
 * its time: min-ttl plus a margin (a quarter of the usable life, at most 30 s) before expiry.
 */
export function latestRefresh(jwt: { readonly issuedAtMs: number; readonly expiresAtMs: number }, minTtlMs: number): number {
  const usable = jwt.expiresAtMs - minTtlMs - jwt.issuedAtMs;
  return jwt.expiresAtMs - minTtlMs - Math.min(30_000, Math.max(0, usable) / 4);
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
 *  3. added on top of the upstream's Retry-After when it sends one (clamped to 15 minutes when the answer was
 *     read). Retry-After alone would
 *     line up every client that shares the token on the same instant; the jitter spreads them, and grows with
 *     each failure, so a fleet that overran the shared budget drains instead of colliding again.
 */
export function retryDelay(error: Pick<ExchangeError, 'code' | 'retryAfterMs'>, failures: number, random: Random): number {
  if (isAuthFailure(error)) return authRetryDelay(random);
  return (error.retryAfterMs ?? 0) + backoffDelay(failures, random);
}

/** What the refresher knows when it decides what to do next. All times on the monotonic clock. */
export interface PlanInput {
  readonly haveCredential: boolean;
  /** When the schedule (refresh point, backoff, or "now" after a new credential) wants the next attempt. */
  readonly dueAtMs: number | undefined;
  /** The latest point that still keeps the held JWT above --min-ttl (from its remaining life, by either clock). */
  readonly latestSafeAtMs: number | undefined;
  /** When the client-side budget (per identity and global) next allows an exchange. */
  readonly budgetAllowsAtMs: number;
  /** Until when the upstream said it has nothing left for this credential (RateLimit-Remaining: 0). */
  readonly upstreamBlockedUntilMs: number | undefined;
}

export type WaitCause = 'schedule' | 'budget' | 'upstream';
export type Plan = { readonly kind: 'idle' } | { readonly kind: 'exchange' } | { readonly kind: 'wait'; readonly untilMs: number; readonly cause: WaitCause };

/**
 * The next step:
 *  1. nothing to do without a credential or a due time;
 *  2. the schedule's due time, brought forward to the latest safe point when the JWT's life got shorter than
 *     planned (a wall-clock step forward, an `exp` earlier than expected);
 *  3. then the latest of that, the client-side budget (a hard rule: exchanges it delays wait, never dropped) and
 *     the upstream's own budget, which is advisory and never holds a refresh past the latest safe point.
 */
export function planNextStep(input: PlanInput, nowMs: number): Plan {
  if (!input.haveCredential || input.dueAtMs === undefined) return { kind: 'idle' };
  const due = Math.min(input.dueAtMs, input.latestSafeAtMs ?? Infinity);
  const upstream = Math.min(input.upstreamBlockedUntilMs ?? 0, input.latestSafeAtMs ?? Infinity);
  const candidates = [
    { at: due, cause: 'schedule' as const },
    { at: input.budgetAllowsAtMs, cause: 'budget' as const },
    { at: upstream, cause: 'upstream' as const },
  ];
  const latest = candidates.reduce((a, b) => (b.at > a.at ? b : a));
  return latest.at <= nowMs ? { kind: 'exchange' } : { kind: 'wait', untilMs: latest.at, cause: latest.cause };
}
