import { ConfigError } from '../core/errors.ts';
import { parseApiToken } from '../credentials/api-token-text.ts';
import { isLoopbackHost, type Config, type ListenAddress } from './config.ts';
import { optionError, type Sources } from './option-error.ts';
import type { OptionName, OptionValues } from './options.ts';

export interface ValidationInput {
  readonly values: OptionValues;
  readonly sources: Sources;
  /** The options the command reads; the others hold their defaults and no rule looks at them. */
  readonly used: ReadonlySet<OptionName>;
  /** EK_API_TOKEN: not an option, a development fallback for the token file. */
  readonly envApiToken: string | undefined;
}

/** The Config before the files it names are read (the CA bundle's content is added by resolveConfig). */
export type ValidatedConfig = Omit<Config, 'caPem'>;

/**
 * Every rule across options, in one place, on parsed values (pure: no I/O). Throws a ConfigError naming the option
 * to fix.
 * 1. A token API beyond loopback (including `:port`, every interface) needs --allow-remote-token-access.
 * 2. --auth oidc needs --workspace; the API token (file or EK_API_TOKEN) is then not used at all.
 * 3. --tls-cert-file and --tls-key-file come together.
 * 4. EK_API_TOKEN is used only when no token file was given explicitly (flag or EK_TOKEN_FILE), and then it must be
 *    a valid token; it is never shown.
 */
export function validate(input: ValidationInput): ValidatedConfig {
  const { values, sources } = input;
  const listen = values.listen;
  if (listen !== undefined && !values['allow-remote-token-access'] && !isLoopbackListen(listen)) {
    throw optionError('listen', sources, `${listen.host === undefined ? 'every interface' : `"${listen.host}"`} is not a loopback address; the token API is refused on other interfaces unless --allow-remote-token-access is set`);
  }
  const oidc = values.auth === 'oidc';
  if (oidc && values.workspace === undefined) throw optionError('workspace', sources, 'required with --auth oidc (or set EK_WORKSPACE)');
  const certFile = values['tls-cert-file'];
  const keyFile = values['tls-key-file'];
  if (certFile === undefined && keyFile !== undefined) throw optionError('tls-cert-file', sources, 'required with --tls-key-file');
  if (certFile !== undefined && keyFile === undefined) throw optionError('tls-key-file', sources, 'required with --tls-cert-file');
  const apiTokenFromEnv = oidc ? undefined : envApiToken(input);

  return {
    apiUrl: values['api-url'],
    tokenFile: oidc || apiTokenFromEnv !== undefined ? undefined : values['token-file'],
    apiTokenFromEnv,
    jwtFile: values['jwt-file'],
    jwtFileMode: values['jwt-file-mode'],
    jwtFormat: values['jwt-format'],
    auth: values.auth,
    oidcTokenFile: values['oidc-token-file'],
    workspace: oidc ? values.workspace : undefined,
    listen,
    allowRemoteTokenAccess: values['allow-remote-token-access'],
    allowedHosts: values['allowed-hosts'] ?? [],
    tls: certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile },
    proxy: values.proxy,
    metricsListen: values['metrics-listen'],
    refreshWindow: values['refresh-window'],
    minTtlMs: values['min-ttl'],
    rateLimit: values['rate-limit'],
    timeoutMs: values.timeout,
    caFile: values['ca-file'],
    onRefresh: values['on-refresh'],
    logLevel: values['log-level'],
    logFormat: values['log-format'],
    metricsRuntime: values['metrics-runtime'],
    deleteOnExit: values['delete-on-exit'],
  };
}

function isLoopbackListen(listen: ListenAddress): boolean {
  return listen.host !== undefined && isLoopbackHost(listen.host);
}

function envApiToken(input: ValidationInput): string | undefined {
  const text = input.envApiToken;
  if (!input.used.has('token-file') || input.sources.has('token-file') || text === undefined || text === '') return undefined;
  const read = parseApiToken(text, 'EK_API_TOKEN');
  // parseApiToken describes the token by shape and length only.
  if (!read.ok) throw new ConfigError('token-file', read.message);
  return read.token.value;
}
