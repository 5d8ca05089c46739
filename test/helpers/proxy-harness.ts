// The token API with its API proxy, in this process, in front of the fake Enkryptify API (or any upstream a test
// starts): a real listener on port 0, a real undici dispatcher, a ServedJwt holding JWTs the fake issued.
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { ProxyMode } from '../../src/config/config.ts';
import { holdJwt } from '../../src/core/held-jwt.ts';
import type { Clock } from '../../src/core/clock.ts';
import { createApiProxy } from '../../src/http/proxy.ts';
import type { HttpTimeouts, RunningServer } from '../../src/http/server.ts';
import { startTokenServer } from '../../src/http/token-api.ts';
import { createMetrics, type Metrics } from '../../src/observe/metrics.ts';
import { ServedJwt } from '../../src/refresh/served-jwt.ts';
import { createUpstreamDispatcher } from '../../src/upstream/dispatcher.ts';

export const API_TOKEN = 'ek_live_proxy_harness_0123456789abcdef';
export const MIN_TTL_MS = 60_000;

/** Wall and monotonic time, both shifted by `skewMs`, so a test can move past a JWT's expiry without waiting. */
export interface SkewedClock extends Clock {
  skewMs: number;
}

export interface ProxyHarness {
  readonly port: number;
  readonly served: ServedJwt;
  readonly metrics: Metrics;
  readonly clock: SkewedClock;
  /** How often the proxy reported a 401 from the upstream to the JWT held. */
  unauthorized(): number;
  /** What the proxy logged (warnings), for the leak checks. */
  readonly logged: string[];
  /** Hold `jwt`, valid for `lifetimeMs` as far as the sidecar is concerned. */
  hold(jwt: string, lifetimeMs?: number): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly apiUrl: string;
  /** Default verify; `off` starts the token API without a proxy. */
  readonly mode?: ProxyMode;
  /** `--timeout`; default 10 s. */
  readonly timeoutMs?: number;
  readonly timeouts?: Partial<HttpTimeouts>;
  readonly host?: string;
}

export async function startProxyHarness(options: HarnessOptions): Promise<ProxyHarness> {
  const clock: SkewedClock = { skewMs: 0, now: () => Date.now() + clock.skewMs, monotonic: () => performance.now() + clock.skewMs };
  const served = new ServedJwt(MIN_TTL_MS, clock);
  const metrics = createMetrics({ defaultMetrics: false });
  const dispatcher = createUpstreamDispatcher({ timeoutMs: options.timeoutMs ?? 10_000 });
  const logged: string[] = [];
  const log = { warn: (obj: object, msg: string) => { logged.push(`${msg} ${JSON.stringify(obj, (_key, value: unknown) => (value instanceof Error ? value.message : value))}`); } };
  let unauthorized = 0;
  const isApiToken = (presented: string): boolean => presented === API_TOKEN;
  const mode = options.mode ?? 'verify';
  const proxy = mode === 'off' ? undefined : createApiProxy({
    mode,
    apiUrl: options.apiUrl,
    dispatcher,
    timeoutMs: options.timeoutMs ?? 10_000,
    served,
    isApiToken,
    metrics,
    onUpstreamUnauthorized: () => { unauthorized += 1; },
    log,
  });
  const server: RunningServer = await startTokenServer({
    listen: { host: options.host ?? '127.0.0.1', port: 0 },
    served,
    credentials: { isApiToken },
    metrics,
    clock,
    log,
    proxy,
    ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
  });
  return {
    port: server.address.port,
    served,
    metrics,
    clock,
    logged,
    unauthorized: () => unauthorized,
    hold(jwt, lifetimeMs = 900_000) {
      served.install(holdJwt(jwt, 'Bearer', clock.now() + lifetimeMs, clock));
    },
    async close() {
      await server.close();
      await dispatcher.destroy();
    },
  };
}

/** A JWT the fake API issues for `token` (its exchange, called directly). */
export async function exchangeAtFake(apiUrl: string, token = API_TOKEN): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/auth/exchange`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`fake exchange: ${String(response.status)}`);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

export interface Answer {
  readonly code: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  text(): string;
  json(): unknown;
}

export interface Call {
  readonly method?: string;
  readonly path: string;
  /** Default 127.0.0.1:port; null sends none. */
  readonly host?: string | null;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Written one by one without a Content-Length (chunked). */
  readonly chunks?: readonly Buffer[];
  /** Connect to this address (default 127.0.0.1). */
  readonly address?: string;
}

/** One request on a fresh connection, answered whole (an early close after the answer began is not an error). */
export function call(port: number, c: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...c.headers };
    const host = c.host === undefined ? `127.0.0.1:${String(port)}` : c.host;
    if (host !== null) headers.host = host;
    let answered = false;
    const req = request({ host: c.address ?? '127.0.0.1', port, method: c.method ?? 'GET', path: c.path, headers, setHost: false, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const done = (): void => {
        const body = Buffer.concat(chunks);
        resolve({ code: res.statusCode ?? 0, headers: res.headers, body, text: () => body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) as unknown });
      };
      res.on('end', done);
      res.on('error', done);
    });
    // The server may close an oversized upload before the client has sent all of it.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of c.chunks ?? []) req.write(chunk);
    req.end(c.body);
  });
}

/** `proxy_requests_total{method, code}`, 0 when absent. */
export async function proxied(metrics: Metrics, method: string, code: number): Promise<number> {
  const series = (await metrics.proxyRequests.get()).values.find((v) => v.labels.method === method && v.labels.code === String(code));
  return series?.value ?? 0;
}

/** Every proxy_requests_total sample, summed. */
export async function proxiedTotal(metrics: Metrics): Promise<number> {
  return (await metrics.proxyRequests.get()).values.reduce((sum, v) => sum + v.value, 0);
}
