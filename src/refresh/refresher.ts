import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Clock, Random, Timers } from '../core/clock.ts';
import { CredentialError, DiskError, ExchangeError, describeError } from '../core/errors.ts';
import { holdJwt, remainingMs, type HeldJwt } from '../core/held-jwt.ts';
import type { Credential } from '../credentials/credential.ts';
import type { Installation } from '../disk/jwt-sink.ts';
import type { Reservation } from '../disk/state-store.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ExchangeClient } from '../upstream/exchange-client.ts';
import { interpretExchangeResponse, type Exchanged } from '../upstream/exchange-response.ts';
import { combinedBudget, settle, type ExchangeRecord } from './rate-limit.ts';
import { backoffDelay, isAuthFailure, isNewerJwt, latestRefresh, planNextStep, reaskAt, refreshPoint, retryDelay } from './refresh-policy.ts';
import type { ServedJwt } from './served-jwt.ts';

/**
 * The loop wakes at least this often, whatever it waits for, and re-plans from both clocks: a wall-clock step,
 * a suspended VM or a lost timer costs at most this long. It is also the heartbeat behind /healthz.
 */
export const MAX_WAKE_MS = 30_000;

/** Why an exchange happens, for the log line that reports it. */
export type ExchangeReason = 'start' | 'rotation' | 'schedule' | 'retry' | 'signal' | 'proxy-401' | 'expiring';

/** What `once` listens to. */
export interface RefresherEvents {
  onInstalled?(held: HeldJwt): void;
  onFailure?(error: ExchangeError | CredentialError | DiskError): void;
}

export interface RefresherDeps {
  readonly config: Pick<Config, 'refreshWindow' | 'minTtlMs' | 'rateLimit' | 'timeoutMs'>;
  readonly client: Pick<ExchangeClient, 'send'>;
  /** The budget's ledger on disk: records the attempt durably before it is sent, or refuses. */
  readonly ledger: { reserve(key: string, known: readonly ExchangeRecord[]): Promise<Reservation> };
  /** Where JWTs go: the JWT file and its state entry (it reports back through the refresher's sink handlers). */
  readonly sink: { install(installation: Installation): void; rekey(credential: Installation['credential']): void };
  readonly served: ServedJwt;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly random: Random;
  readonly timers: Timers;
  readonly log: Logger;
  /** Shutdown: aborts the exchange in flight and stops scheduling. */
  readonly signal: AbortSignal;
  readonly events?: RefresherEvents;
}

/** What the previous run left on disk, judged for the first credential (see reuse.ts): reusable, or why not. */
export type Restorable = (credential: Credential) =>
  | { readonly reusable: true; readonly held: HeldJwt; readonly issuedAtMs: number; readonly refreshAtMs: number | undefined }
  | { readonly reusable: false; readonly reason: string };

/** The newest JWT obtained (being written, or on disk and served), and when it is due for refresh (monotonic). */
interface Current {
  readonly installation: Installation;
  readonly dueAtMono: number;
  /** A proxied request got 401 with this JWT and it was checked by an exchange: at most once per JWT. */
  checked: boolean;
}

/**
 * The loop: budget → exchange → sink → next time. One timer, one exchange in flight at most, one failure path.
 * Decisions are the pure functions of refresh-policy.ts and rate-limit.ts; this class only sequences I/O and is the
 * only writer of the served JWT and of the schedule's gauges.
 */
export class Refresher {
  readonly #d: RefresherDeps;
  #credential: Credential | undefined;
  #current: Current | undefined;
  #restorable: Restorable | undefined;
  #records: ExchangeRecord[] = [];
  #due: { atMono: number; reason: ExchangeReason } | undefined;
  #upstreamBlockedUntilMono: number | undefined;
  /**
   * No attempt before this (monotonic): the backoff after a failure, or the re-ask after an answer with no newer
   * JWT. The latest safe point brings a planned refresh forward, never these: past it, a failure would otherwise be
   * retried at every tick, as fast as the budget allows.
   */
  #notBeforeMono: number | undefined;
  /** Answers in a row with no newer JWT than the one held. */
  #noNewerRepeats = 0;
  #failures = 0;
  /** An exchange of the current credential has succeeded (or its JWT was reused): a 401/403 now means revoked. */
  #accepted = false;
  #lastError: ExchangeError | CredentialError | DiskError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #lastTickMono: number;

