import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { RunningServer } from '../http/server.ts';
import { removeFile } from '../disk/jwt-file.ts';
import { createHookRunner, hookTimingFromEnv } from '../hooks/on-refresh.ts';
import { startOpsServer } from '../http/ops-api.ts';
import { startCore } from './start-core.ts';
import { startTokenServer } from '../http/token-api.ts';
import { startTokenSource, type TokenSource } from '../credentials/token-source.ts';

/** SIGTERM must end the process within 2 s whatever is in flight; this leaves margin for the event loop to drain. */
const SHUTDOWN_DEADLINE_MS = 1_500;

/** `ek-sidecar run`: wiring only. Resolves with the exit code once a signal has stopped everything. */
export async function runDaemon(config: Config, log: Logger): Promise<number> {
  const hook = config.onRefresh === undefined ? undefined
    : createHookRunner({ argv: config.onRefresh, jwtFile: config.jwtFile, log, ...hookTimingFromEnv(process.env) });
  const core = await startCore(config, log, { defaultMetrics: true, events: { onWritten: () => { hook?.run(); } } });
  const { status, metrics, refresher, clock } = core;
  let alive = true;

  const tokenApi = config.listen === undefined ? undefined : await startTokenServer({ listen: config.listen, status, metrics, clock, log });
  const ops = config.metricsListen === undefined ? undefined
    : await startOpsServer({ listen: config.metricsListen, status, metrics, clock, alive: () => alive, beforeScrape: () => { refresher.refreshGauges(); }, log });
  const servers = [tokenApi, ops].filter((server): server is RunningServer => server !== undefined);
  log.info({ tokenApi: tokenApi?.address ?? 'off', metrics: ops?.address ?? 'off', jwtFile: config.jwtFile }, 'ek-sidecar started');

  const tokens: TokenSource = await startTokenSource(config, { onToken: (token) => { refresher.onToken(token); }, onInvalid: (read) => { refresher.onInvalidToken(read); } }, log);

  // Persistent listeners, not `once`: write-file-atomic's signal-exit re-raises a signal when it sees no other
  // listener left, which would turn a clean SIGTERM during a write into a kill.
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.on('SIGTERM', () => { resolve('SIGTERM'); });
    process.on('SIGINT', () => { resolve('SIGINT'); });
    process.on('SIGHUP', () => {
      log.info('SIGHUP: re-reading the token file');
      void tokens.reread();
    });
  });
  alive = false;
  log.info({ signal }, 'shutting down');
  // A hung socket or watcher must not hold the pod's termination: exit 0 regardless after the deadline.
  setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
  await Promise.allSettled([refresher.stop(), ...servers.map((server) => server.close()), tokens.close(), hook?.close()]);
  await core.client.close().catch(() => undefined);
  if (config.deleteOnExit) {
    await removeFile(config.jwtFile).catch((error: unknown) => { log.warn(`could not delete ${config.jwtFile}: ${String(error)}`); });
  }
  log.info('stopped');
  return 0;
}
