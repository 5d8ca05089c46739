import {
  DEFAULTS,
  parseApiUrl,
  parseBoolean,
  parseDuration,
  parseJwtFormat,
  parseListen,
  parseLogLevel,
  parseMode,
  parseRateLimit,
  parseRefreshWindow,
} from './config.ts';

/** Every option of SPEC.md: its flag, its environment variable, its default and what it means, in one table. */
export interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly kind: 'string' | 'boolean';
  readonly default: string | undefined;
  readonly describe: string;
}

export const OPTIONS = [
  { flag: 'api-url', env: 'EK_API_URL', kind: 'string', default: DEFAULTS.apiUrl, describe: 'upstream base URL' },
  { flag: 'token-file', env: 'EK_TOKEN_FILE', kind: 'string', default: DEFAULTS.tokenFile, describe: 'the mounted API token; whitespace trimmed; followed on rotation' },
  { flag: 'jwt-file', env: 'EK_JWT_FILE', kind: 'string', default: DEFAULTS.jwtFile, describe: 'where the JWT is written (a state file sits beside it)' },
  { flag: 'jwt-file-mode', env: 'EK_JWT_FILE_MODE', kind: 'string', default: DEFAULTS.jwtFileMode, describe: 'octal mode of the JWT file' },
  { flag: 'jwt-format', env: 'EK_JWT_FORMAT', kind: 'string', default: DEFAULTS.jwtFormat, describe: 'raw (the JWT alone, no newline) or json' },
  { flag: 'listen', env: 'EK_LISTEN', kind: 'string', default: DEFAULTS.listen, describe: 'token API address (loopback unless --allow-remote-token-access)' },
  { flag: 'allow-remote-token-access', env: 'EK_ALLOW_REMOTE_TOKEN_ACCESS', kind: 'boolean', default: 'false', describe: 'permit a non-loopback --listen' },
  { flag: 'metrics-listen', env: 'EK_METRICS_LISTEN', kind: 'string', default: DEFAULTS.metricsListen, describe: 'metrics and health address, or off' },
  { flag: 'refresh-window', env: 'EK_REFRESH_WINDOW', kind: 'string', default: DEFAULTS.refreshWindow, describe: 'refresh at a random point between these fractions of the JWT lifetime' },
  { flag: 'min-ttl', env: 'EK_MIN_TTL', kind: 'string', default: DEFAULTS.minTtl, describe: 'a JWT with less left is not served, not reused, and fails readiness' },
  { flag: 'rate-limit', env: 'EK_RATE_LIMIT', kind: 'string', default: DEFAULTS.rateLimit, describe: 'most exchanges per API token in any rolling window (N/duration)' },
  { flag: 'timeout', env: 'EK_TIMEOUT', kind: 'string', default: DEFAULTS.timeout, describe: 'whole exchange request deadline' },
  { flag: 'ca-file', env: 'EK_CA_FILE', kind: 'string', default: undefined, describe: 'extra PEM CA bundle for the upstream' },
  { flag: 'on-refresh', env: 'EK_ON_REFRESH', kind: 'string', default: undefined, describe: 'command run (without a shell) after each new JWT is written' },
  { flag: 'log-level', env: 'EK_LOG_LEVEL', kind: 'string', default: DEFAULTS.logLevel, describe: 'fatal, error, warn, info, debug, trace or silent' },
  { flag: 'delete-on-exit', env: 'EK_DELETE_ON_EXIT', kind: 'boolean', default: 'false', describe: 'remove the JWT file on clean shutdown' },
] as const satisfies readonly OptionSpec[];

export type OptionName = (typeof OPTIONS)[number]['flag'];

/** Validators that only look at one value; cross-option rules live in buildConfig. */
export const VALIDATORS = {
  'api-url': parseApiUrl,
  'jwt-file-mode': parseMode,
  'jwt-format': parseJwtFormat,
  listen: parseListen,
  'allow-remote-token-access': parseBoolean,
  'refresh-window': parseRefreshWindow,
  'min-ttl': parseDuration,
  'rate-limit': parseRateLimit,
  timeout: parseDuration,
  'log-level': parseLogLevel,
  'delete-on-exit': parseBoolean,
} as const;
