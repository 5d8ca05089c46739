/**
 * Pure parsers for option values: text in, a typed value or a one-line reason out. No I/O and no package imports,
 * so every command (`check` included) loads them for nothing. Bounds that belong to one option live in its parser;
 * rules across options live in validate.ts.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { looksSecret } from '../core/redact.ts';
import { LOG_LEVELS, type JwtFormat, type ListenAddress, type LogLevel, type RateLimit } from './config.ts';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

const DURATION_HINT = 'use e.g. 500ms, 90s, 5m, 1h, 1m30s or plain seconds';
const NUMBER = String.raw`\d+(?:\.\d+)?`;
/**
 * Go's duration syntax as Go prints it (`1h0m30s`, `1m30s`, `500ms`): units from the largest down, each at most
 * once, so a typo such as `1m30m` fails instead of summing. `m(?!s)` keeps `5ms` from being read as minutes.
 */
const COMPOUND = new RegExp(`^(?:(${NUMBER})h)?(?:(${NUMBER})m(?!s))?(?:(${NUMBER})s)?(?:(${NUMBER})ms)?$`);
const PLAIN_SECONDS = new RegExp(`^${NUMBER}$`);

/** `500ms`, `90s`, `5m`, `1h`, compound `1m30s`, or plain seconds (`30`, `1.5`); in whole milliseconds. */
export function parseDuration(text: string): Parsed<number> {
  const trimmed = text.trim();
  let ms: number;
  if (PLAIN_SECONDS.test(trimmed)) {
    ms = Number(trimmed) * 1000;
  } else {
    const match = trimmed === '' || trimmed.length > 64 ? null : COMPOUND.exec(trimmed);
    if (match === null) return fail(`"${text}" is not a duration (${DURATION_HINT})`);
    const [, h = '0', m = '0', s = '0', milli = '0'] = match;
    ms = Number(h) * HOUR_MS + Number(m) * MINUTE_MS + Number(s) * 1000 + Number(milli);
  }
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? ok(rounded) : fail(`"${text}" is too long a duration`);
}

/** A duration parser with the option's own bounds (inclusive), explained by `rule` when they are not met. */
export function durationWithin(minMs: number, maxMs: number, rule: string): (text: string) => Parsed<number> {
  return (text) => {
    const parsed = parseDuration(text);
    if (!parsed.ok || (parsed.value >= minMs && parsed.value <= maxMs)) return parsed;
    return fail(`"${text.trim()}" ${rule}`);
  };
}

/** Octal file mode, with or without the leading 0: `640`, `0640`, `0o640`. Syntax only; see parseJwtFileMode. */
export function parseMode(text: string): Parsed<number> {
  const match = /^0?o?([0-7]{3,4})$/i.exec(text.trim());
  if (match?.[1] === undefined) return fail(`"${text}" is not an octal file mode (e.g. 0640)`);
  return ok(parseInt(match[1], 8));
}

/**
 * The mode of a file that holds a credential. Refused, each with its reason: bits beyond read and write
 * (execute, setuid, setgid, sticky: `7777` was accepted once), writable by every user (anyone could swap the JWT
 * the app trusts), or unreadable by its owner (`0000`: the sidecar reads the JWT back on restart, and `check` too).
 */
export function parseJwtFileMode(text: string): Parsed<number> {
  const parsed = parseMode(text);
  if (!parsed.ok) return parsed;
  const mode = parsed.value;
  const shown = `0${mode.toString(8).padStart(3, '0')}`;
  if ((mode & ~0o666) !== 0) return fail(`${shown} sets execute, setuid, setgid or sticky bits, which a JWT file never needs (at most 0666, e.g. 0640)`);
  if ((mode & 0o002) !== 0) return fail(`${shown} makes the JWT file writable by every user, who could then replace the JWT the app trusts (e.g. 0640)`);
  if ((mode & 0o400) === 0) return fail(`${shown} denies the owner read access; the sidecar reads the JWT back on restart and \`check\` reads it (e.g. 0640)`);
  return parsed;
}

/**
 * `host:port`, `[v6]:port`, or `:port`. `:port` leaves the host undefined: all interfaces, IPv6 and IPv4 where the
 * kernel has IPv6, else IPv4 (what `server.listen(port)` does); `0.0.0.0:port` and `[::]:port` mean what they say.
 */
export function parseListen(text: string): Parsed<ListenAddress> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text.trim());
  if (match === null) return fail(`"${text}" is not host:port`);
  const host = match[1] ?? (match[2] === '' ? undefined : match[2]);
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return fail(`port ${match[3] ?? ''} is out of range 0-65535`);
  if (host === undefined) return ok({ host, port });
  if (match[1] !== undefined && isIP(host) !== 6) return fail(`"${host}" is not an IPv6 address`);
  if (isIP(host) === 0 && !isHostName(host.toLowerCase())) return fail(`"${host}" is not a host name or IP address`);
  return ok({ host, port });
}

