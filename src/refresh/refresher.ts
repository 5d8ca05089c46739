import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { monotonicAt, wallAt, type Clock, type Random, type Timers } from '../core/clock.ts';
import { CredentialError, DiskError, ExchangeError, describeError } from '../core/errors.ts';
import { holdJwt, remainingMs, type HeldJwt } from '../core/held-jwt.ts';
import type { Credential } from '../credentials/credential.ts';
import type { Installation } from '../disk/jwt-sink.ts';
import type { Reservation } from '../disk/state-store.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ExchangeClient } from '../upstream/exchange-client.ts';
import { interpretExchangeResponse, type Exchanged } from '../upstream/exchange-response.ts';
import { NEW_CREDENTIAL, afterFailure, afterNewJwt, afterNoNewer, afterReuse, retryOnReload, wanted, type AttemptFailure, type AttemptState, type ExchangeReason } from './attempt-state.ts';
import { combinedBudget, settle, type ExchangeRecord } from './rate-limit.ts';
import { isNewerJwt, latestSafeAt, planNextStep, refreshPoint } from './refresh-policy.ts';
import { RefreshReport, problemOf } from './refresh-report.ts';
import type { Restorable } from './reuse.ts';
import type { ServedJwt } from './served-jwt.ts';

/**
 * The loop wakes at least this often, whatever it waits for, and re-plans from both clocks: a wall-clock step,
 * a suspended VM or a lost timer costs at most this long. It is also the heartbeat behind /healthz.
 */
export const MAX_WAKE_MS = 30_000;

/** What `once` listens to. */
export interface RefresherEvents {
  onInstalled?(held: HeldJwt): void;
  onFailure?(error: AttemptFailure): void;
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

/** The newest JWT obtained (being written, or on disk and served), and when it is due for refresh (monotonic). */
interface Current {
  readonly installation: Installation;
  readonly dueAtMono: number;
  /** A proxied request got 401 with this JWT and it was checked by an exchange: at most once per JWT. */
  checked: boolean;
}

/**
 * The loop: budget → exchange → sink → next time. One timer, one exchange in flight at most, one failure path.
 * Decisions are the pure functions of refresh-policy.ts, rate-limit.ts and attempt-state.ts; what the operator is
 * told is refresh-report.ts. This class only sequences I/O, and is the only writer of the served JWT.
 */
export class Refresher {
  readonly #d: RefresherDeps;
  readonly #report: RefreshReport;
  #credential: Credential | undefined;
  #current: Current | undefined;
  #restorable: Restorable | undefined;
  #records: ExchangeRecord[] = [];
  #state: AttemptState = NEW_CREDENTIAL;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #lastTickMono: number;

