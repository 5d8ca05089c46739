import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseApiToken } from '../credentials/api-token.ts';
import { ConfigError } from '../core/errors.ts';
import { isLoopbackHost, parseListen, type Config } from './config.ts';
import { parseHookCommand } from '../hooks/on-refresh.ts';
import { OPTIONS, VALIDATORS, type OptionName } from './options.ts';

/** Beyond these, timers overflow (Node caps them at 2^31-1 ms) or the setting is surely a typo. */
const MAX_TIMEOUT_MS = 10 * 60_000;
const MAX_WINDOW_MS = 24 * 3_600_000;

export type FlagValues = Partial<Record<OptionName, string | boolean>>;

/**
 * Merge flags, environment and defaults (in that order of precedence) and validate every value once, into the
 * frozen Config the core trusts. Throws ConfigError naming the option (and its variable, when it came from there).
 * Unknown EK_* variables are never looked at: Kubernetes injects service links such as EK_PORT.
 */
export function resolveConfig(flags: FlagValues, env: NodeJS.ProcessEnv): Config {
  const sourceOf = new Map<OptionName, string>();
  const raw = {} as Record<OptionName, string | undefined>;
  for (const option of OPTIONS) {
    const flag = flags[option.flag];
    const fromEnv = env[option.env];
    if (flag !== undefined) {
      raw[option.flag] = String(flag);
      sourceOf.set(option.flag, `--${option.flag}`);
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw[option.flag] = fromEnv;
      sourceOf.set(option.flag, `${option.env} (--${option.flag})`);
    } else {
      raw[option.flag] = option.default;
    }
  }
  const check = <T>(name: OptionName, parse: (text: string) => { ok: true; value: T } | { ok: false; error: string }): T => {
    const result = parse(raw[name] ?? '');
    if (!result.ok) throw configError(name, sourceOf, result.error);
    return result.value;
  };

  const listen = check('listen', VALIDATORS.listen);
  const allowRemoteTokenAccess = check('allow-remote-token-access', VALIDATORS['allow-remote-token-access']);
  if (!allowRemoteTokenAccess && !isLoopbackHost(listen.host)) {
    throw configError('listen', sourceOf, `"${listen.host}" is not a loopback address; the token API is refused on other interfaces unless --allow-remote-token-access is set`);
  }
  const metricsText = raw['metrics-listen'] ?? '';
  const metricsListen = metricsText.trim().toLowerCase() === 'off' ? undefined : check('metrics-listen', parseListen);
  const timeoutMs = check('timeout', VALIDATORS.timeout);
  if (timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) throw configError('timeout', sourceOf, 'must be longer than 0 and at most 10m');
  const rateLimit = check('rate-limit', VALIDATORS['rate-limit']);
  if (rateLimit.windowMs > MAX_WINDOW_MS) throw configError('rate-limit', sourceOf, 'the window must be at most 24h');

  const explicitTokenFile = sourceOf.has('token-file');
  const envToken = env.EK_API_TOKEN;
  const useEnvToken = !explicitTokenFile && envToken !== undefined && envToken !== '';
  let apiTokenFromEnv: string | undefined;
  if (useEnvToken) {
    const read = parseApiToken(envToken, 'EK_API_TOKEN');
    if (!read.ok) throw new ConfigError('token-file', read.message);
    apiTokenFromEnv = read.token.value;
  }

  return Object.freeze({
    apiUrl: check('api-url', VALIDATORS['api-url']),
    tokenFile: useEnvToken ? undefined : resolve(nonEmpty('token-file', raw, sourceOf)),
    apiTokenFromEnv,
    jwtFile: resolve(nonEmpty('jwt-file', raw, sourceOf)),
    jwtFileMode: check('jwt-file-mode', VALIDATORS['jwt-file-mode']),
    jwtFormat: check('jwt-format', VALIDATORS['jwt-format']),
    auth: 'api-token',
    oidcTokenFile: '/var/run/secrets/tokens/enkryptify',
    workspace: undefined,
    listen,
    allowRemoteTokenAccess,
    allowedHosts: [],
    tls: undefined,
    proxy: 'verify',
    metricsListen,
    refreshWindow: check('refresh-window', VALIDATORS['refresh-window']),
    minTtlMs: check('min-ttl', VALIDATORS['min-ttl']),
    rateLimit,
    timeoutMs,
    caFile: raw['ca-file'] === undefined ? undefined : readCaFile(raw['ca-file'], sourceOf).path,
    caPem: raw['ca-file'] === undefined ? undefined : readCaFile(raw['ca-file'], sourceOf).pem,
    onRefresh: raw['on-refresh'] === undefined ? undefined : hookArgv(raw['on-refresh'], sourceOf),
    logLevel: check('log-level', VALIDATORS['log-level']),
    logFormat: 'json',
    metricsRuntime: true,
    deleteOnExit: check('delete-on-exit', VALIDATORS['delete-on-exit']),
  });
}

function configError(name: OptionName, sourceOf: ReadonlyMap<OptionName, string>, message: string): ConfigError {
  const source = sourceOf.get(name);
  const error = new ConfigError(name, message);
  // Name the variable when the bad value came from the environment, so the manifest line is easy to find.
  if (source !== undefined && !source.startsWith('--')) error.message = `${source}: ${message}`;
  return error;
}

function nonEmpty(name: OptionName, raw: Record<OptionName, string | undefined>, sourceOf: ReadonlyMap<OptionName, string>): string {
  const value = raw[name]?.trim() ?? '';
  if (value === '') throw configError(name, sourceOf, 'must not be empty');
  return value;
}

function readCaFile(path: string, sourceOf: ReadonlyMap<OptionName, string>): { path: string; pem: string } {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw configError('ca-file', sourceOf, `cannot read ${path}: ${error instanceof Error ? error.message : 'unknown error'}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw configError('ca-file', sourceOf, `${path} holds no PEM certificate`);
  return { path: resolve(path), pem };
}

function hookArgv(text: string, sourceOf: ReadonlyMap<OptionName, string>): string[] {
  const parsed = parseHookCommand(text);
  if (!parsed.ok) throw configError('on-refresh', sourceOf, parsed.error);
  return parsed.argv;
}
