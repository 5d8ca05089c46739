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
 * A 401/403 from an ek-sidecar broker (marked by its drop-in) for a credential no exchange has accepted yet is
 * retried sooner: 5 s doubling, this many times (±20 %: about 5, 15, 35, 75 and 155 s after the first), then every
 * 5 minutes. Any other 401/403 keeps SPEC's 5-minute cadence.
 */
export const BROKER_AUTH_RETRIES = 5;
export const BROKER_AUTH_RETRY_BASE_MS = 5_000;
/**
 * After an answer with no newer JWT (a broker that has not refreshed yet): never ask again sooner than 5 s, backing
 * off to 60 s, with the default --min-ttl of 60 s. They follow --min-ttl (a twelfth of it, and all of it; at least
 * 50 ms and 500 ms), since it sets the time scale of the end of a JWT's life: the rule then holds at any time scale
 * (the bench divides time by 100).
 */
export const REASK_FLOOR_MS = 5_000;
export const REASK_CAP_MS = 60_000;
const REASK_MIN_FLOOR_MS = 50;
const REASK_MIN_CAP_MS = 500;

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

/**
 * The latest safe point of a JWT held, on the clock of `nowMs`: latestRefresh by its planned lifetime, brought
 * forward by as much as its remaining life now falls short of that plan (a wall-clock step, an `exp` earlier than
 * expected), since the remaining life is what the JWT really has.
 */
