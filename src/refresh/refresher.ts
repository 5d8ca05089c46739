import type { Logger } from 'pino';
import type { ApiToken, TokenRead } from '../credentials/api-token.ts';
import type { Clock, Random } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import type { ExchangeClient } from '../upstream/exchange-client.ts';
import { ExchangeError } from '../core/errors.ts';
import { interpretExchangeResponse, type Exchanged } from '../upstream/exchange-response.ts';
import { fingerprint } from '../upstream/jwt-claims.ts';
import type { Metrics } from '../observe/metrics.ts';
import { budget, prune, type ExchangeRecord } from './rate-limit.ts';
import { backoffDelay, isAuthFailure, isReusable, planNextStep, refreshPoint, retryDelay } from './refresh-policy.ts';
import type { SidecarState } from '../disk/state-file.ts';
import type { HeldJwt, Status } from './served-jwt.ts';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Where JWTs and the state go: the JWT file and its state file in production, memory in tests. */
export interface JwtStore {
  writeJwt(held: HeldJwt, nowMs: number): Promise<void>;
  writeState(state: SidecarState): Promise<void>;
}

/** What `once` and the on-refresh hook listen to. */
export interface RefresherEvents {
  onWritten?(held: HeldJwt): void;
  onFailure?(error: ExchangeError): void;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
}

export interface RefresherDeps {
  readonly config: Pick<Config, 'refreshWindow' | 'minTtlMs' | 'rateLimit'>;
  readonly client: ExchangeClient;
  readonly store: JwtStore;
  readonly status: Status;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly timers?: Timers;
  readonly events?: RefresherEvents;
}

/** The JWT on disk and what the schedule knows about it. */
interface Current {
  readonly held: HeldJwt;
  readonly tokenFingerprint: string;
  readonly issuedAtMs: number;
  readonly refreshAtMs: number;
}

/**
 * The loop: budget → exchange → store → next time. One timer, one exchange in flight at most, one failure path.
 * Decisions are made by the pure functions of refresh-policy.ts and rate-limit.ts; this class only does I/O.
 */
export class Refresher {
  readonly #deps: RefresherDeps;
  readonly #timers: Timers;
  readonly #shutdown = new AbortController();
  #token: ApiToken | undefined;
  #current: Current | undefined;
  #restorable: (SidecarState & { readonly held: HeldJwt }) | undefined;
  #exchanges: ExchangeRecord[] = [];
  #dueAtMs: number | undefined;
  #upstreamBlockedUntilMs: number | undefined;
  #failures = 0;
  #lastError: ExchangeError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #pendingWrite: { readonly current: Current; failures: number; timer: NodeJS.Timeout | undefined } | undefined;

  constructor(deps: RefresherDeps) {
    this.#deps = deps;
    this.#timers = deps.timers ?? { setTimeout: (callback, ms) => setTimeout(callback, ms), clearTimeout: (timer) => { clearTimeout(timer); } };
  }

  /** Seed from the state file: the budget's recent exchanges, and a JWT on disk that a matching token may reuse. */
  restore(state: SidecarState, jwtOnDisk: HeldJwt | undefined): void {
    this.#exchanges = prune(state.exchanges, this.#deps.config.rateLimit, this.#deps.clock.now());
    const matches = jwtOnDisk !== undefined && state.jwtFingerprint === fingerprint(jwtOnDisk.jwt) && state.tokenFingerprint !== undefined;
    this.#restorable = matches ? { ...state, held: jwtOnDisk } : undefined;
    this.#updateBudgetGauge();
  }

