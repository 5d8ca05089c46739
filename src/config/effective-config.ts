import type { Config, ListenAddress } from './config.ts';

/**
 * The configuration as the start line logs it: every setting that shapes behaviour, in the units the flags use,
 * and nothing secret (no token, and the hook's command only by its program name, since its arguments may hold one).
 */
export function effectiveConfig(config: Config): Record<string, unknown> {
  const credential = config.auth === 'oidc'
    ? { oidcTokenFile: config.oidcTokenFile, workspace: config.workspace }
    : { tokenFile: config.tokenFile ?? 'EK_API_TOKEN (local development)' };
  return {
    apiUrl: config.apiUrl,
    auth: config.auth,
    ...credential,
    jwtFile: config.jwtFile,
    jwtFileMode: `0${config.jwtFileMode.toString(8)}`,
    jwtFormat: config.jwtFormat,
    listen: listenText(config.listen),
    proxy: config.proxy,
    ...(config.allowedHosts.length > 0 ? { allowedHosts: config.allowedHosts } : {}),
    tls: config.tls !== undefined,
    metricsListen: listenText(config.metricsListen),
    refreshWindow: config.refreshWindow.join(','),
    minTtl: `${String(config.minTtlMs / 1000)}s`,
    rateLimit: `${String(config.rateLimit.max)}/${String(config.rateLimit.windowMs / 1000)}s`,
    timeout: `${String(config.timeoutMs / 1000)}s`,
    caFile: config.caFile ?? 'none',
    onRefresh: config.onRefresh?.[0] ?? 'none',
  };
}

function listenText(address: ListenAddress | undefined): string {
  if (address === undefined) return 'off';
  const host = address.host === undefined ? '' : address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${String(address.port)}`;
}
