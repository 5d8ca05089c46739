// The fake Enkryptify API's library surface: its options and what a started fake offers a test.
import type { TokenStatus } from './access-tokens.ts';
import type { Fault, FaultRoute } from './faults.ts';
import type { LogEntry, LogSummary } from './log.ts';
import type { OidcBinding, OidcTrust } from './oidc.ts';
import type { SecretRef, SecretSeed } from './secrets.ts';

export interface FakeApiOptions {
  /** Loopback only (127.0.0.0/8, ::1, localhost); anything else throws. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** Known API tokens; any other token is 401 unless `acceptAnyToken` (then any well-formed `ek_live_` one is ok). */
  readonly tokens?: Readonly<Record<string, TokenStatus>> | ReadonlyMap<string, TokenStatus>;
  readonly acceptAnyToken?: boolean;
  /** JWT lifetime and `expiresIn`, in seconds; fractions allowed for scaled-down time. Default 900. */
  readonly lifetimeSec?: number;
  /** Exchanges per API token, and per service account, per rolling window. Default 10. */
  readonly limit?: number;
  /** Requests per client IP per rolling window, every route and credential together. Default 200. */
  readonly ipLimit?: number;
  /** Default 60 000. */
  readonly windowMs?: number;
  /** How a rate-limit 429 writes `Retry-After`. Default 'seconds'. */
  readonly retryAfterFormat?: 'seconds' | 'http-date';
  /** Milliseconds since the epoch. Default Date.now. */
  readonly now?: () => number;
  /** Serve the `/__control/…` API (for a fake API in another process). Default false. */
  readonly control?: boolean;
  /** The trusted service-account issuer of the OIDC exchange; without it every OIDC exchange is 401. */
  readonly oidc?: OidcTrust;
  /** An allow-list of (sub, workspaceId); absent: any verified service account may use any workspace. */
  readonly oidcBindings?: readonly OidcBinding[];
  /** The secrets the reads serve: workspace → project → environment → name → value. */
  readonly secrets?: SecretSeed;
  /** Characters of filler in a `pad` claim, for JWTs larger than a page (a full volume's short writes). Default none. */
  readonly jwtPadding?: number;
}

export interface FakeApi {
  readonly url: string;
  readonly port: number;
  /** The HS256 key of the issued JWTs, so tests can verify them. */
  readonly jwtKey: Uint8Array;
  /** Every request received (control requests excepted), oldest first. */
  readonly log: readonly LogEntry[];
  /**
   * One-shot faults, consumed one per request of their route ahead of its mode; `count` defaults to 1, the route to
   * the fault's own, else 'exchange'.
   */
  enqueue(fault: Fault, count?: number | { readonly count?: number; readonly route?: FaultRoute }): void;
  /**
   * A fault for every request of its route; 'down' stops listening, any other mode listens again. 'ok' clears the
   * mode of `options.route`, or of every route without one.
   */
  setMode(fault: Fault | 'ok', options?: { readonly route?: FaultRoute }): Promise<void>;
  /** Stop listening (connections refused) and drop open connections; with `ms`, come back after that long. */
  down(ms?: number): Promise<void>;
  /** Listen again, on the same port. */
  up(): Promise<void>;
  revoke(token: string): void;
  allow(token: string): void;
  forbid(token: string): void;
  /** Adds (sub, workspaceId) to the OIDC allow-list, creating the list if there was none. */
  bind(sub: string, workspaceId: string): void;
  unbind(sub: string, workspaceId: string): void;
  /** Sets a secret's value in one environment; `undefined` deletes it there. */
  setSecret(ref: SecretRef, value: string | undefined): void;
  /** Token exchanges (POST /v1/auth/exchange) with this API token. */
  countFor(token: string): number;
  /** Most token exchanges with this API token inside any rolling window of `windowMs` (default: the server's). */
  maxInAnyWindow(token: string, windowMs?: number): number;
  /** OIDC exchanges whose token verified as this service account (`system:serviceaccount:<ns>:<sa>`). */
  countForSub(sub: string): number;
  maxInAnyWindowForSub(sub: string, windowMs?: number): number;
  summary(windowMs?: number): LogSummary;
  /** Every JWT sent in a body, oldest first. */
  issued(): readonly string[];
  /** Clears the log, the windows, the issued list, the queues and the modes; restores tokens, bindings and secrets. */
  reset(): void;
  /** Stops the server and destroys every socket, hanging ones included. */
  close(): Promise<void>;
}