  /** A valid token was read (at start, on rotation, or re-reported on SIGHUP). */
  onToken(token: ApiToken): void {
    const { log, status, metrics } = this.#deps;
    metrics.tokenFileReloads.inc({ result: 'success' });
    if (this.#token?.fingerprint === token.fingerprint) {
      // Same token again (SIGHUP, or the file rewritten unchanged): only an authentication failure is retried at once.
      if (this.#lastError !== undefined && isAuthFailure(this.#lastError)) this.#retryNow('token re-read after an authentication failure');
      return;
    }
    const rotated = this.#token !== undefined;
    this.#token = token;
    status.setApiToken(token.value);
    this.#failures = 0;
    this.#lastError = undefined;
    this.#upstreamBlockedUntilMs = undefined;
    log.info({ tokenFingerprint: token.fingerprint }, rotated ? 'API token rotated' : 'API token loaded');
    // Back to the token the JWT on disk belongs to (a flap), or a restart that finds a fresh JWT: no exchange yet.
    if (this.#current?.tokenFingerprint === token.fingerprint || (!rotated && this.#adoptRestorable(token))) {
      if (this.#current?.tokenFingerprint === token.fingerprint) this.#dueAtMs = this.#current.refreshAtMs;
      this.#tick();
      return;
    }
    this.#retryNow(rotated ? 'new API token' : 'first API token');
  }

  /** The token file turned unusable: say so, keep the last good token and JWT. */
  onInvalidToken(read: Extract<TokenRead, { ok: false }>): void {
    this.#deps.metrics.tokenFileReloads.inc({ result: 'invalid' });
    const keeping = this.#token === undefined ? 'no API token is loaded yet' : `keeping the last good API token (${this.#token.fingerprint})`;
    this.#deps.log.error({ problem: read.problem }, `${read.message}; ${keeping}`);
    if (this.#token === undefined) this.#deps.status.setProblem(read.message);
  }

  /** Abort the exchange in flight and stop scheduling; resolves once nothing is running. */
  async stop(): Promise<void> {
    this.#shutdown.abort();
    this.#timers.clearTimeout(this.#timer);
    this.#timers.clearTimeout(this.#pendingWrite?.timer);
    await this.#inFlight;
  }

  #adoptRestorable(token: ApiToken): boolean {
    const candidate = this.#restorable;
    this.#restorable = undefined;
    if (candidate === undefined || candidate.tokenFingerprint === undefined) return false;
    const { clock, config, random, log } = this.#deps;
    const now = clock.now();
    const restorable = { tokenFingerprint: candidate.tokenFingerprint, expiresAtMs: Math.min(candidate.held.expiresAtMs, candidate.expiresAtMs ?? Infinity) };
    if (!isReusable(restorable, token.fingerprint, config.minTtlMs, now)) return false;
    const held = { ...candidate.held, expiresAtMs: restorable.expiresAtMs };
    const issuedAtMs = candidate.issuedAtMs ?? now;
    const refreshAtMs = candidate.refreshAtMs ?? refreshPoint({ issuedAtMs, expiresAtMs: held.expiresAtMs }, config.refreshWindow, config.minTtlMs, random);
    const current: Current = { held, tokenFingerprint: token.fingerprint, issuedAtMs, refreshAtMs };
    log.info({ tokenFingerprint: token.fingerprint, expiresAt: iso(held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, 'reusing the JWT on disk; no exchange until its refresh point');
    this.#dueAtMs = refreshAtMs;
    // Rewritten (not re-exchanged) so that a changed --jwt-format or mode takes effect and readiness follows the file.
    void this.#persist(current);
    return true;
  }

  #retryNow(why: string): void {
    this.#deps.log.debug({ why }, 'exchange wanted now');
    this.#dueAtMs = this.#deps.clock.now();
    this.#tick();
  }

  #tick(): void {
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#shutdown.signal.aborted || this.#inFlight !== undefined) return;
    const { clock, config, status, metrics } = this.#deps;
    const now = clock.now();
    const token = this.#token;
    const allowed = token === undefined ? now : budget(this.#exchanges, token.fingerprint, config.rateLimit, now).nextAllowedAtMs;
    const plan = planNextStep({ haveToken: token !== undefined, dueAtMs: this.#dueAtMs, budgetAllowsAtMs: allowed, upstreamBlockedUntilMs: this.#upstreamBlockedUntilMs }, now);
    this.#updateBudgetGauge();
    if (plan.kind === 'idle' || token === undefined) return;
    if (plan.kind === 'wait') {
      status.setNextAttempt(plan.untilMs);
      metrics.nextRefresh.set(plan.untilMs / 1000);
      if (plan.cause === 'budget') this.#deps.log.warn({ tokenFingerprint: token.fingerprint, until: iso(plan.untilMs) }, 'exchange delayed by the client-side rate limit');
      // Node timers overflow past 2^31-1 ms; a tick re-plans anyway, so a long wait is taken in steps.
      this.#timer = this.#timers.setTimeout(() => { this.#tick(); }, Math.min(plan.untilMs - now, MAX_TIMER_MS));
      return;
    }
    this.#inFlight = this.#exchange(token).finally(() => {
      this.#inFlight = undefined;
      this.#tick();
    });
  }

  async #exchange(token: ApiToken): Promise<void> {
    const { client, clock, config, metrics, log, status } = this.#deps;
    const startedAt = clock.now();
    // Counted before sending and persisted, so that a crash right after the request still spends the budget.
    this.#exchanges = prune([...this.#exchanges, { atMs: startedAt, fingerprint: token.fingerprint }], config.rateLimit, startedAt);
    this.#updateBudgetGauge();
    await this.#saveState();
    const stopTimer = metrics.exchangeDuration.startTimer();
    let exchanged: Exchanged;
    try {
      const raw = await client.send(token.value, this.#shutdown.signal);
      exchanged = interpretExchangeResponse(raw, clock.now(), config.minTtlMs);
    } catch (error) {
      stopTimer();
      if (this.#shutdown.signal.aborted) return;
      this.#onFailure(toExchangeError(error), token);
      return;
    }
    stopTimer();
    metrics.exchanges.inc({ result: 'success' });
    if (exchanged.rateLimit.remaining !== undefined) metrics.upstreamRateLimitRemaining.set(exchanged.rateLimit.remaining);
    metrics.lastExchangeSuccess.set(clock.now() / 1000);
    const issuedAtMs = exchanged.issuedAtMs;
    const refreshAtMs = refreshPoint({ issuedAtMs, expiresAtMs: exchanged.held.expiresAtMs }, config.refreshWindow, config.minTtlMs, this.#deps.random);
    // The JWT is good and is kept, but when the token rotated while it was in flight, the schedule belongs to the
    // new token: onToken asked for an exchange now, and the old token's result must not push it back.
    if (this.#isCurrent(token)) {
      this.#failures = 0;
      this.#lastError = undefined;
      const { remaining, resetMs } = exchanged.rateLimit;
      this.#upstreamBlockedUntilMs = remaining === 0 && resetMs !== undefined ? clock.now() + resetMs : undefined;
      this.#dueAtMs = refreshAtMs;
    }
    const current: Current = { held: exchanged.held, tokenFingerprint: token.fingerprint, issuedAtMs, refreshAtMs };
    log.info({ tokenFingerprint: token.fingerprint, result: 'success', expiresAt: iso(exchanged.held.expiresAtMs), nextRefreshAt: iso(refreshAtMs) }, 'exchanged the API token for a new JWT');
    status.setProblem(undefined);
    await this.#persist(current);
  }

  #isCurrent(token: ApiToken): boolean {
    return this.#token?.fingerprint === token.fingerprint;
  }

  #onFailure(error: ExchangeError, token: ApiToken): void {
    const { clock, metrics, log, status, random } = this.#deps;
    metrics.exchanges.inc({ result: error.code });
    if (!this.#isCurrent(token)) {
      // A failure of the token that was just rotated away: counted and logged, but it sets no schedule for the new one.
      log.warn({ tokenFingerprint: token.fingerprint, result: error.code, status: error.status }, `${error.message}; the API token has since been rotated`);
      return;
    }
    this.#failures += 1;
    this.#lastError = error;
    const delay = retryDelay(error, this.#failures, random);
    this.#dueAtMs = clock.now() + delay;
    status.setProblem(error.message);
    const fields = { tokenFingerprint: token.fingerprint, result: error.code, status: error.status, failures: this.#failures, retryAt: iso(this.#dueAtMs) };
    if (isAuthFailure(error)) log.error(fields, `${error.message}; retrying in ${Math.round(delay / 1000)} s or when the token file changes or on SIGHUP`);
    else log.warn(fields, `${error.message}; the JWT held so far stays in use`);
    this.#deps.events?.onFailure?.(error);
  }

  /** Write the JWT and then the state; on failure keep the old file, count it, and retry the write with backoff. */
  async #persist(current: Current): Promise<void> {
    const { store, clock, status, metrics, log } = this.#deps;
    if (this.#pendingWrite !== undefined) this.#timers.clearTimeout(this.#pendingWrite.timer);
    try {
      await store.writeJwt(current.held, clock.now());
    } catch (error) {
      metrics.jwtFileWrites.inc({ result: 'failure' });
      const pending = this.#pendingWrite?.current === current ? this.#pendingWrite : { current, failures: 0, timer: undefined };
      pending.failures += 1;
      const delay = backoffDelay(pending.failures, this.#deps.random);
      log.error({ failures: pending.failures, retryInMs: delay }, `${describe(error)}; the previous JWT file is left intact`);
      status.setProblem(`writing the JWT file failed: ${describe(error)}`);
      pending.timer = this.#shutdown.signal.aborted ? undefined : this.#timers.setTimeout(() => void this.#persist(current), delay);
      this.#pendingWrite = pending;
      return;
    }
    this.#pendingWrite = undefined;
    metrics.jwtFileWrites.inc({ result: 'success' });
    this.#current = current;
    // The state file that names this JWT is written before readiness turns 200: a pod killed right after it became
    // ready must find both on restart, or it would spend an exchange.
    await this.#saveState();
    status.setHeld(current.held);
    metrics.jwtExpiry.set(current.held.expiresAtMs / 1000);
    this.#deps.events?.onWritten?.(current.held);
  }

  async #saveState(): Promise<void> {
    const current = this.#current;
    try {
      await this.#deps.store.writeState({
        tokenFingerprint: current?.tokenFingerprint,
        jwtFingerprint: current === undefined ? undefined : fingerprint(current.held.jwt),
        issuedAtMs: current?.issuedAtMs,
        expiresAtMs: current?.held.expiresAtMs,
        refreshAtMs: current?.refreshAtMs,
        exchanges: this.#exchanges,
      });
    } catch (error) {
      this.#deps.log.error(`${describe(error)}; the rate-limit budget will not survive a restart until it can be written`);
    }
  }

  /** Bring time-dependent gauges up to date (called before each scrape: the window slides between ticks). */
  refreshGauges(): void {
    this.#updateBudgetGauge();
  }

  #updateBudgetGauge(): void {
    const { config, clock, metrics } = this.#deps;
    const token = this.#token;
    metrics.rateLimitBudget.set(token === undefined ? config.rateLimit.max : budget(this.#exchanges, token.fingerprint, config.rateLimit, clock.now()).remaining);
  }
}

function toExchangeError(error: unknown): ExchangeError {
  if (error instanceof ExchangeError) return error;
  return new ExchangeError('network_error', `exchange failed: ${describe(error)}`, { cause: error });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : 'unknown error';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
