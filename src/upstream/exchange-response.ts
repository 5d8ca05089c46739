import { ExchangeError, type ExchangeFailure } from '../core/errors.ts';
import { redact } from '../core/redact.ts';
import type { HeldJwt } from '../refresh/served-jwt.ts';
import { expiryFromClaims, isThreePartJwt } from './jwt-claims.ts';

/** What the interpreting half needs of a response; the sending half fills it in. */
export interface RawResponse {
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** A validated exchange: the JWT plus when it was issued (for the refresh window) and what upstream's budget said. */
export interface Exchanged {
  readonly held: HeldJwt;
  readonly issuedAtMs: number;
  readonly rateLimit: UpstreamRateLimit;
}

export interface UpstreamRateLimit {
  readonly remaining: number | undefined;
  /** When the upstream window frees a slot, in ms from the response. */
  readonly resetMs: number | undefined;
}

export const MAX_BODY_BYTES = 64 * 1024;

/** Interpret an exchange response strictly; throws ExchangeError on anything but a usable JWT. */
export function interpretExchangeResponse(response: RawResponse, nowMs: number, minTtlMs: number): Exchanged {
  const { status, url } = response;
  const rateLimit = readRateLimit(response.headers);
  if (status === 200) return { held: validateBody(response, nowMs, minTtlMs), issuedAtMs: nowMs, rateLimit };

  const upstream = upstreamMessage(response.body);
  const what = `${url} answered ${status}${upstream === undefined ? '' : ` (${upstream})`}`;
  const retryAfterMs = parseRetryAfter(header(response.headers, 'retry-after'), nowMs) ?? (rateLimit.remaining === 0 ? rateLimit.resetMs : undefined);
  const details = retryAfterMs === undefined ? { status } : { status, retryAfterMs };
  if (status === 401) return fail('unauthorized', `${what}: the API token is invalid, expired or revoked`, details);
  if (status === 403) return fail('forbidden', `${what}: the API token lacks permission to exchange`, details);
  if (status === 429) return fail('rate_limited', `${what}: rate limited upstream`, details);
  if (status >= 500) return fail('server_error', what, details);
  if (status >= 300 && status < 400) return fail('invalid_response', `${what}: redirects are not followed`, details);
  return fail('invalid_response', `${what}: unexpected status`, details);
}

function validateBody(response: RawResponse, nowMs: number, minTtlMs: number): HeldJwt {
  const invalid = (why: string): never => fail('invalid_response', `${response.url} answered 200 with ${why}`, { status: 200 });
  const contentType = header(response.headers, 'content-type');
  if (contentType !== undefined && !/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(contentType)) invalid(`content-type ${JSON.stringify(contentType.slice(0, 80))}, not JSON`);
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    return invalid('a body that is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('a body that is not a JSON object');
  const keys = Object.keys(body).sort().join(',');
  if (keys !== 'accessToken,expiresIn,tokenType') return invalid(`properties [${Object.keys(body).map((key) => key.slice(0, 40)).join(', ')}], expected exactly accessToken, expiresIn, tokenType`);
  const { accessToken, expiresIn, tokenType } = body as Record<string, unknown>;
  if (typeof accessToken !== 'string' || !isThreePartJwt(accessToken)) return invalid('an accessToken that is not a three-part JWT');
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') return invalid('a tokenType that is not Bearer');
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) return invalid('an expiresIn that is not a positive finite number');

  // Trust the earlier of the claim and the stated lifetime.
  const claimed = expiryFromClaims(accessToken);
  const stated = nowMs + expiresIn * 1000;
  const expiresAtMs = claimed === undefined ? stated : Math.min(claimed, stated);
  if (expiresAtMs <= nowMs) return invalid('a JWT that is already expired');
  if (expiresAtMs - nowMs <= minTtlMs) {
    return invalid(`a JWT whose whole lifetime (${Math.round((expiresAtMs - nowMs) / 1000)}s) is not over --min-ttl (${Math.round(minTtlMs / 1000)}s): a configuration mismatch, lower --min-ttl`);
  }
  return { jwt: accessToken, tokenType, expiresAtMs };
}

function fail(code: ExchangeFailure, message: string, details: { status?: number; retryAfterMs?: number }): never {
  throw new ExchangeError(code, message, details);
}

function header(headers: RawResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Retry-After in delta-seconds or as an HTTP-date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

function readRateLimit(headers: RawResponse['headers']): UpstreamRateLimit {
  const number = (name: string): number | undefined => {
    const value = header(headers, name);
    return value !== undefined && /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
  };
  const reset = number('ratelimit-reset');
  return { remaining: number('ratelimit-remaining'), resetMs: reset === undefined ? undefined : reset * 1000 };
}

/** The upstream `message`, shortened and with anything token- or JWT-shaped blanked, so it is safe to log. */
function upstreamMessage(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'string') {
      return redact(parsed.message).slice(0, 200);
    }
  } catch {
    // Not JSON: the status says enough.
  }
  return undefined;
}