  constructor(deps: RefresherDeps) {
    this.#d = deps;
    this.#lastTickMono = deps.clock.monotonic();
    deps.signal.addEventListener('abort', () => { deps.timers.clearTimeout(this.#timer); }, { once: true });
  }

  /** Seed from disk: the budget's recent records, and a JWT a matching credential may reuse. */
  restore(records: readonly ExchangeRecord[], restorable: Restorable | undefined): void {
    this.#records = [...records];
    this.#restorable = restorable;
    this.#updateBudgetGauge();
  }

  /** A usable credential was read (at start, on rotation, or re-reported on SIGHUP). */
  onCredential(credential: Credential): void {
    const previous = this.#credential;
    this.#credential = credential;
    if (previous?.identity === credential.identity) {
      this.#d.sink.rekey(credential);
      // Same identity again (SIGHUP, a rewritten file, a rotated projected token): only an authentication failure
      // is retried at once.
      if (this.#lastError !== undefined && this.#isAuthFailure(this.#lastError)) {
        this.#notBeforeMono = undefined;
        this.#exchangeNow('signal');
      }
      return;
    }
    this.#failures = 0;
    this.#lastError = undefined;
    this.#upstreamBlockedUntilMono = undefined;
    this.#notBeforeMono = undefined;
    this.#noNewerRepeats = 0;
    this.#accepted = false;
    // Back to the credential the JWT on disk belongs to (a flap), or a start that finds a fresh JWT: no exchange yet.
    if (this.#current?.installation.credential.identity === credential.identity) {
      this.#due = { atMono: this.#current.dueAtMono, reason: 'schedule' };
      this.#tick();
      return;
    }
    if (previous === undefined && this.#adoptRestorable(credential)) return;
    this.#exchangeNow(previous === undefined ? 'start' : 'rotation');
  }

  /** The credential turned unusable (logged and counted by its source): keep the last good one and the JWT. */
  onCredentialProblem(problem: CredentialError): void {
    if (this.#credential === undefined) this.#d.served.setProblem({ kind: 'credential', code: problem.code });
  }

  /** A proxied request got 401 from the upstream with the held JWT (revoked?): check it with one new exchange. */
  onUpstreamUnauthorized(): void {
    const current = this.#current;
    if (current === undefined || current.checked) return;
    current.checked = true;
    this.#exchangeNow('proxy-401');
  }

  // Sink events: the refresher is the one writer of what is served.

  onInstalled(installation: Installation): void {
    const { served, metrics } = this.#d;
    served.install(installation.held);
    metrics.jwtExpiry.set(installation.held.expiresAtMs / 1000);
    this.#d.events?.onInstalled?.(installation.held);
  }

  onWriteFailed(error: DiskError, failures: number): void {
    this.#d.log.error({ failures }, `${error.message}; the previous JWT file is left intact and the write is retried`);
    this.#d.served.setProblem({ kind: 'write', code: error.code });
  }

  onFileGone(): void {
    this.#d.served.setFileMissing(true);
  }

  /** Resolves once nothing is in flight (call after aborting the signal). */
  async settled(): Promise<void> {
    await this.#inFlight;
  }

  /** The loop is alive: not stopped, and it ticked recently enough (or an exchange, bounded by its timeout, runs). */
  alive(): boolean {
    if (this.#d.signal.aborted) return false;
    const slack = MAX_WAKE_MS + this.#d.config.timeoutMs + 10_000;
    return this.#d.clock.monotonic() - this.#lastTickMono < slack;
  }

  /** Wall time of the next planned attempt, or undefined (for tests and logs). */
  nextAttemptAt(): number | undefined {
    return this.#due === undefined ? undefined : this.#toWall(this.#due.atMono);
  }

  /** The budget's records (the sink rewrites the state file with them). */
  records(): readonly ExchangeRecord[] {
    return this.#records;
  }

  #adoptRestorable(credential: Credential): boolean {
    const judge = this.#restorable;
    this.#restorable = undefined;
    const candidate = judge?.(credential);
    const { config, random, log, clock } = this.#d;
    if (candidate === undefined) return false;
    if (!candidate.reusable) {
      log.info({ tokenFingerprint: credential.identity }, `not reusing the JWT on disk: ${candidate.reason}`);
      return false;
    }
    const refreshAtMs = candidate.refreshAtMs ?? refreshPoint({ issuedAtMs: candidate.issuedAtMs, expiresAtMs: candidate.held.expiresAtMs }, config.refreshWindow, config.minTtlMs, random);
    log.info({ tokenFingerprint: credential.identity, expiresAt: iso(candidate.held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, 'reusing the JWT on disk; no exchange until its refresh point');
    this.#accepted = true;
    this.#due = { atMono: clock.monotonic() + (refreshAtMs - clock.now()), reason: 'schedule' };
    // Rewritten (not re-exchanged) so that a changed --jwt-format or mode takes effect and readiness follows the file.
    this.#install({ held: candidate.held, credential, issuedAtMs: candidate.issuedAtMs, refreshAtMs });
    this.#tick();
    return true;
  }

  #exchangeNow(reason: ExchangeReason): void {
    this.#d.log.debug({ reason }, 'exchange wanted now');
    this.#due = { atMono: this.#d.clock.monotonic(), reason };
    this.#tick();
  }

  #tick(): void {
    const { timers, clock, config, served, metrics, signal } = this.#d;
    timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (signal.aborted || this.#inFlight !== undefined) return;
    const now = clock.monotonic();
    this.#lastTickMono = now;
    const credential = this.#credential;
    const allowed = credential === undefined ? now : combinedBudget(this.#records, credential.identity, config.rateLimit, now).nextAllowedAtMs;
    const latestSafeAtMs = this.#latestSafeMono();
    const plan = planNextStep({ haveCredential: credential !== undefined, dueAtMs: this.#due?.atMono, latestSafeAtMs, budgetAllowsAtMs: allowed, upstreamBlockedUntilMs: this.#upstreamBlockedUntilMono, notBeforeMs: this.#notBeforeMono }, now);
    this.#updateBudgetGauge();
    if (plan.kind === 'exchange' && credential !== undefined) {
      const reason = this.#due !== undefined && latestSafeAtMs !== undefined && latestSafeAtMs < this.#due.atMono ? 'expiring' : (this.#due?.reason ?? 'schedule');
      this.#inFlight = this.#exchange(credential, reason).finally(() => {
        this.#inFlight = undefined;
        this.#tick();
      });
      return;
    }
    if (plan.kind === 'wait') {
      served.setNextAttempt(plan.untilMs);
      metrics.nextRefresh.set(this.#toWall(plan.untilMs) / 1000);
      if (plan.cause === 'budget' && credential !== undefined) this.#d.log.warn({ tokenFingerprint: credential.identity, until: iso(this.#toWall(plan.untilMs)) }, 'exchange delayed by the client-side rate limit');
    }
    const until = plan.kind === 'wait' ? plan.untilMs : Infinity;
    this.#timer = timers.setTimeout(() => { this.#tick(); }, Math.min(until - now, MAX_WAKE_MS));
  }

  /** When the held JWT must be refreshed at the latest to stay above --min-ttl, by its remaining life now. */
  #latestSafeMono(): number | undefined {
    const current = this.#current;
    if (current === undefined || current.installation.credential.identity !== this.#credential?.identity) return undefined;
    const { held, issuedAtMs } = current.installation;
    const { clock, config } = this.#d;
    // The latest refresh in terms of the planned lifetime, shifted by how much shorter the remaining life now is.
    const planned = latestRefresh({ issuedAtMs, expiresAtMs: held.expiresAtMs }, config.minTtlMs) - held.expiresAtMs;
    return clock.monotonic() + remainingMs(held, clock) + planned;
  }

  async #exchange(credential: Credential, reason: ExchangeReason): Promise<void> {
    const { client, clock, config, metrics, signal, ledger } = this.#d;
    let exchanged: Exchanged;
    try {
      const request = await credential.exchangeRequest();
      // Counted before sending, durably, under the lock: a crash right after the request still spends the budget,
      // and a second process on the same file counts it too. If it cannot be recorded, nothing is sent.
      const reservation = await ledger.reserve(credential.identity, this.#records);
      this.#records = reservation.records;
      this.#updateBudgetGauge();
      if (!reservation.granted) return; // another process spent the budget: the next tick waits for it
      const stopTimer = metrics.exchangeDuration.startTimer();
      try {
        exchanged = interpretExchangeResponse(await client.send(request, signal), clock.now(), config.minTtlMs);
      } finally {
        stopTimer();
        // The sink's next state write carries the settled time to any other process on the file.
        this.#records = settle(this.#records, reservation.id, clock.monotonic());
      }
    } catch (error) {
      if (signal.aborted) return;
      this.#onFailure(toFailure(error), credential, reason);
      return;
    }
    this.#onSuccess(exchanged, credential, reason);
  }

  #onSuccess(exchanged: Exchanged, credential: Credential, reason: ExchangeReason): void {
    const { clock, config, metrics, log, random, served } = this.#d;
    const { issued, rateLimit, anomalies } = exchanged;
    metrics.exchanges.inc({ result: 'success' });
    metrics.lastExchangeSuccess.set(clock.now() / 1000);
    if (rateLimit.remaining !== undefined) metrics.upstreamRateLimitRemaining.set(rateLimit.remaining);
    if (anomalies.length > 0) log.warn({ tokenFingerprint: credential.identity, anomalies }, 'the upstream sent numbers out of range; they were clamped');
    const current = this.#current;
    const sameCredential = this.#credential?.identity === credential.identity;
    if (sameCredential && current?.installation.credential.identity === credential.identity && !isNewerJwt(issued, current.installation.held)) {
      this.#onNoNewer(current.installation, credential, reason);
      return;
    }
    const issuedAtMs = clock.now();
    const held = holdJwt(issued.jwt, issued.tokenType, issued.expiresAtMs, clock);
    const refreshAtMs = refreshPoint({ issuedAtMs, expiresAtMs: held.expiresAtMs }, config.refreshWindow, config.minTtlMs, random);
    // The JWT is good and is kept, but when the credential rotated while it was in flight, the schedule belongs to
    // the new one: onCredential asked for an exchange now, and the old one's result must not push it back.
    if (sameCredential) {
      this.#accepted = true;
      this.#failures = 0;
      this.#lastError = undefined;
      this.#notBeforeMono = undefined;
      this.#noNewerRepeats = 0;
      this.#upstreamBlockedUntilMono = rateLimit.remaining === 0 && rateLimit.resetMs !== undefined ? clock.monotonic() + rateLimit.resetMs : undefined;
      this.#due = { atMono: this.#toMono(refreshAtMs), reason: 'schedule' };
    }
    log.info({ tokenFingerprint: credential.identity, reason, result: 'success', expiresAt: iso(held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, `exchanged the ${credential.mode === 'oidc' ? 'workload identity' : 'API token'} for a new JWT`);
    served.setProblem(undefined);
    this.#install({ held, credential, issuedAtMs, refreshAtMs });
  }

  /**
   * The upstream answered with no newer JWT than the one held (a broker that has not refreshed yet): keep the one
   * held, unwritten, and ask again by reaskAt's rule instead of from the same JWT's shrinking life.
   */
  #onNoNewer(installation: Installation, credential: Credential, reason: ExchangeReason): void {
    const { clock, config, log, random, served } = this.#d;
    this.#accepted = true;
    this.#failures = 0;
    this.#lastError = undefined;
    served.setProblem(undefined);
    const now = clock.monotonic();
    const repeats = this.#noNewerRepeats + 1;
    const latestSafeAtMs = this.#latestSafeMono() ?? now;
    const expiresAtMs = now + remainingMs(installation.held, clock);
    const at = reaskAt({ nowMs: now, expiresAtMs, latestSafeAtMs, repeats }, config.refreshWindow, config.minTtlMs, random);
    this.#noNewerRepeats = repeats;
    this.#notBeforeMono = at;
    this.#due = { atMono: at, reason: 'schedule' };
    const fields = { tokenFingerprint: credential.identity, reason, result: 'success', repeats, expiresAt: iso(installation.held.expiresAtMs), nextRefreshAt: iso(this.#toWall(at)) };
    const message = 'the upstream answered with no newer JWT than the one held (a broker that has not refreshed yet): keeping it';
    if (latestSafeAtMs <= now) log.warn(fields, `${message}; it is past its latest safe refresh point`);
    else log.info(fields, message);
  }

  /** Plan with this JWT from now on, and hand it to the sink (which reports back once it is on disk). */
  #install(installation: Installation): void {
    const previous = this.#current;
    const checked = previous?.installation.held.jwt === installation.held.jwt && previous.checked;
    this.#current = { installation, dueAtMono: this.#toMono(installation.refreshAtMs), checked };
    this.#d.sink.install(installation);
  }

  #onFailure(error: ExchangeError | CredentialError | DiskError, credential: Credential, reason: ExchangeReason): void {
    const { clock, metrics, log, served, random } = this.#d;
    if (error instanceof ExchangeError) {
      metrics.exchanges.inc({ result: error.code });
      if (error.rateLimitRemaining !== undefined) metrics.upstreamRateLimitRemaining.set(error.rateLimitRemaining);
    }
    if (this.#credential?.identity !== credential.identity) {
      // A failure of the credential that was just rotated away: counted and logged; no schedule for the new one.
      log.warn({ tokenFingerprint: credential.identity, reason, result: error.code }, `${error.message}; the credential has since been rotated`);
      return;
    }
    this.#failures += 1;
    this.#lastError = error;
    const delay = error instanceof ExchangeError ? retryDelay(error, this.#failures, random, this.#accepted) : backoffDelay(this.#failures, random);
    this.#due = { atMono: clock.monotonic() + delay, reason: 'retry' };
    this.#notBeforeMono = this.#due.atMono;
    served.setProblem(problemOf(error));
    const fields = { tokenFingerprint: credential.identity, reason, result: error.code, status: error instanceof ExchangeError ? error.status : undefined, failures: this.#failures, retryAt: iso(clock.now() + delay) };
    if (this.#isAuthFailure(error)) log.error(fields, `${error.message}; retrying in ${String(Math.round(delay / 1000))} s or when the credential changes or on SIGHUP`);
    else if (error instanceof DiskError) log.error(fields, `${error.message}; the exchange attempt cannot be recorded, so none is sent`);
    else log.warn(fields, `${error.message}; the JWT held so far stays in use`);
    this.#d.events?.onFailure?.(error);
  }

  #isAuthFailure(error: ExchangeError | CredentialError | DiskError): boolean {
    return error instanceof ExchangeError && isAuthFailure(error);
  }

  #updateBudgetGauge(): void {
    const { config, clock, metrics } = this.#d;
    const credential = this.#credential;
    metrics.rateLimitBudget.set(credential === undefined ? config.rateLimit.max : combinedBudget(this.#records, credential.identity, config.rateLimit, clock.monotonic()).remaining);
  }

  /** Bring time-dependent gauges up to date (before each scrape: the window slides between ticks). */
  refreshGauges(): void {
    this.#updateBudgetGauge();
  }

  #toMono(wallMs: number): number {
    return this.#d.clock.monotonic() + (wallMs - this.#d.clock.now());
  }

  #toWall(monoMs: number): number {
    return this.#d.clock.now() + (monoMs - this.#d.clock.monotonic());
  }
}

function toFailure(error: unknown): ExchangeError | CredentialError | DiskError {
  if (error instanceof ExchangeError || error instanceof CredentialError || error instanceof DiskError) return error;
  return new ExchangeError('network_error', `exchange failed: ${describeError(error)}`, { cause: error });
}

function problemOf(error: ExchangeError | CredentialError | DiskError): Parameters<ServedJwt['setProblem']>[0] {
  if (error instanceof ExchangeError) return { kind: 'exchange', code: error.code, status: error.status };
  if (error instanceof CredentialError) return { kind: 'credential', code: error.code };
  return { kind: 'budget-record', code: error.code };
}

function iso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? 'never' : date.toISOString();
}
