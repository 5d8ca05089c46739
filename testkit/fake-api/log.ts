// The fake's request log: one entry per request (control requests excepted), never a secret in it, and the
// per-identity counts that tests compare with the upstream's limits.
import { createHash } from 'node:crypto';
import type { FaultName } from './faults.ts';
import { maxInAnyWindow } from './windows.ts';

/** The routes of the fake; 'other' is anything answered 404. */
export const ROUTES = ['exchange', 'oidc-exchange', 'secrets', 'secret', 'echo', 'stream', 'redirect', 'other'] as const;
export type RouteName = (typeof ROUTES)[number];

/**
 * The `Authorization` header as the fake judged it: absent; a known API token (allowed or forbidden); a valid,
 * unexpired JWT this fake issued; or anything else (garbled, unknown, revoked, expired, foreign).
 */
export type CredentialKind = 'none' | 'api-token' | 'jwt' | 'invalid';

export interface LogEntry {
  /** `now()` when the request arrived. */
  readonly atMs: number;
  readonly method: string;
  /** The path as sent (still percent-encoded), without the query. */
  readonly path: string;
  readonly route: RouteName;
  /** What the `Authorization` header held. */
  readonly credential: CredentialKind;
  /**
   * First 8 hex of SHA-256 of the credential presented: the bearer, or on the OIDC exchange the projected token
   * of the body; null without one. Never the credential itself.
   */
  readonly tokenFingerprint: string | null;
  /** OIDC exchange: the service account's `sub`, once its token verified (signature, issuer, audience, times). */
  readonly sub?: string;
  /** OIDC exchange: the body's `workspaceId`, when the body parsed. */
  readonly workspaceId?: string;
  /** The status sent; 0 while unanswered or when no HTTP answer was given (hang, reset, down). */
  readonly status: number;
  /** The injected fault that decided the answer, if any. */
  readonly fault?: FaultName;
  /** A streamed answer whose client went away before its end. */
  readonly aborted?: boolean;
}

export type MutableEntry = { -readonly [K in keyof LogEntry]: LogEntry[K] };

/**
 * Token exchanges per API-token fingerprint and OIDC exchanges per service-account `sub`: requests logged, and the
 * most inside any rolling window of `windowMs` (what the upstream's per-token and per-identity limits count).
 */
export interface LogSummary {
  readonly windowMs: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly maxInWindow: Readonly<Record<string, number>>;
  readonly subCounts: Readonly<Record<string, number>>;
  readonly subMaxInWindow: Readonly<Record<string, number>>;
}

export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 8);
}

export function summarize(log: readonly LogEntry[], windowMs: number): LogSummary {
  if (!(windowMs > 0)) throw new Error('windowMs must be > 0');
  const tokens = new Map<string, number[]>();
  const subs = new Map<string, number[]>();
  for (const entry of log) {
    if (entry.route === 'exchange' && entry.tokenFingerprint !== null) push(tokens, entry.tokenFingerprint, entry.atMs);
    if (entry.route === 'oidc-exchange' && entry.sub !== undefined) push(subs, entry.sub, entry.atMs);
  }
  // Sorted, because a test's hand-moved clock need not only go forward.
  const per = (times: Map<string, number[]>, f: (t: number[]) => number): Record<string, number> =>
    Object.fromEntries([...times].map(([key, t]) => [key, f(t.sort((a, b) => a - b))]));
  return {
    windowMs,
    counts: per(tokens, (t) => t.length),
    maxInWindow: per(tokens, (t) => maxInAnyWindow(t, windowMs)),
    subCounts: per(subs, (t) => t.length),
    subMaxInWindow: per(subs, (t) => maxInAnyWindow(t, windowMs)),
  };
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}
