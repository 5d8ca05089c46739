import { rootCertificates } from 'node:tls';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

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
export function createUpstreamDispatcher(options: UpstreamDispatcherOptions): Dispatcher {
  // `ca` replaces Node's roots; the SPEC's --ca-file adds to them.
  const ca = options.caPem === undefined ? undefined : [...rootCertificates, options.caPem];
  const tls = ca === undefined ? {} : { ca };
  // EnvHttpProxyAgent honours HTTP(S)_PROXY and NO_PROXY (either case); with none set it is a plain Agent. Behind a
  // proxy, the CA must reach both the proxy connection and the tunnelled TLS session.
  return new EnvHttpProxyAgent({
    connect: { timeout: options.timeoutMs, ...tls },
    requestTls: tls,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
}
