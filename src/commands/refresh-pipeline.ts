import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/config.ts';
import { readBootId, systemClock, systemTimers, type Clock } from '../core/clock.ts';
import { diskFiles, lockPathFor } from '../disk/file-access.ts';
import { readJwtFile } from '../disk/jwt-file.ts';
import { probeJwtPath, removeStaleTemporaryFiles } from '../disk/temporary-files.ts';
import type { JwtSink } from '../disk/jwt-sink.ts';
import { statePathFor } from '../disk/state-file.ts';
import { StateStore } from '../disk/state-store.ts';
import { createMetrics, type Metrics } from '../observe/metrics.ts';
import type { Refresher, RefresherEvents } from '../refresh/refresher.ts';
import { restorableFrom } from '../refresh/reuse.ts';
import { ServedJwt } from '../refresh/served-jwt.ts';
import { createUpstreamDispatcher } from '../upstream/dispatcher.ts';
import { createExchangeClient } from '../upstream/exchange-client.ts';
import { createRefresherWithSink } from './refresh-wiring.ts';

/** The parts `run` and `once` share: a checked JWT path, the state from disk, and a refresher seeded with it. */
export interface RefreshPipeline {
  readonly served: ServedJwt;
  readonly metrics: Metrics;
  /** The upstream connection pool behind the client (and the API proxy); destroy it last. */
  readonly upstream: Dispatcher;
  readonly refresher: Refresher;
  readonly sink: JwtSink;
  readonly clock: Clock;
}

export interface RefreshPipelineOptions {
  readonly defaultMetrics: boolean;
  readonly signal: AbortSignal;
  readonly events?: RefresherEvents;
}

/**
 * Check the JWT path (throws DiskError at once when it cannot be written), clear temporary files a killed process
 * left, and seed a refresher with what the previous run left on disk.
 */
export async function startRefreshPipeline(config: Config, log: Logger, options: RefreshPipelineOptions): Promise<RefreshPipeline> {
  await probeJwtPath(config.jwtFile);
  const statePath = statePathFor(config.jwtFile);
  // What a killed process left: temporary files of its writes, and a lock it held (set aside when taken over).
  const removed = (await Promise.all([config.jwtFile, statePath, lockPathFor(statePath)].map((path) => removeStaleTemporaryFiles(path)))).flat();
  if (removed.length > 0) log.info({ removed }, 'removed temporary files a previous run left');
  const clock = systemClock;
  const served = new ServedJwt(config.minTtlMs, clock);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics && config.metricsRuntime, authMode: config.auth });
  const upstream = createUpstreamDispatcher({ timeoutMs: config.timeoutMs, caPem: config.caPem });
  const client = createExchangeClient({ apiUrl: config.apiUrl, timeoutMs: config.timeoutMs, dispatcher: upstream });
  const store = new StateStore({ path: statePath, files: diskFiles, clock, bootId: readBootId(), limit: config.rateLimit, metrics });
  const { refresher, sink } = createRefresherWithSink({
    config, client, store, files: diskFiles, served, metrics, clock, random: Math.random, timers: systemTimers, log, signal: options.signal,
    ...(options.events === undefined ? {} : { events: options.events }),
  });
  const disk = await store.load();
  if (disk.problem !== undefined) log.warn(disk.problem);
  const stored = await readJwtFile(config.jwtFile).catch(() => undefined);
  refresher.restore(disk.records, restorableFrom({ stored, entry: disk.entry }, config.minTtlMs, clock));
  return { served, metrics, upstream, refresher, sink, clock };
}
