import type { Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import { DiskError, ExchangeError, type CredentialError } from '../core/errors.ts';
import type { HeldJwt } from '../core/held-jwt.ts';
import type { Credential } from '../credentials/credential.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { Exchanged } from '../upstream/exchange-response.ts';
import { isAuthFailureOf, type AttemptFailure, type ExchangeReason } from './attempt-state.ts';
import type { WaitCause } from './refresh-policy.ts';
import type { Problem } from './served-jwt.ts';

/** A retry as the log line reports it. */
export interface RetryPlan {
  readonly failures: number;
  readonly delayMs: number;
}

/**
 * What the refresh loop tells the operator: the log line of each outcome and the metrics it moves. It decides
 * nothing, and it is the one writer of the exchange counters and of the schedule's gauges. Log fields name the
 * credential by its fingerprint only; times are wall-clock ISO strings.
 */
export class RefreshReport {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #clock: Clock;

  constructor(metrics: Metrics, log: Logger, clock: Clock) {
    this.#metrics = metrics;
    this.#log = log;
    this.#clock = clock;
  }

  wanted(reason: ExchangeReason): void {
    this.#log.debug({ reason }, 'exchange wanted now');
  }

  notReused(credential: Credential, why: string): void {
    this.#log.info({ tokenFingerprint: credential.identity }, `not reusing the JWT on disk: ${why}`);
  }

  reused(credential: Credential, held: HeldJwt, refreshAtMs: number): void {
    this.#log.info({ tokenFingerprint: credential.identity, expiresAt: iso(held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, 'reusing the JWT on disk; no exchange until its refresh point');
  }

  /** The loop waits until `atMs` (wall time), held by `cause`. */
  waiting(atMs: number, cause: WaitCause, credential: Credential | undefined): void {
    this.#metrics.nextRefresh.set(atMs / 1000);
    if (cause === 'budget' && credential !== undefined) this.#log.warn({ tokenFingerprint: credential.identity, until: iso(atMs) }, 'exchange delayed by the client-side rate limit');
  }

  budgetRemaining(remaining: number): void {
    this.#metrics.rateLimitBudget.set(remaining);
  }

  /** Starts the exchange's duration timer; call the result when it has an answer. */
  timeExchange(): () => void {
    const stop = this.#metrics.exchangeDuration.startTimer();
    return () => { stop(); };
  }

  /** The upstream answered with a JWT (newer or not). */
  answered(credential: Credential, exchanged: Exchanged): void {
    const { rateLimit, anomalies } = exchanged;
    this.#metrics.exchanges.inc({ result: 'success' });
    this.#metrics.lastExchangeSuccess.set(this.#clock.now() / 1000);
    if (rateLimit.remaining !== undefined) this.#metrics.upstreamRateLimitRemaining.set(rateLimit.remaining);
    if (anomalies.length > 0) this.#log.warn({ tokenFingerprint: credential.identity, anomalies }, 'the upstream sent numbers out of range; they were clamped');
  }

  newJwt(credential: Credential, reason: ExchangeReason, held: HeldJwt, refreshAtMs: number): void {
    this.#log.info({ tokenFingerprint: credential.identity, reason, result: 'success', expiresAt: iso(held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, `exchanged the ${credential.mode === 'oidc' ? 'workload identity' : 'API token'} for a new JWT`);
  }

  /** An answer with no newer JWT than `held`; asked again at `nextAtMs` (wall time). */
  noNewer(credential: Credential, reason: ExchangeReason, held: HeldJwt, next: { readonly atMs: number; readonly repeats: number; readonly pastSafePoint: boolean }): void {
    const fields = { tokenFingerprint: credential.identity, reason, result: 'success', repeats: next.repeats, expiresAt: iso(held.expiresAtMs), nextRefreshAt: iso(next.atMs) };
    const message = 'the upstream answered with no newer JWT than the one held (a broker that has not refreshed yet): keeping it';
    if (next.pastSafePoint) this.#log.warn(fields, `${message}; it is past its latest safe refresh point`);
    else this.#log.info(fields, message);
  }

  /** A failed attempt; `retry` is undefined when the credential has since been rotated (nothing is planned for it). */
  failed(error: AttemptFailure, credential: Credential, reason: ExchangeReason, retry: RetryPlan | undefined): void {
    if (error instanceof ExchangeError) {
      this.#metrics.exchanges.inc({ result: error.code });
      if (error.rateLimitRemaining !== undefined) this.#metrics.upstreamRateLimitRemaining.set(error.rateLimitRemaining);
    }
    if (retry === undefined) {
      this.#log.warn({ tokenFingerprint: credential.identity, reason, result: error.code }, `${error.message}; the credential has since been rotated`);
      return;
    }
    const { failures, delayMs } = retry;
    const fields = { tokenFingerprint: credential.identity, reason, result: error.code, status: error instanceof ExchangeError ? error.status : undefined, failures, retryAt: iso(this.#clock.now() + delayMs) };
    if (isAuthFailureOf(error)) this.#log.error(fields, `${error.message}; retrying in ${String(Math.round(delayMs / 1000))} s or when the credential changes or on SIGHUP`);
    else if (error instanceof DiskError) this.#log.error(fields, `${error.message}; the exchange attempt cannot be recorded, so none is sent`);
    else this.#log.warn(fields, `${error.message}; the JWT held so far stays in use`);
  }

  installed(held: HeldJwt): void {
    this.#metrics.jwtExpiry.set(held.expiresAtMs / 1000);
  }

  writeFailed(error: DiskError, failures: number): void {
    this.#log.error({ failures }, `${error.message}; the previous JWT file is left intact and the write is retried`);
  }
}

/** Why no JWT can be served after this failure, for /readyz. */
export function problemOf(error: AttemptFailure | CredentialError): Problem {
  if (error instanceof ExchangeError) return { kind: 'exchange', code: error.code, status: error.status };
  if (error instanceof DiskError) return { kind: 'budget-record', code: error.code };
  return { kind: 'credential', code: error.code };
}

function iso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? 'never' : date.toISOString();
}
