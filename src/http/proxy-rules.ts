// The API proxy's decisions (SPEC.md "Token API" → "The API proxy"), as pure functions of what a request carries:
// whether it is the proxy's at all, whether it may be forwarded, and how it is counted.
import type { ProxyMode } from '../config/config.ts';
import { pathOf } from './reply.ts';

/** Request bodies larger than this are refused with 413 (the token API's own routes take 64 KiB). */
export const MAX_PROXY_BODY_BYTES = 1024 * 1024;

const API_TOKEN_PREFIX = 'ek_live_';

export type ProxyAccess = 'forward' | 'no-credential' | 'wrong-credential' | 'remote-peer' | 'off';

export interface CredentialChecks {
  /** Constant-time: is this the API token the sidecar exchanges? Always false with workload identity. */
  isApiToken(presented: string): boolean;
  /** Is this a JWT the sidecar obtained and that has not expired: the current one, or an earlier one still valid? */
  isIssuedJwt(presented: string): boolean;
}

/**
 * Whether a request may be forwarded, from the mode, the Bearer credential presented (undefined when none) and
 * whether the peer is on a loopback address:
 * 1. `off`: there is no proxy (404).
 * 2. `inject`: no credential is needed and any is dropped, so the only protection is who can connect: a peer on a
 *    loopback address, whatever the listener (403 otherwise), so that a broker never injects its JWT for strangers.
 * 3. `verify`: the caller proves it could obtain the JWT itself: the API token, or a JWT this sidecar obtained that
 *    has not expired, since an SDK keeps the JWT it was given until shortly before its expiry, after the sidecar has
 *    refreshed (401 otherwise). Any peer may try: a broker's clients prove themselves like this. A refused request
 *    is never forwarded, so the sidecar relays no credential but its own.
 */
export function decideProxyAccess(mode: ProxyMode, presented: string | undefined, checks: CredentialChecks, peerIsLoopback: boolean): ProxyAccess {
  if (mode === 'off') return 'off';
  if (mode === 'inject') return peerIsLoopback ? 'forward' : 'remote-peer';
  if (presented === undefined) return 'no-credential';
  // Each check hashes what it is given: compare with the one kind the credential can be (an API token always
  // starts `ek_live_`, a JWT never does).
  const valid = presented.startsWith(API_TOKEN_PREFIX) ? checks.isApiToken(presented) : checks.isIssuedJwt(presented);
  return valid ? 'forward' : 'wrong-credential';
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * Whether a request-target is the proxy's: an origin-form path under `/v1/` (an absolute-form target names
 * another host and is not) without a dot segment, raw or percent-encoded, nor a backslash: once the upstream
 * normalised `/v1/../x` or `/v1/..%2fx`, the request would no longer be under `/v1/`.
 */
export function isProxiedTarget(url: string | undefined): boolean {
  if (url === undefined || !url.startsWith('/v1/')) return false;
  const path = pathOf(url);
  // Most targets (the SDK's reads) have neither a dot nor an escape: skip the split on the hot path.
  if (!/[.%\\]/.test(path)) return true;
  if (path.includes('\\')) return false;
  // A segment is split at %2f and %5c too: an upstream that decodes them as separators would see `..` in `..%2fx`.
  return path.split('/').every((segment) => !segment.split(/%2f|%5c/i).some((part) => DOT_SEGMENT.test(part)));
}

const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The `method` label of `proxy_requests_total`: a fixed set, `other` beyond it, so a client cannot mint series. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && METHODS.has(method) ? method : 'other';
}

/**
 * The `code` label when no status could be sent: the client left before the answer began (nginx's 499, "client
 * closed request"), so that every proxied request is still counted once.
 */
export const CLIENT_CLOSED = 499;
