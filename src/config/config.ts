import ms from 'ms';
import { isIP } from 'node:net';

export type JwtFormat = 'raw' | 'json';
export type AuthMode = 'api-token' | 'oidc';
export type ProxyMode = 'verify' | 'inject' | 'off';
export type LogFormat = 'json' | 'text';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface RateLimit {
  readonly max: number;
  readonly windowMs: number;
}

/** The validated, frozen configuration the core trusts. One comment per field says what it means. */
export interface Config {
  /** Upstream base URL, without a trailing slash. */
  readonly apiUrl: string;
  /** The mounted API token file; undefined when the token comes from EK_API_TOKEN (local development). */
  readonly tokenFile: string | undefined;
  /** The API token itself, only when tokenFile is undefined. */
  readonly apiTokenFromEnv: string | undefined;
  /** Where the JWT is written; its state file sits beside it. */
  readonly jwtFile: string;
  readonly jwtFileMode: number;
  readonly jwtFormat: JwtFormat;
  /** How the sidecar authenticates upstream: the API token of tokenFile, or the pod's projected token (oidc). */
  readonly auth: AuthMode;
  /** With auth oidc: the projected service-account token the kubelet rotates. */
  readonly oidcTokenFile: string;
  /** With auth oidc: the Enkryptify workspace id sent with the projected token (required there). */
  readonly workspace: string | undefined;
  /** Token API; undefined when `off` (the file is then the only way to read the JWT). */
  readonly listen: ListenAddress | undefined;
  readonly allowRemoteTokenAccess: boolean;
  /** Extra Host names the token listener accepts (a broker's Service names), lower case. */
  readonly allowedHosts: readonly string[];
  /** Serve the token listener over TLS with these PEM files (re-read when they change). */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** The API proxy on the token listener. */
  readonly proxy: ProxyMode;
  /** Metrics and health; undefined when `off`. */
  readonly metricsListen: ListenAddress | undefined;
  /** Fractions of the JWT lifetime between which the refresh point is drawn. */
  readonly refreshWindow: readonly [number, number];
  readonly minTtlMs: number;
  readonly rateLimit: RateLimit;
  /** Whole exchange request deadline. */
  readonly timeoutMs: number;
  readonly caFile: string | undefined;
  /** Its content, read once at start. */
  readonly caPem: string | undefined;
  /** argv of the command run after each new JWT is written. */
  readonly onRefresh: readonly string[] | undefined;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Whether /metrics carries prom-client's Node.js runtime series besides ek-sidecar's own. */
  readonly metricsRuntime: boolean;
  readonly deleteOnExit: boolean;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULTS = {
  apiUrl: 'https://api.enkryptify.com',
  tokenFile: '/var/run/secrets/enkryptify/token',
  jwtFile: '/var/run/enkryptify/jwt',
  jwtFileMode: '0640',
  jwtFormat: 'raw',
  listen: '127.0.0.1:9731',
  metricsListen: '0.0.0.0:9732',
  refreshWindow: '0.6,0.8',
  minTtl: '60s',
  rateLimit: '10/1m',
  timeout: '10s',
  logLevel: 'info',
} as const;

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** `500ms`, `90s`, `5m`, `1h`, or plain seconds (`30`, `1.5`). */
export function parseDuration(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return ok(Math.round(Number(trimmed) * 1000));
  // ms() also reads "2 days" and negative values; only accept a number with a unit.
  if (!/^\d+(\.\d+)?\s*[a-z]+$/i.test(trimmed)) return fail(`"${text}" is not a duration (use e.g. 500ms, 90s, 5m, 1h or plain seconds)`);
  const value = ms(trimmed as ms.StringValue) as number | undefined;
  if (value === undefined || !Number.isFinite(value)) return fail(`"${text}" is not a duration (use e.g. 500ms, 90s, 5m, 1h or plain seconds)`);
  return ok(value);
}

/** Octal file mode, with or without the leading 0: `640`, `0640`, `0o640`. */
export function parseMode(text: string): Parsed<number> {
  const match = /^0?o?([0-7]{3,4})$/i.exec(text.trim());
  if (match?.[1] === undefined) return fail(`"${text}" is not an octal file mode (e.g. 0640)`);
  const mode = parseInt(match[1], 8);
  if (mode > 0o7777) return fail(`"${text}" is out of range`);
  return ok(mode);
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export function parseListen(text: string): Parsed<ListenAddress> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text.trim());
  if (match === null) return fail(`"${text}" is not host:port`);
  const host = match[1] ?? (match[2] === '' || match[2] === undefined ? '0.0.0.0' : match[2]);
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return fail(`port ${match[3] ?? ''} is out of range 0-65535`);
  if (match[1] !== undefined && isIP(host) !== 6) return fail(`"${host}" is not an IPv6 address`);
  if (host !== 'localhost' && isIP(host) === 0 && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host)) return fail(`"${host}" is not a host name or IP address`);
  return ok({ host, port });
}

/** True for addresses that only this pod can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return mapped?.[1] !== undefined && mapped[1].startsWith('127.');
}

/** `a,b` with 0 < a ≤ b < 1. */
export function parseRefreshWindow(text: string): Parsed<readonly [number, number]> {
  const parts = text.split(',').map((part) => part.trim());
  const numeric = /^\d*\.?\d+$/;
  if (parts.length !== 2 || !parts.every((part) => numeric.test(part))) return fail(`"${text}" is not two fractions a,b`);
  const a = Number(parts[0]);
  const b = Number(parts[1]);
  if (!(a > 0 && a <= b && b < 1)) return fail(`"${text}" must satisfy 0 < a <= b < 1`);
  return ok([a, b]);
}

/** `N/duration`, or a bare `N` per minute. */
export function parseRateLimit(text: string): Parsed<RateLimit> {
  const [countText = '', windowText, ...rest] = text.trim().split('/');
  if (rest.length > 0 || !/^\d+$/.test(countText.trim())) return fail(`"${text}" is not N/duration (e.g. 10/1m)`);
  const max = Number(countText);
  if (max < 1) return fail(`"${text}" must allow at least 1 exchange`);
  if (windowText === undefined) return ok({ max, windowMs: 60_000 });
  const window = parseDuration(windowText.trim() === '' ? 'x' : windowText);
  if (!window.ok) return fail(`"${text}": ${window.error}`);
  if (window.value <= 0) return fail(`"${text}": the window must be longer than 0`);
  return ok({ max, windowMs: window.value });
}

/** An http(s) base URL; the trailing slash is dropped. */
export function parseApiUrl(text: string): Parsed<string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`"${text}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(`"${text}" must be http or https`);
  if (url.username !== '' || url.password !== '') return fail('credentials in the URL are not allowed');
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(text)) return fail('the URL must not have a query or fragment');
  return ok(`${url.origin}${url.pathname}`.replace(/\/+$/, ''));
}

export function parseBoolean(text: string): Parsed<boolean> {
  switch (text.trim().toLowerCase()) {
    case 'true':
    case '1':
      return ok(true);
    case 'false':
    case '0':
    case '':
      return ok(false);
    default:
      return fail(`"${text}" is not a boolean (true, false, 1 or 0)`);
  }
}

export function parseJwtFormat(text: string): Parsed<JwtFormat> {
  return text === 'raw' || text === 'json' ? ok(text) : fail(`"${text}" is not one of raw, json`);
}

export function parseLogLevel(text: string): Parsed<LogLevel> {
  const level = LOG_LEVELS.find((candidate) => candidate === text.trim().toLowerCase());
  return level === undefined ? fail(`"${text}" is not one of ${LOG_LEVELS.join(', ')}`) : ok(level);
}
