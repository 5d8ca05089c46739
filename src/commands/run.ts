import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { effectiveConfig } from '../config/effective-config.ts';
import { describeError } from '../core/errors.ts';
import { onSignal, type Signal } from '../core/signals.ts';
import { VERSION } from '../core/version.ts';
import { startCredentialSource, type CredentialSource } from '../credentials/credential-source.ts';
import { removeFile } from '../disk/jwt-file.ts';
import { createHookRunner, hookTimingFromEnv } from '../hooks/on-refresh.ts';
import { startOpsServer } from '../http/ops-api.ts';
import { createApiProxy } from '../http/proxy.ts';
import type { RunningServer } from '../http/server.ts';
import { startTokenServer } from '../http/token-api.ts';
import { startRefreshPipeline } from './refresh-pipeline.ts';

/** SIGTERM must end the process within 2 s whatever is in flight; this leaves margin for the event loop to drain. */
const SHUTDOWN_DEADLINE_MS = 1_500;
/** The longest the listeners wait for the first JWT (the exchange takes tens of ms; a probe's period is seconds). */
const FIRST_JWT_WAIT_MS = 1_000;

/** `ek-sidecar run`: wiring only. Resolves with the exit code once a signal has stopped everything. */
export async function runDaemon(config: Config, log: Logger): Promise<number> {
  // One signal for the whole daemon: SIGTERM/SIGINT abort it, and every part takes it.
  const shutdown = new AbortController();
  // Signals may arrive (and are queued for us) before the source exists.
  const started: { source?: CredentialSource } = {};
  const stopped = new Promise<Signal>((resolve) => {
    onSignal((signal) => {
      if (signal === 'SIGHUP') {
        log.info('SIGHUP: re-reading the credential');
        void started.source?.reread();
        return;
      }
      if (!shutdown.signal.aborted) resolve(signal);
    });
  });

  const hook = config.onRefresh === undefined ? undefined : createHookRunner({ argv: config.onRefresh, jwtFile: config.jwtFile, log, ...hookTimingFromEnv(process.env) });
  // The first JWT comes before the listeners and the file watches: a pod's start waits on it, /readyz can only answer
  // 200 once the file is written anyway, and everything started earlier would share the one thread with the exchange.
  // Bounded, so that /healthz and /metrics are up promptly when the upstream is slow or down, or the budget makes the
  // exchange wait.
  let firstOutcome: () => void = () => undefined;
  const first = new Promise<void>((resolve) => { firstOutcome = resolve; });
  const pipeline = await startRefreshPipeline(config, log, {
    defaultMetrics: true,
    signal: shutdown.signal,
    events: { onInstalled: () => { firstOutcome(); hook?.run(); }, onFailure: () => { firstOutcome(); } },
  });
  const { served, metrics, refresher, sink, clock } = pipeline;
  const isApiToken = (presented: string): boolean => started.source?.isApiToken(presented) ?? false;
  const proxy = config.proxy === 'off' ? undefined : createApiProxy({
    mode: config.proxy,
    apiUrl: config.apiUrl,
    dispatcher: pipeline.upstream,
    timeoutMs: config.timeoutMs,
    served,
    isApiToken,
    metrics,
    onUpstreamUnauthorized: () => { refresher.onUpstreamUnauthorized(); },
    log,
  });

  const source = await startCredentialSource({
    config,
    metrics,
    log,
    follow: false,
    events: {
      onCredential: (credential) => { refresher.onCredential(credential); },
      onProblem: (problem) => { refresher.onCredentialProblem(problem); firstOutcome(); },
    },
  });
  started.source = source;
  const waited = setTimeout(firstOutcome, FIRST_JWT_WAIT_MS);
  await Promise.race([first, stopped]);
  clearTimeout(waited);

  const servers: RunningServer[] = [];
  const tokenApi = config.listen === undefined ? undefined : await startTokenServer({
    listen: config.listen,
    served,
    credentials: {
      isApiToken,
      ...(config.auth === 'oidc' ? { isProjectedToken: (token: string, workspace: string) => started.source?.isProjectedToken(token, workspace) ?? false } : {}),
    },
    proxy,
    allowedHosts: config.allowedHosts,
    ...(config.tls === undefined ? {} : { tls: config.tls }),
    metrics,
    clock,
    log,
  });
  const ops = config.metricsListen === undefined ? undefined : await startOpsServer({
    listen: config.metricsListen,
    served,
    metrics,
    alive: () => refresher.alive(),
    beforeScrape: () => { refresher.refreshGauges(); },
    log,
  });
  for (const server of [tokenApi, ops]) if (server !== undefined) servers.push(server);
  await Promise.race([source.follow(), stopped]);
  sink.watch();
  log.info({ version: VERSION, node: process.version, tokenApi: tokenApi?.address ?? 'off', metrics: ops?.address ?? 'off', config: effectiveConfig(config) }, 'ek-sidecar started');

  const signal = await stopped;
  log.info({ signal }, 'shutting down');
  shutdown.abort();
  // A hung socket or watcher must not hold the pod's termination: exit 0 regardless after the deadline.
  setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
  await Promise.allSettled([refresher.settled(), sink.close(), ...servers.map((server) => server.close()), source.close(), hook?.close()]);
  await pipeline.upstream.destroy().catch(() => undefined);
  if (config.deleteOnExit) {
    await removeFile(config.jwtFile).catch((error: unknown) => { log.warn(`could not delete ${config.jwtFile}: ${describeError(error)}`); });
  }
  log.info('stopped');
  return 0;
}
