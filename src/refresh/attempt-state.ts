import type { Random } from '../core/clock.ts';
import { ExchangeError, type CredentialError, type DiskError } from '../core/errors.ts';
import { backoffDelay, isAuthFailure, reaskAt, retryDelay, type ReaskInput } from './refresh-policy.ts';

/** Why an exchange happens, for the log line that reports it. */
export type ExchangeReason = 'start' | 'rotation' | 'schedule' | 'retry' | 'signal' | 'proxy-401' | 'expiring';

/** What can make an attempt fail: the exchange, reading the credential, or recording the attempt. */
export type AttemptFailure = ExchangeError | CredentialError | DiskError;

/**
 * Where the schedule of the current credential stands, and how each outcome moves it: the loop plans from this
 * (see planNextStep) and replaces it with one of the transitions below. Pure; every time is on the monotonic clock.
 * A new credential starts from NEW_CREDENTIAL.
 */
export interface AttemptState {
  /** When the next attempt is wanted, and why. */
  readonly due: { readonly atMs: number; readonly reason: ExchangeReason } | undefined;
  /**
   * No attempt before this: the backoff after a failure, or the re-ask after an answer with no newer JWT. The
   * latest safe point brings a planned refresh forward, never these: past it, a failure would otherwise be retried
   * at every tick, as fast as the budget allows.
   */
  readonly notBeforeMs: number | undefined;
  /** Until when the upstream said it has nothing left for this credential (RateLimit-Remaining: 0). */
  readonly upstreamBlockedUntilMs: number | undefined;
  /** Failures in a row. */
  readonly failures: number;
  /** Answers in a row with no newer JWT than the one held. */
  readonly noNewerRepeats: number;
  /** An exchange of this credential has succeeded (or its JWT was reused): a 401/403 now means revoked. */
  readonly accepted: boolean;
  readonly lastError: AttemptFailure | undefined;
}

export const NEW_CREDENTIAL: AttemptState = {
  due: undefined,
  notBeforeMs: undefined,
  upstreamBlockedUntilMs: undefined,
  failures: 0,
  noNewerRepeats: 0,
  accepted: false,
  lastError: undefined,
};

/** An attempt is wanted at `atMs` (now, for a new credential or a signal; a refresh point, for a known JWT). */
export function wanted(state: AttemptState, atMs: number, reason: ExchangeReason): AttemptState {
  return { ...state, due: { atMs, reason } };
}

/**
 * The same credential was reported again (SIGHUP, a rewritten file, a rotated projected token): only an
 * authentication failure is retried at once, so this is the state without its backoff; undefined for anything
 * else, which keeps its schedule.
 */
export function retryOnReload(state: AttemptState): AttemptState | undefined {
  if (state.lastError === undefined || !isAuthFailureOf(state.lastError)) return undefined;
  return { ...state, notBeforeMs: undefined };
}

/** The JWT on disk was reused for this credential: accepted, next attempt at its refresh point. */
export function afterReuse(refreshAtMs: number): AttemptState {
  return wanted({ ...NEW_CREDENTIAL, accepted: true }, refreshAtMs, 'schedule');
}

/**
 * A newer JWT for this credential: accepted, the failure and re-ask history cleared, next attempt at its refresh
 * point; held back while the upstream says it has nothing left (advisory: planNextStep never holds it past the
 * latest safe point).
 */
export function afterNewJwt(refreshAtMs: number, upstreamBlockedUntilMs: number | undefined): AttemptState {
  return wanted({ ...NEW_CREDENTIAL, accepted: true, upstreamBlockedUntilMs }, refreshAtMs, 'schedule');
}

/** An answer with no newer JWT than the one held: accepted, and asked again by reaskAt's rule, not sooner. */
export function afterNoNewer(
  state: AttemptState,
  input: Omit<ReaskInput, 'repeats'>,
  window: readonly [number, number],
  minTtlMs: number,
  random: Random,
): AttemptState {
  const repeats = state.noNewerRepeats + 1;
  const at = reaskAt({ ...input, repeats }, window, minTtlMs, random);
  return { ...state, accepted: true, failures: 0, lastError: undefined, noNewerRepeats: repeats, notBeforeMs: at, due: { atMs: at, reason: 'schedule' } };
}

/** A failed attempt: retried after retryDelay's rule for an exchange, the transient backoff for anything else. */
export function afterFailure(state: AttemptState, error: AttemptFailure, nowMs: number, random: Random): AttemptState {
  const failures = state.failures + 1;
  const delay = error instanceof ExchangeError ? retryDelay(error, failures, random, state.accepted) : backoffDelay(failures, random);
  const at = nowMs + delay;
  return { ...state, failures, lastError: error, notBeforeMs: at, due: { atMs: at, reason: 'retry' } };
}

export function isAuthFailureOf(error: AttemptFailure): boolean {
  return error instanceof ExchangeError && isAuthFailure(error);
}
