import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import { createExchangeClient, type ExchangeClient } from '../upstream/exchange-client.ts';
import { probeJwtPath, removeStaleTemporaryFiles } from '../disk/temporary-files.ts';
import { createFileStore, loadFromDisk } from '../disk/jwt-sink.ts';
import { createMetrics, type Metrics } from '../observe/metrics.ts';
import { Refresher, type RefresherEvents } from '../refresh/refresher.ts';
import { statePathFor } from '../disk/state-file.ts';
import { Status } from '../refresh/served-jwt.ts';

/** The parts `run` and `once` share: a checked JWT path, the state from disk, and a refresher seeded with it. */
export interface Core {
  readonly status: Status;
  readonly metrics: Metrics;
  readonly client: ExchangeClient;
  readonly refresher: Refresher;
  readonly clock: Clock;
}

/**
 * Check the JWT path (throws JwtFileError at once when it cannot be written), clear temporary files a killed
 * process left, and seed a refresher with what the previous run left on disk.
 */
export async function startCore(config: Config, log: Logger, options: { defaultMetrics: boolean; events?: RefresherEvents }): Promise<Core> {
  await probeJwtPath(config.jwtFile);
  await removeStaleTemporaryFiles(config.jwtFile);
  await removeStaleTemporaryFiles(statePathFor(config.jwtFile));
  const clock = systemClock;
  const status = new Status(config.minTtlMs);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics });
  metrics.rateLimitBudget.set(config.rateLimit.max);
  const client = createExchangeClient({ apiUrl: config.apiUrl, timeoutMs: config.timeoutMs, caPem: config.caPem });
  const refresher = new Refresher({
    config,
    client,
    store: createFileStore(config),
    status,
    metrics,
    clock,
    random: Math.random,
    log,
    ...(options.events === undefined ? {} : { events: options.events }),
  });
  const disk = await loadFromDisk(config.jwtFile);
  for (const problem of disk.problems) log.warn(problem);
  refresher.restore(disk.state, disk.jwt);
  return { status, metrics, client, refresher, clock };
}
