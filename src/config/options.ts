import { HOUR_MS, MINUTE_MS, durationWithin, parseApiUrl, parseBoolean, parseChoice, parseHostList, parseJwtFileMode, parseJwtFormat,
  parseListenOrOff, parseLogLevel, parseOnOff, parsePath, parseRateLimit, parseRefreshWindow, parseWorkspace, type Parsed } from './values.ts';

export const COMMANDS = ['run', 'once', 'check'] as const;
export type Command = (typeof COMMANDS)[number];

/**
 * One option, defined once: yargs' flags and help, the environment variable, the default, the parser (with the
 * option's own bounds) and the commands that use it all come from here. Rules across options are in validate.ts.
 */
export interface OptionSpec<T> {
  readonly env: `EK_${string}`;
  /** How yargs reads the flag; `path` is a string that errors may show (parsePath refused credential shapes). */
  readonly kind: 'string' | 'boolean' | 'path';
  /** The default as text, parsed like a given value and shown in --help; undefined: none. */
  readonly default: string | undefined;
  /** Text to value. A parser that needs a package is imported on demand, so a command that never uses it never loads it. */
  readonly parse: (text: string) => Parsed<T> | Promise<Parsed<T>>;
  readonly describe: string;
  /** The commands that read this option: the others neither offer the flag nor look at the variable. */
  readonly commands: readonly Command[];
}

const RUN = ['run'] as const;
const EXCHANGING = ['run', 'once'] as const;
const ALL = COMMANDS;

const parseOnRefresh = async (text: string): Promise<Parsed<readonly string[]>> => (await import('./hook-command.ts')).parseHookCommand(text);