/** parseListen, or `off` (any case): no listener. */
export function parseListenOrOff(text: string): Parsed<ListenAddress | undefined> {
  return text.trim().toLowerCase() === 'off' ? ok(undefined) : parseListen(text);
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** An RFC 1123 host name in lower case (an IPv4 address passes too); the last label is not all digits otherwise. */
function isHostName(name: string): boolean {
  if (name.length > 253 || !name.split('.').every((label) => LABEL.test(label))) return false;
  return isIP(name) === 4 || !/^\d+$/.test(name.slice(name.lastIndexOf('.') + 1));
}

/**
 * `--allowed-hosts`: a comma list of host names for the token listener's Host guard, lower-cased and deduplicated.
 * Names only: the guard ignores the port. No wildcards: each name must be listed, because a pattern would let a
 * whole zone through the guard against DNS rebinding. IPv6 literals are not taken (a Service name is what a broker
 * is reached by).
 */
export function parseHostList(text: string): Parsed<readonly string[]> {
  if (text.trim() === '') return ok([]);
  const names: string[] = [];
  for (const item of text.split(',').map((part) => part.trim().toLowerCase())) {
    if (item === '') return fail(`"${text}" has an empty name (a stray comma?)`);
    if (item.includes('*')) return fail(`"${item}": wildcards are not supported; list each name`);
    if (item.startsWith('[') || isIP(item) === 6) return fail(`"${item}": IPv6 addresses are not supported; give host names`);
    if (item.includes(':')) return fail(`"${item}": give the name without a port`);
    if (!isHostName(item)) return fail(`"${item}" is not a host name`);
    if (!names.includes(item)) names.push(item);
  }
  return ok(names);
}

/** A compact JWT anywhere in the text: its header is base64url JSON, so it starts with `eyJ`. */
const PASTED_JWT = /(?<![\w-])eyJ[\w-]{5,}\.[\w-]{2,}\.[\w-]*/;

/**
 * A file path, made absolute. A credential pasted where its path belongs (a real incident: `EK_TOKEN_FILE=ek_live_…`)
 * is refused without being shown, and so is a URL (it may carry credentials). Only these precise shapes are refused:
 * a dotted file name such as `broker-tls.my-namespace.crt` is a path, though the generic redactor would take it
 * for a JWT.
 */
export function parsePath(text: string): Parsed<string> {
  const value = text.trim();
  if (value === '') return fail('must not be empty');
  if (value.includes('ek_live_')) return fail('looks like an API token, not a path (the value is not shown)');
  if (PASTED_JWT.test(value)) return fail('looks like a JWT, not a path (the value is not shown)');
  // A URL may carry credentials, and errors show paths as given: refuse it unseen too.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return fail('looks like a URL, not a path (the value is not shown)');
  return ok(resolve(value));
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

/** `N/duration`, or a bare `N` per minute; the window is at most 24 h (the longest anything is scheduled ahead). */
export function parseRateLimit(text: string): Parsed<RateLimit> {
  const [countText = '', windowText, ...rest] = text.trim().split('/');
  if (rest.length > 0 || !/^\d+$/.test(countText.trim())) return fail(`"${text}" is not N/duration (e.g. 10/1m)`);
  const max = Number(countText);
  if (max < 1) return fail(`"${text}" must allow at least 1 exchange`);
  if (!Number.isSafeInteger(max)) return fail(`"${text}": ${countText} is too large`);
  if (windowText === undefined) return ok({ max, windowMs: MINUTE_MS });
  const window = parseDuration(windowText.trim() === '' ? 'x' : windowText);
  if (!window.ok) return fail(`"${text}": ${window.error}`);
  if (window.value <= 0) return fail(`"${text}": the window must be longer than 0`);
  if (window.value > 24 * HOUR_MS) return fail(`"${text}": the window must be at most 24h`);
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

/** `true`/`false`/`1`/`0` (any case); empty is false. */
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

/** One of a fixed set of words, exactly as written. */
export function parseChoice<const T extends string>(choices: readonly T[]): (text: string) => Parsed<T> {
  return (text) => {
    const value = choices.find((choice) => choice === text);
    return value === undefined ? fail(`"${text}" is not one of ${choices.join(', ')}`) : ok(value);
  };
}

export const parseJwtFormat: (text: string) => Parsed<JwtFormat> = parseChoice(['raw', 'json']);

/** `on` or `off`. */
export function parseOnOff(text: string): Parsed<boolean> {
  const parsed = parseChoice(['on', 'off'])(text);
  return parsed.ok ? ok(parsed.value === 'on') : parsed;
}

/** A pino level, any case. */
export function parseLogLevel(text: string): Parsed<LogLevel> {
  const level = LOG_LEVELS.find((candidate) => candidate === text.trim().toLowerCase());
  return level === undefined ? fail(`"${text}" is not one of ${LOG_LEVELS.join(', ')}`) : ok(level);
}

/** An Enkryptify workspace id: sent as it is in a JSON body, so only whitespace and control characters are refused. */
export function parseWorkspace(text: string): Parsed<string> {
  const value = text.trim();
  if (value === '') return fail('must not be empty');
  if (looksSecret(value)) return fail('looks like a token, not a workspace id (the value is not shown)');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (value.length > 256 || /[\s\u0000-\u001f\u007f-\u009f]/u.test(value)) return fail(`"${value}" is not a workspace id (no whitespace or control characters, at most 256 characters)`);
  return ok(value);
}
