import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';

export interface UpstreamDispatcherOptions {
  /** `--timeout`: connecting, waiting for the answer's headers, and any silence inside its body. */
  readonly timeoutMs: number;
  /** `--ca-file`: extra PEM CA bundle, trusted in addition to the system roots. */
  readonly caPem?: string | undefined;
}

/**
 * The one connection pool to the upstream, shared by the exchange client and the API proxy, so both honour
 * `--ca-file`, the proxy variables and the timeouts alike, and reuse each other's connections. It never retries
 * and never follows redirects (undici's dispatchers do neither unless asked): every exchange must pass the
 * rate-limit budget, and the proxy passes redirects back.
 */
export function createUpstreamDispatcher(options: UpstreamDispatcherOptions, env: NodeJS.ProcessEnv = process.env): Dispatcher {
  // `ca` replaces Node's roots; the SPEC's --ca-file adds to them. One context for every connection: given `ca`,
  // each TLS connection would parse the ~150 roots again (a sixth of a chained sidecar's first exchange in CPU).
  const secureContext = options.caPem === undefined ? undefined : createSecureContext({ ca: [...rootCertificates, options.caPem] });
  const tls = secureContext === undefined ? {} : { secureContext };
  const agentOptions = { connect: { timeout: options.timeoutMs, ...tls }, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs };
  // EnvHttpProxyAgent honours HTTP(S)_PROXY and NO_PROXY (either case), but parses the origin and reads the
  // environment again on every request: without a proxy variable a plain Agent does the same for less, on the
  // proxy's hot path. Behind a proxy, the CA must reach both the proxy connection and the tunnelled TLS session.
  return proxyConfigured(env) ? new EnvHttpProxyAgent({ ...agentOptions, requestTls: tls }) : new Agent(agentOptions);
}

/** Whether a proxy variable is set (EnvHttpProxyAgent reads the same four, lower case first). */
function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return [env.http_proxy, env.HTTP_PROXY, env.https_proxy, env.HTTPS_PROXY].some((value) => value !== undefined && value !== '');
}
