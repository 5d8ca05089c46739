/**
 * The configuration's types. The options themselves (flag, variable, default, parser, help) are defined once, in
 * options.ts; their pure parsers are in values.ts.
 */
import { isIP } from 'node:net';

export type JwtFormat = 'raw' | 'json';
export type AuthMode = 'api-token' | 'oidc';
export type ProxyMode = 'verify' | 'inject' | 'off';
export type LogFormat = 'json' | 'text';

export interface ListenAddress {
  /** undefined: all interfaces, IPv6 and IPv4 where the kernel has IPv6, else IPv4 (`server.listen(port)`). */
  readonly host: string | undefined;
  readonly port: number;
}

export interface RateLimit {
  readonly max: number;
  readonly windowMs: number;
}

/**
 * The validated, frozen configuration the core trusts. One comment per field says what it means. Options that a
 * command does not read (see options.ts) hold their defaults there.
 */
export interface Config {
  /** Upstream base URL, without a trailing slash. */
  readonly apiUrl: string;
  /** The mounted API token file; undefined when the token comes from EK_API_TOKEN (local development) or with auth oidc. */
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
  /** With auth oidc: the Enkryptify workspace id sent with the projected token (required there); undefined otherwise. */
  readonly workspace: string | undefined;
  /** Token API; undefined when `off` (the file is then the only way to read the JWT). */
  readonly listen: ListenAddress | undefined;
  readonly allowRemoteTokenAccess: boolean;
  /** Extra Host names the token listener accepts (a broker's Service names), lower case. */
  readonly allowedHosts: readonly string[];
  /** Serve the token listener over TLS with these PEM files: checked at start, re-read by the http layer when they change. */
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
  /** Its certificates (PEM), read and parsed once at start. */
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

/** True for addresses that only this pod can reach (the `--listen` rule, and the http layer's Host guard). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return mapped?.[1] !== undefined && mapped[1].startsWith('127.');
}
