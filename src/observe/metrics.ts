import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EXCHANGE_FAILURES, type ExchangeFailure } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';

export const METRIC_PREFIX = 'ek_sidecar_';

export type ExchangeResult = 'success' | ExchangeFailure;

export const EXCHANGE_RESULTS: readonly ExchangeResult[] = ['success', ...EXCHANGE_FAILURES];

/** Every metric of SPEC.md, on one registry owned by the caller (no prom-client globals). */
export interface Metrics {
  readonly registry: Registry;
  readonly exchanges: Counter<'result'>;
  readonly exchangeDuration: Histogram;
  readonly jwtExpiry: Gauge;
  readonly nextRefresh: Gauge;
  readonly lastExchangeSuccess: Gauge;
  readonly rateLimitBudget: Gauge;
  readonly jwtFileWrites: Counter<'result'>;
  readonly stateFileWrites: Counter<'result'>;
  readonly tokenFileReloads: Counter<'result'>;
  readonly tokenRequests: Counter<'path' | 'code'>;
  readonly ready: Gauge;
  readonly upstreamRateLimitRemaining: Gauge;
  readonly proxyRequests: Counter<'method' | 'code'>;
  readonly proxyDuration: Histogram;
}

/**
 * prom-client's default collectors that are gauges named `_total`, which `promtool check metrics` rejects (a
 * `_total` suffix promises a counter). Dropped; the rest of the runtime series stay unless runtime metrics are off.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface MetricsOptions {
  /** The ~80 Node.js runtime series (process CPU, memory, GC, event loop) under the same prefix. */
  readonly defaultMetrics: boolean;
  /** `api-token` or `oidc`, exposed as `auth_info{mode}`. */
  readonly authMode?: string;
}

export function createMetrics(options: MetricsOptions = { defaultMetrics: true }): Metrics {
  const registry = new Registry();
  // prom-client samples event-loop delay every 10 ms by default: 100 wake-ups a second, most of an idle sidecar's
  // CPU. One sample every 5 s keeps the lag metrics meaningful for a process that should mostly sleep.
  if (options.defaultMetrics) {
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: 5_000 });
    for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
  }
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    exchanges: new Counter({
      name: `${METRIC_PREFIX}exchanges_total`,
      help: 'Token exchanges with the Enkryptify API, by result.',
      labelNames: ['result'],
      registers,
    }),
    exchangeDuration: new Histogram({
      name: `${METRIC_PREFIX}exchange_duration_seconds`,
      help: 'Duration of token exchange requests to the Enkryptify API.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    jwtExpiry: new Gauge({
      name: `${METRIC_PREFIX}jwt_expiry_timestamp_seconds`,
      help: 'Unix time at which the held JWT expires (0 when none is held).',
      registers,
    }),
    nextRefresh: new Gauge({
      name: `${METRIC_PREFIX}jwt_next_refresh_timestamp_seconds`,
      help: 'Unix time of the next planned exchange attempt.',
      registers,
    }),
    lastExchangeSuccess: new Gauge({
      name: `${METRIC_PREFIX}last_exchange_success_timestamp_seconds`,
      help: 'Unix time of the last successful exchange (0 before the first).',
      registers,
    }),
    rateLimitBudget: new Gauge({
      name: `${METRIC_PREFIX}rate_limit_budget`,
      help: 'Exchanges still allowed in the current rolling rate-limit window.',
      registers,
    }),
    jwtFileWrites: new Counter({
      name: `${METRIC_PREFIX}jwt_file_writes_total`,
      help: 'Writes of the JWT file, by result.',
      labelNames: ['result'],
      registers,
    }),
    stateFileWrites: new Counter({
      name: `${METRIC_PREFIX}state_file_writes_total`,
      help: 'Writes of the state file (each exchange attempt is recorded there before it is sent), by result.',
      labelNames: ['result'],
      registers,
    }),
    tokenFileReloads: new Counter({
      name: `${METRIC_PREFIX}token_file_reloads_total`,
      help: 'Reads of a changed API token file, by result.',
      labelNames: ['result'],
      registers,
    }),
    tokenRequests: new Counter({
      name: `${METRIC_PREFIX}token_requests_total`,
      help: 'Requests to the loopback token API, by route and status code.',
      labelNames: ['path', 'code'],
      registers,
    }),
    ready: new Gauge({
      name: `${METRIC_PREFIX}ready`,
      help: '1 while a JWT valid for more than --min-ttl is held and written, else 0.',
      registers,
    }),
    upstreamRateLimitRemaining: new Gauge({
      name: `${METRIC_PREFIX}upstream_rate_limit_remaining`,
      help: 'The upstream\'s last RateLimit-Remaining on an exchange (shared by every client of the token).',
      registers,
    }),
    proxyRequests: new Counter({
      name: `${METRIC_PREFIX}proxy_requests_total`,
      help: 'Requests forwarded by the API proxy, by method and status code.',
      labelNames: ['method', 'code'],
      registers,
    }),
    proxyDuration: new Histogram({
      name: `${METRIC_PREFIX}proxy_request_duration_seconds`,
      help: 'Time from a proxied request to the upstream\'s response headers.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
  new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1; the labels say which build is running.',
    labelNames: ['version', 'node_version'],
    registers,
  }).set({ version: VERSION, node_version: process.version }, 1);
  new Gauge({
    name: `${METRIC_PREFIX}auth_info`,
    help: 'Always 1; the label says how the sidecar authenticates upstream (api-token or oidc).',
    labelNames: ['mode'],
    registers,
  }).set({ mode: options.authMode ?? 'api-token' }, 1);
  // Zero every labelled series so that dashboards and rate() see them from the first scrape.
  for (const result of EXCHANGE_RESULTS) metrics.exchanges.inc({ result }, 0);
  for (const result of ['success', 'failure']) {
    metrics.jwtFileWrites.inc({ result }, 0);
    metrics.stateFileWrites.inc({ result }, 0);
  }
  for (const result of ['success', 'invalid']) metrics.tokenFileReloads.inc({ result }, 0);
  return metrics;
}
