/**
 * The errors of ek-sidecar: one base class, a few subclasses, each with a stable `code` that tests check and that
 * doubles as a metric label where one is counted. Messages name what failed (the option, the path, the URL and
 * status) and never carry a secret: no API token, no JWT, no file content.
 */
export abstract class EkError extends Error {
  abstract readonly code: string;

  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
  }
}

/** A bad flag or variable: printed as one line, exit 2. `option` is the flag's name without dashes. */
export class ConfigError extends EkError {
  readonly code = 'bad_config';
  readonly option: string;

  constructor(option: string, message: string) {
    super(`--${option}: ${message}`);
    this.option = option;
  }
}

export type DiskErrorCode =
  /** The JWT directory cannot be used at all (missing, not a directory, not writable). */
  | 'unusable_directory'
  /** A write did not complete: ENOSPC, EROFS, a short write, a failed fsync or rename. */
  | 'write_failed'
  /** A symbolic link (or another non-regular file) sits where the sidecar writes: never followed. */
  | 'refused_link'
  /** The file is missing, unreadable or does not hold what it should. */
  | 'unreadable'
  /** Another process holds the state file's lock beyond the wait. */
  | 'locked';

/** The JWT file, the state file or their directory. `path` is named in the message; contents never are. */
export class DiskError extends EkError {
  readonly code: DiskErrorCode;
  readonly path: string;

  constructor(code: DiskErrorCode, path: string, message: string, cause?: unknown) {
    super(`${path}: ${message}`, cause);
    this.code = code;
    this.path = path;
  }
}

/** The failure results of an exchange; with `success` they are the `result` label of `exchanges_total`. */
export const EXCHANGE_FAILURES = ['unauthorized', 'forbidden', 'rate_limited', 'server_error', 'network_error', 'invalid_response'] as const;
export type ExchangeFailure = (typeof EXCHANGE_FAILURES)[number];

/** What an ExchangeError carries besides its code and message. */
export interface ExchangeErrorDetails {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly rateLimitRemaining?: number;
  readonly fromBroker?: boolean;
  readonly cause?: unknown;
}

/** A failed exchange: `message` names the URL and status but never a secret. */
export class ExchangeError extends EkError {
  readonly code: ExchangeFailure;
  /** Delay the upstream asked for (Retry-After, or RateLimit-Reset when nothing is left), in ms, already clamped. */
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  /** The upstream's RateLimit-Remaining on this answer, when it sent one. */
  readonly rateLimitRemaining: number | undefined;
  /** The answer came from an ek-sidecar broker's drop-in (it marks its own refusals), not from Enkryptify. */
  readonly fromBroker: boolean;

  constructor(code: ExchangeFailure, message: string, details: ExchangeErrorDetails = {}) {
    super(message, details.cause);
    this.code = code;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.rateLimitRemaining = details.rateLimitRemaining;
    this.fromBroker = details.fromBroker ?? false;
  }
}

export type CredentialProblem = 'missing' | 'unreadable' | 'empty' | 'malformed' | 'expired';

/** The API token or the projected service-account token cannot be used; the last good one stays in use. */
export class CredentialError extends EkError {
  readonly code: CredentialProblem;

  constructor(code: CredentialProblem, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * An error in words for a log line or a readiness reason: its system code (ENOSPC, ECONNREFUSED…) and message.
 * Node's file and socket errors carry paths and addresses, never file contents or request headers.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  if (error instanceof EkError) return error.message;
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const cause = error.cause instanceof Error && error.cause.message !== error.message ? ` (${error.cause.message})` : '';
  if (code === undefined || error.message.includes(code)) return `${error.message}${cause}`;
  return `${code}: ${error.message}${cause}`;
}

/** The system error code of a Node error (`ENOENT`…), if any. */
export function systemCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}