  constructor(deps: RefresherDeps) {
    this.#d = deps;
    this.#report = new RefreshReport(deps.metrics, deps.log, deps.clock);
    this.#lastTickMono = deps.clock.monotonic();
    deps.signal.addEventListener('abort', () => { deps.timers.clearTimeout(this.#timer); }, { once: true });
  }

  /** Seed from disk: the budget's recent records, and a JWT a matching credential may reuse. */
  restore(records: readonly ExchangeRecord[], restorable: Restorable | undefined): void {
    this.#records = [...records];
    this.#restorable = restorable;
    this.refreshGauges();
  }

  /** A usable credential was read (at start, on rotation, or re-reported on SIGHUP). */
  onCredential(credential: Credential): void {
    const previous = this.#credential;
    this.#credential = credential;
    if (previous?.identity === credential.identity) {
      this.#d.sink.rekey(credential);
      const retry = retryOnReload(this.#state);
      if (retry === undefined) return;
      this.#state = retry;
      this.#exchangeNow('signal');
      return;
    }
    this.#state = NEW_CREDENTIAL;
    // Back to the credential the JWT on disk belongs to (a flap), or a start that finds a fresh JWT: no exchange yet.
    if (this.#current?.installation.credential.identity === credential.identity) {
      this.#replan(wanted(NEW_CREDENTIAL, this.#current.dueAtMono, 'schedule'));
      return;
    }
    if (previous === undefined && this.#adoptRestorable(credential)) return;
    this.#exchangeNow(previous === undefined ? 'start' : 'rotation');
  }

  /** The credential turned unusable (logged and counted by its source): keep the last good one and the JWT. */
  onCredentialProblem(problem: CredentialError): void {
    if (this.#credential === undefined) this.#d.served.setProblem(problemOf(problem));
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
    this.#d.served.install(installation.held);
    this.#report.installed(installation.held);
    this.#d.events?.onInstalled?.(installation.held);
  }

  onWriteFailed(error: DiskError, failures: number): void {
    this.#report.writeFailed(error, failures);
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
    const due = this.#state.due;
    return due === undefined ? undefined : wallAt(this.#d.clock, due.atMs);
  }

  /** The budget's records (the sink rewrites the state file with them). */
  records(): readonly ExchangeRecord[] {
    return this.#records;
  }

  /** Bring time-dependent gauges up to date (before each scrape: the window slides between ticks). */
  refreshGauges(): void {
    const { config, clock } = this.#d;
    const credential = this.#credential;
    this.#report.budgetRemaining(credential === undefined ? config.rateLimit.max : combinedBudget(this.#records, credential.identity, config.rateLimit, clock.monotonic()).remaining);
  }

  #adoptRestorable(credential: Credential): boolean {
    const candidate = this.#restorable?.(credential);
    this.#restorable = undefined;
    if (candidate === undefined) return false;
    if (!candidate.reusable) {
      this.#report.notReused(credential, candidate.reason);
      return false;
    }
    const { config, random } = this.#d;
    const { held, issuedAtMs } = candidate;
    const refreshAtMs = candidate.refreshAtMs ?? refreshPoint({ issuedAtMs, expiresAtMs: held.expiresAtMs }, config.refreshWindow, config.minTtlMs, random);
    this.#report.reused(credential, held, refreshAtMs);
    this.#state = afterReuse(monotonicAt(this.#d.clock, refreshAtMs));
    // Rewritten (not re-exchanged) so that a changed --jwt-format or mode takes effect and readiness follows the file.
    this.#install({ held, credential, issuedAtMs, refreshAtMs });
    this.#tick();
    return true;
  }

  #exchangeNow(reason: ExchangeReason): void {
    this.#report.wanted(reason);
    this.#replan(wanted(this.#state, this.#d.clock.monotonic(), reason));
  }

  #replan(state: AttemptState): void {
    this.#state = state;
    this.#tick();
  }

  #tick(): void {
    const { timers, clock, config, served, signal } = this.#d;
    timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (signal.aborted || this.#inFlight !== undefined) return;
    const now = clock.monotonic();
    this.#lastTickMono = now;
    const credential = this.#credential;
    const { due, notBeforeMs, upstreamBlockedUntilMs } = this.#state;
    const allowed = credential === undefined ? now : combinedBudget(this.#records, credential.identity, config.rateLimit, now).nextAllowedAtMs;
    const latestSafeAtMs = this.#latestSafeMono();
    const plan = planNextStep({ haveCredential: credential !== undefined, dueAtMs: due?.atMs, latestSafeAtMs, budgetAllowsAtMs: allowed, upstreamBlockedUntilMs, notBeforeMs }, now);
    this.refreshGauges();
    if (plan.kind === 'exchange' && credential !== undefined) {
      const reason = due !== undefined && latestSafeAtMs !== undefined && latestSafeAtMs < due.atMs ? 'expiring' : (due?.reason ?? 'schedule');
      this.#inFlight = this.#exchange(credential, reason).finally(() => {
        this.#inFlight = undefined;
        this.#tick();
      });
      return;
    }
    if (plan.kind === 'wait') {
      served.setNextAttempt(plan.untilMs);
      this.#report.waiting(wallAt(this.#d.clock, plan.untilMs), plan.cause, credential);
    }
    const until = plan.kind === 'wait' ? plan.untilMs : Infinity;
    this.#timer = timers.setTimeout(() => { this.#tick(); }, Math.min(until - now, MAX_WAKE_MS));
  }

  /** The latest safe point of the JWT held for the current credential (monotonic), if there is one. */
  #latestSafeMono(): number | undefined {
    const current = this.#current;
    if (current === undefined || current.installation.credential.identity !== this.#credential?.identity) return undefined;
    const { held, issuedAtMs } = current.installation;
    const { clock, config } = this.#d;
    return latestSafeAt({ issuedAtMs, expiresAtMs: held.expiresAtMs }, remainingMs(held, clock), clock.monotonic(), config.minTtlMs);
  }

  async #exchange(credential: Credential, reason: ExchangeReason): Promise<void> {
    const { client, clock, config, signal, ledger } = this.#d;
    let exchanged: Exchanged;
    try {
      const request = await credential.exchangeRequest();
      // Counted before sending, durably, under the lock: a crash right after the request still spends the budget,
      // and a second process on the same file counts it too. If it cannot be recorded, nothing is sent.
      const reservation = await ledger.reserve(credential.identity, this.#records);
      this.#records = reservation.records;
      this.refreshGauges();
      if (!reservation.granted) return; // another process spent the budget: the next tick waits for it
      const stopTimer = this.#report.timeExchange();
      try {
        exchanged = interpretExchangeResponse(await client.send(request, signal), clock.now(), config.minTtlMs);
      } finally {
        stopTimer();
        // The sink's next state write carries the settled time to any other process on the file.
        this.#records = settle(this.#records, reservation.id, clock.monotonic());
      }
    } catch (error) {
      if (!signal.aborted) this.#onFailure(toFailure(error), credential, reason);
      return;
    }
    this.#onAnswer(exchanged, credential, reason);
  }

  #onAnswer(exchanged: Exchanged, credential: Credential, reason: ExchangeReason): void {
    const { clock, config, random, served } = this.#d;
    this.#report.answered(credential, exchanged);
    const sameCredential = this.#credential?.identity === credential.identity;
    const current = this.#current;
    if (sameCredential && current?.installation.credential.identity === credential.identity && !isNewerJwt(exchanged.issued, current.installation.held)) {
      this.#onNoNewer(current.installation.held, credential, reason);
      return;
    }
    const issuedAtMs = clock.now();
    const held = holdJwt(exchanged.issued.jwt, exchanged.issued.tokenType, exchanged.issued.expiresAtMs, clock);
    const refreshAtMs = refreshPoint({ issuedAtMs, expiresAtMs: held.expiresAtMs }, config.refreshWindow, config.minTtlMs, random);
    // The JWT is good and is kept, but when the credential rotated while it was in flight, the schedule belongs to
    // the new one: onCredential asked for an exchange now, and the old one's result must not push it back.
    if (sameCredential) {
      const { remaining, resetMs } = exchanged.rateLimit;
      this.#state = afterNewJwt(monotonicAt(this.#d.clock, refreshAtMs), remaining === 0 && resetMs !== undefined ? clock.monotonic() + resetMs : undefined);
    }
    this.#report.newJwt(credential, reason, held, refreshAtMs);
    served.setProblem(undefined);
    this.#install({ held, credential, issuedAtMs, refreshAtMs });
  }

  /**
   * The upstream answered with no newer JWT than the one held (a broker that has not refreshed yet): keep the one
   * held, unwritten, and ask again by reaskAt's rule instead of from the same JWT's shrinking life.
   */
  #onNoNewer(held: HeldJwt, credential: Credential, reason: ExchangeReason): void {
    const { clock, config, random, served } = this.#d;
    const nowMs = clock.monotonic();
    const latestSafeAtMs = this.#latestSafeMono() ?? nowMs;
    this.#state = afterNoNewer(this.#state, { nowMs, expiresAtMs: nowMs + remainingMs(held, clock), latestSafeAtMs }, config.refreshWindow, config.minTtlMs, random);
    served.setProblem(undefined);
    const { due, noNewerRepeats } = this.#state;
    this.#report.noNewer(credential, reason, held, { atMs: wallAt(this.#d.clock, due?.atMs ?? nowMs), repeats: noNewerRepeats, pastSafePoint: latestSafeAtMs <= nowMs });
  }

  /** Plan with this JWT from now on, and hand it to the sink (which reports back once it is on disk). */
  #install(installation: Installation): void {
    const previous = this.#current;
    const checked = previous?.installation.held.jwt === installation.held.jwt && previous.checked;
    this.#current = { installation, dueAtMono: monotonicAt(this.#d.clock, installation.refreshAtMs), checked };
    this.#d.sink.install(installation);
  }

  #onFailure(error: AttemptFailure, credential: Credential, reason: ExchangeReason): void {
    if (this.#credential?.identity !== credential.identity) {
      // A failure of the credential that was just rotated away: reported; no schedule for the new one.
      this.#report.failed(error, credential, reason, undefined);
      return;
    }
    const nowMs = this.#d.clock.monotonic();
    this.#state = afterFailure(this.#state, error, nowMs, this.#d.random);
    this.#d.served.setProblem(problemOf(error));
    this.#report.failed(error, credential, reason, { failures: this.#state.failures, delayMs: (this.#state.due?.atMs ?? nowMs) - nowMs });
    this.#d.events?.onFailure?.(error);
  }
}

function toFailure(error: unknown): AttemptFailure {
  if (error instanceof ExchangeError || error instanceof CredentialError || error instanceof DiskError) return error;
  return new ExchangeError('network_error', `exchange failed: ${describeError(error)}`, { cause: error });
}