export function latestSafeAt(jwt: { readonly issuedAtMs: number; readonly expiresAtMs: number }, remainingMs: number, nowMs: number, minTtlMs: number): number {
  return nowMs + remainingMs - (jwt.expiresAtMs - latestRefresh(jwt, minTtlMs));
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

/**
 * Delay before retrying the `failures`-th 401/403 (1-based) that a broker gave a credential no exchange has
 * accepted yet:
 *  1. the first BROKER_AUTH_RETRIES: 5 s doubling, ±20 %. The broker may not know the new credential yet: the
 *     kubelet updates its copy of the rotated Secret up to a minute or two after this pod's (it reloads within 2 s
 *     of that), and five tries span about 2.5 minutes;
 *  2. then the slow authentication retry, as for any other refusal.
 */
export function brokerAuthRetryDelay(failures: number, random: Random): number {
  if (failures > BROKER_AUTH_RETRIES) return authRetryDelay(random);
  const base = BROKER_AUTH_RETRY_BASE_MS * 2 ** Math.max(0, failures - 1);
  return Math.round(base * (1 - AUTH_RETRY_JITTER + 2 * AUTH_RETRY_JITTER * random()));
}

/**
 * Whether a 401/403 gets the broker's short ladder rather than SPEC's 5-minute cadence: only when an ek-sidecar
 * broker refused (its drop-in marks its refusals) a credential that no exchange has accepted yet (new at start or
 * by rotation). Enkryptify's own 401/403 never does, nor a broker's refusal of a credential that worked before
 * (revoked there too, or the broker rotated first: the sidecar's own rotation then cuts the wait short).
 */
export function usesBrokerAuthLadder(error: Pick<ExchangeError, 'code'> & { readonly fromBroker?: boolean }, credentialAccepted: boolean): boolean {
  return isAuthFailure(error) && error.fromBroker === true && !credentialAccepted;
}

export function isAuthFailure(error: Pick<ExchangeError, 'code'>): boolean {
  return error.code === 'unauthorized' || error.code === 'forbidden';
}

/** What the retry rule reads of a failed exchange. */
export type RetryFailure = Pick<ExchangeError, 'code' | 'retryAfterMs'> & { readonly fromBroker?: boolean };

/**
 * How long to wait after a failed exchange, in one fixed order:
 *  1. 401/403: the slow authentication retry (a new token or SIGHUP cuts it short), or the short ladder for a
 *     broker's refusal of a credential not accepted yet (usesBrokerAuthLadder);
 *  2. anything else (429, 5xx, network, invalid answer): full-jitter backoff,
 *  3. added on top of the upstream's Retry-After when it sends one (clamped to 15 minutes when the answer was
 *     read). Retry-After alone would line up every client that shares the token on the same instant; the jitter
 *     spreads them, and grows with each failure, so a fleet that overran the shared budget drains instead of
 *     colliding again.
 */
export function retryDelay(error: RetryFailure, failures: number, random: Random, credentialAccepted = true): number {
  if (isAuthFailure(error)) return usesBrokerAuthLadder(error, credentialAccepted) ? brokerAuthRetryDelay(failures, random) : authRetryDelay(random);
  return (error.retryAfterMs ?? 0) + backoffDelay(failures, random);
}

/** A JWT as the re-ask rule sees it: its value and when it expires (wall time). */
export interface JwtExpiry {
  readonly jwt: string;
  readonly expiresAtMs: number;
}

/**
 * Whether an exchange's answer is news: there is no JWT held for the credential, or the answer is another JWT that
 * expires later than the one held. The real upstream issues a new JWT on every exchange; a chained upstream (a
 * broker) answers with the JWT it holds: the same one again until it has refreshed (its `expiresIn` in whole
 * seconds may then put the expiry a fraction of a second later than last time: still the same JWT), or an older
 * one from another replica. An answer that is not news changes nothing: the JWT held is kept, not rewritten, and
 * no hook runs.
 */
export function isNewerJwt(answered: JwtExpiry, held: JwtExpiry | undefined): boolean {
  return held === undefined || (answered.jwt !== held.jwt && answered.expiresAtMs > held.expiresAtMs);
}

/** What the re-ask rule knows after an answer that was not news. All times on one clock (the monotonic one). */
export interface ReaskInput {
  readonly nowMs: number;
  /** When the JWT held expires. */
  readonly expiresAtMs: number;
  /** The latest point that still keeps the JWT held above --min-ttl. */
  readonly latestSafeAtMs: number;
  /** Consecutive answers without a newer JWT, this one included (1-based). */
  readonly repeats: number;
}

/**
 * When to ask again after an answer with no newer JWT (a broker that has not refreshed yet, or cannot). Without
 * this rule the next ask is planned from the same JWT again, with less life left each time: as the JWT nears
 * --min-ttl the asks come ever closer together (a spin, about ten in the last 30 s of every JWT a broker cannot
 * renew). Instead:
 *  1. while the latest safe point of the JWT held is ahead: at the refresh point of its remaining life, as for a
 *     JWT just received with that much life, and no later than the latest safe point. A healthy broker refreshes
 *     at its own refresh point, before that (its window ends at 0.85 of the lifetime, 135 s before expiry);
 *  2. past it: the broker has not refreshed on time (an upstream outage, a restart): 5 s doubling to 60 s, jittered
 *     in [½, 1], since asking sooner cannot make it refresh sooner. When the broker's JWT falls under its own
 *     --min-ttl it answers 503 with Retry-After, and the usual backoff takes over;
 *  3. never sooner than the floor (5 s with --min-ttl 60s) after the answer.
 */
export function reaskAt(input: ReaskInput, window: readonly [number, number], minTtlMs: number, random: Random): number {
  const { nowMs, expiresAtMs, latestSafeAtMs, repeats } = input;
  const floorMs = Math.max(REASK_MIN_FLOOR_MS, Math.min(REASK_FLOOR_MS, Math.round(minTtlMs / 12)));
  const capMs = Math.max(REASK_MIN_CAP_MS, Math.min(REASK_CAP_MS, minTtlMs));
  const floor = nowMs + floorMs;
  if (latestSafeAtMs > floor) {
    const point = refreshPoint({ issuedAtMs: nowMs, expiresAtMs }, window, minTtlMs, random);
    return Math.max(floor, Math.min(point, latestSafeAtMs));
  }
  const ceiling = Math.min(capMs, floorMs * 2 ** Math.max(0, repeats - 1));
  return Math.max(floor, Math.round(nowMs + ceiling * (0.5 + 0.5 * random())));
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
  /**
   * No attempt before this: a failure's backoff, or the re-ask after an answer with no newer JWT (see reaskAt).
   * Retrying sooner cannot help, and past the latest safe point it would retry at every tick.
   */
  readonly notBeforeMs?: number | undefined;
}

export type WaitCause = 'schedule' | 'budget' | 'upstream';
export type Plan = { readonly kind: 'idle' } | { readonly kind: 'exchange' } | { readonly kind: 'wait'; readonly untilMs: number; readonly cause: WaitCause };

/**
 * The next step:
 *  1. nothing to do without a credential or a due time;
 *  2. the schedule's due time, brought forward to the latest safe point when the JWT's life got shorter than
 *     planned (a wall-clock step forward, an `exp` earlier than expected);
 *  3. but not before the backoff of a failure or the re-ask floor after an answer with no newer JWT: retrying
 *     sooner cannot help, and past the latest safe point it would retry at every tick, as fast as the budget allows;
 *  4. then the latest of that, the client-side budget (a hard rule: exchanges it delays wait, never dropped) and
 *     the upstream's own budget, which is advisory and never holds a refresh past the latest safe point.
 */
export function planNextStep(input: PlanInput, nowMs: number): Plan {
  if (!input.haveCredential || input.dueAtMs === undefined) return { kind: 'idle' };
  const due = Math.max(Math.min(input.dueAtMs, input.latestSafeAtMs ?? Infinity), input.notBeforeMs ?? -Infinity);
  const upstream = Math.min(input.upstreamBlockedUntilMs ?? 0, input.latestSafeAtMs ?? Infinity);
  const candidates = [
    { at: due, cause: 'schedule' as const },
    { at: input.budgetAllowsAtMs, cause: 'budget' as const },
    { at: upstream, cause: 'upstream' as const },
  ];
  const latest = candidates.reduce((a, b) => (b.at > a.at ? b : a));
  return latest.at <= nowMs ? { kind: 'exchange' } : { kind: 'wait', untilMs: latest.at, cause: latest.cause };
}
