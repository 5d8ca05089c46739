import { ExchangeError, type ExchangeErrorDetails, type ExchangeFailure } from '../core/errors.ts';
import { redact } from '../core/redact.ts';
import { expiryFromClaims, isThreePartJwt } from './jwt-claims.ts';

/** What the interpreting half needs of a response; the sending half fills it in. */
export interface RawResponse {
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** A JWT as the upstream issued it; `expiresAtMs` is the earlier of `exp` and receipt + `expiresIn`, clamped. */
export interface IssuedJwt {
  readonly jwt: string;
  readonly tokenType: string;
  readonly expiresAtMs: number;
}

/** A validated exchange: the JWT, what the upstream's budget said, and any number that had to be clamped. */
export interface Exchanged {
  readonly issued: IssuedJwt;
  readonly rateLimit: UpstreamRateLimit;
  /** Upstream numbers out of their sane range, in words (to be logged): the answer was used with them clamped. */
  readonly anomalies: readonly string[];
}

export interface UpstreamRateLimit {
  readonly remaining: number | undefined;
  /** When the upstream window frees a slot, in ms from the response, clamped to MAX_WAIT_MS. */
  readonly resetMs: number | undefined;
}

export const MAX_BODY_BYTES = 64 * 1024;
/**
 * The header an ek-sidecar broker's drop-in puts on its own refusals of a credential (`Ek-Sidecar-Broker: 1`): a
 * chained sidecar then knows the 401 comes from a broker that may not have read a rotated token yet, not from
 * Enkryptify (see BROKER_AUTH_RETRIES in refresh-policy.ts). Enkryptify never sends it.
 */
export const BROKER_HEADER = 'ek-sidecar-broker';
/** No JWT is planned around for longer than this, whatever `expiresIn` or `exp` claim: nothing schedules further ahead. */
export const MAX_LIFETIME_MS = 24 * 3_600_000;
/** Retry-After and RateLimit-Reset beyond this are taken as this: an absurd value must not park the daemon. */
export const MAX_WAIT_MS = 15 * 60_000;

/** Interpret an exchange response strictly; throws ExchangeError on anything but a usable JWT. */
export function interpretExchangeResponse(response: RawResponse, nowMs: number, minTtlMs: number): Exchanged {
  const { status, url } = response;
  const anomalies: string[] = [];
  const rateLimit = readRateLimit(response.headers, anomalies);
  if (status === 200) return { issued: validateBody(response, nowMs, minTtlMs, anomalies), rateLimit, anomalies };

  const asked = parseRetryAfter(header(response.headers, 'retry-after'), nowMs);
  const retryAfterMs = asked === undefined ? (rateLimit.remaining === 0 ? rateLimit.resetMs : undefined) : clampWait(asked, 'Retry-After', anomalies);
  const upstream = upstreamMessage(response.body);
  const noted = anomalies.length === 0 ? '' : ` [${anomalies.join('; ')}]`;
  const what = `${url} answered ${status}${upstream === undefined ? '' : ` (${upstream})`}${noted}`;
  const fromBroker = (status === 401 || status === 403) && header(response.headers, BROKER_HEADER)?.trim() === '1';
  const details = {
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(rateLimit.remaining === undefined ? {} : { rateLimitRemaining: rateLimit.remaining }),
    ...(fromBroker ? { fromBroker } : {}),
  };
  if (status === 401) return fail('unauthorized', `${what}: the credential is invalid, expired or revoked${fromBroker ? ' (refused by an ek-sidecar broker)' : ''}`, details);
  if (status === 403) return fail('forbidden', `${what}: the credential lacks permission to exchange`, details);
  if (status === 429) return fail('rate_limited', `${what}: rate limited upstream`, details);
  if (status >= 500) return fail('server_error', what, details);
  if (status >= 300 && status < 400) return fail('invalid_response', `${what}: redirects are not followed`, details);
  return fail('invalid_response', `${what}: unexpected status`, details);
}

function validateBody(response: RawResponse, nowMs: number, minTtlMs: number, anomalies: string[]): IssuedJwt {
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

  // Trust the earlier of the claim and the stated lifetime, and plan around at most MAX_LIFETIME_MS of either.
  const claimed = expiryFromClaims(accessToken);
  const stated = nowMs + Math.min(expiresIn * 1000, MAX_LIFETIME_MS);
  if (expiresIn * 1000 > MAX_LIFETIME_MS) anomalies.push(`expiresIn ${String(expiresIn)} s is beyond 24 h; planned as 24 h`);
  let expiresAtMs = claimed === undefined ? stated : Math.min(claimed, stated);
  if (expiresAtMs - nowMs > MAX_LIFETIME_MS) {
    anomalies.push('the JWT\'s exp is more than 24 h ahead; planned as 24 h');
    expiresAtMs = nowMs + MAX_LIFETIME_MS;
  }
  if (expiresAtMs <= nowMs) return invalid('a JWT that is already expired');
  if (expiresAtMs - nowMs <= minTtlMs) {
    return invalid(`a JWT whose whole lifetime (${Math.round((expiresAtMs - nowMs) / 1000)}s) is not over --min-ttl (${Math.round(minTtlMs / 1000)}s): a configuration mismatch, lower --min-ttl`);
  }
  return { jwt: accessToken, tokenType, expiresAtMs };
}

function fail(code: ExchangeFailure, message: string, details: ExchangeErrorDetails): never {
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
  if (/^\d{1,15}$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

function readRateLimit(headers: RawResponse['headers'], anomalies: string[]): UpstreamRateLimit {
  const number = (name: string): number | undefined => {
    const value = header(headers, name);
    return value !== undefined && /^\s*\d{1,15}\s*$/.test(value) ? Number(value) : undefined;
  };
  const reset = number('ratelimit-reset');
  return { remaining: number('ratelimit-remaining'), resetMs: reset === undefined ? undefined : clampWait(reset * 1000, 'RateLimit-Reset', anomalies) };
}

/** A wait the upstream asked for, at most MAX_WAIT_MS; a longer one is noted as an anomaly. */
function clampWait(ms: number, what: string, anomalies: string[]): number {
  if (ms <= MAX_WAIT_MS) return ms;
  anomalies.push(`${what} of ${String(Math.round(ms / 1000))} s is beyond ${String(MAX_WAIT_MS / 60_000)} min; waiting ${String(MAX_WAIT_MS / 60_000)} min at most`);
  return MAX_WAIT_MS;
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