/** Every option of SPEC.md, in the order --help shows them. */
export const OPTIONS = {
  'api-url': { env: 'EK_API_URL', kind: 'string', default: 'https://api.enkryptify.com', parse: parseApiUrl, commands: EXCHANGING,
    describe: 'upstream base URL' },
  auth: { env: 'EK_AUTH', kind: 'string', default: 'api-token', parse: parseChoice(['api-token', 'oidc']), commands: EXCHANGING,
    describe: 'api-token: exchange the token of --token-file; oidc: the pod\'s projected service-account token (workload identity)' },
  'token-file': { env: 'EK_TOKEN_FILE', kind: 'path', default: '/var/run/secrets/enkryptify/token', parse: parsePath, commands: EXCHANGING,
    describe: 'with --auth api-token: the mounted API token; whitespace trimmed; followed on rotation' },
  'oidc-token-file': { env: 'EK_OIDC_TOKEN_FILE', kind: 'path', default: '/var/run/secrets/tokens/enkryptify', parse: parsePath, commands: EXCHANGING,
    describe: 'with --auth oidc: the projected service-account token (a JWT the kubelet rotates)' },
  workspace: { env: 'EK_WORKSPACE', kind: 'string', default: undefined, parse: parseWorkspace, commands: EXCHANGING,
    describe: 'with --auth oidc (required there): the Enkryptify workspace id' },
  'jwt-file': { env: 'EK_JWT_FILE', kind: 'path', default: '/var/run/enkryptify/jwt', parse: parsePath, commands: ALL,
    describe: 'where the JWT is written (a state file sits beside it)' },
  'jwt-file-mode': { env: 'EK_JWT_FILE_MODE', kind: 'string', default: '0640', parse: parseJwtFileMode, commands: EXCHANGING,
    describe: 'octal mode of the JWT file (at most 0666, readable by its owner, not world-writable)' },
  'jwt-format': { env: 'EK_JWT_FORMAT', kind: 'string', default: 'raw', parse: parseJwtFormat, commands: EXCHANGING,
    describe: 'raw (the JWT alone, no newline) or json' },
  listen: { env: 'EK_LISTEN', kind: 'string', default: '127.0.0.1:9731', parse: parseListenOrOff, commands: RUN,
    describe: 'token API address, or off (loopback unless --allow-remote-token-access)' },
  'allow-remote-token-access': { env: 'EK_ALLOW_REMOTE_TOKEN_ACCESS', kind: 'boolean', default: 'false', parse: parseBoolean, commands: RUN,
    describe: 'permit a non-loopback --listen' },
  'allowed-hosts': { env: 'EK_ALLOWED_HOSTS', kind: 'string', default: undefined, parse: parseHostList, commands: RUN,
    describe: 'extra Host names the token listener accepts (comma list, no ports or wildcards), for a broker reached by its Service name' },
  'tls-cert-file': { env: 'EK_TLS_CERT_FILE', kind: 'path', default: undefined, parse: parsePath, commands: RUN,
    describe: 'serve the token listener over TLS: PEM certificate (chain), with --tls-key-file; re-read when it changes' },
  'tls-key-file': { env: 'EK_TLS_KEY_FILE', kind: 'path', default: undefined, parse: parsePath, commands: RUN,
    describe: 'PEM private key (unencrypted) of --tls-cert-file' },
  proxy: { env: 'EK_PROXY', kind: 'string', default: 'verify', parse: parseChoice(['verify', 'inject', 'off']), commands: RUN,
    describe: 'the API proxy on the token listener: verify (callers present a credential), inject (none needed) or off' },
  'metrics-listen': { env: 'EK_METRICS_LISTEN', kind: 'string', default: ':9732', parse: parseListenOrOff, commands: RUN,
    describe: 'metrics and health address, or off (:port is every interface, IPv6 and IPv4)' },
  'metrics-runtime': { env: 'EK_METRICS_RUNTIME', kind: 'string', default: 'on', parse: parseOnOff, commands: RUN,
    describe: 'on or off: whether /metrics carries the Node.js runtime series' },
  // SPEC says 0.6,0.8: that costs E[1/f] = 1.44 exchanges per JWT lifetime; 0.7,0.85 costs 1.29 and still leaves
  // 75 s before --min-ttl of a 900 s JWT for retries (refresh-policy tests: the margin table).
  'refresh-window': { env: 'EK_REFRESH_WINDOW', kind: 'string', default: '0.7,0.85', parse: parseRefreshWindow, commands: RUN,
    describe: 'refresh at a random point between these fractions of the JWT lifetime' },
  'min-ttl': { env: 'EK_MIN_TTL', kind: 'string', default: '60s', parse: durationWithin(0, 24 * HOUR_MS, 'must be at most 24h'), commands: ALL,
    describe: 'a JWT with less left is not served, not reused, and fails readiness (check: exit 1)' },
  'rate-limit': { env: 'EK_RATE_LIMIT', kind: 'string', default: '10/1m', parse: parseRateLimit, commands: EXCHANGING,
    describe: 'most exchanges per API token in any rolling window (N/duration)' },
  // Node timers hold at most 2^31-1 ms; beyond 10 minutes a request deadline is surely a typo.
  timeout: { env: 'EK_TIMEOUT', kind: 'string', default: '10s', parse: durationWithin(1, 10 * MINUTE_MS, 'must be longer than 0 and at most 10m'), commands: EXCHANGING,
    describe: 'whole exchange request deadline' },
  'ca-file': { env: 'EK_CA_FILE', kind: 'path', default: undefined, parse: parsePath, commands: EXCHANGING,
    describe: 'extra PEM CA bundle for the upstream' },
  'on-refresh': { env: 'EK_ON_REFRESH', kind: 'string', default: undefined, parse: parseOnRefresh, commands: RUN,
    describe: 'command run (split like a shell, run without one) after each new JWT is written' },
  'log-level': { env: 'EK_LOG_LEVEL', kind: 'string', default: 'info', parse: parseLogLevel, commands: EXCHANGING,
    describe: 'fatal, error, warn, info, debug, trace or silent' },
  'log-format': { env: 'EK_LOG_FORMAT', kind: 'string', default: 'json', parse: parseChoice(['json', 'text']), commands: EXCHANGING,
    describe: 'json (pino lines) or text (one readable line per event)' },
  'delete-on-exit': { env: 'EK_DELETE_ON_EXIT', kind: 'boolean', default: 'false', parse: parseBoolean, commands: RUN,
    describe: 'remove the JWT file on clean shutdown' },
} as const satisfies Record<string, OptionSpec<unknown>>;

export type OptionName = keyof typeof OPTIONS;
export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/** The typed value of an option: what its parser returns, or undefined when it has no default and was not given. */
export type OptionValue<K extends OptionName> =
  | Extract<Awaited<ReturnType<(typeof OPTIONS)[K]['parse']>>, { ok: true }>['value']
  | ((typeof OPTIONS)[K]['default'] extends string ? never : undefined);
export type OptionValues = { readonly [K in OptionName]: OptionValue<K> };

export function optionSpec(name: OptionName): OptionSpec<unknown> {
  return OPTIONS[name];
}

export function optionsOf(command: Command): OptionName[] {
  return OPTION_NAMES.filter((name) => optionSpec(name).commands.includes(command));
}
