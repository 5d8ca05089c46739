import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { ExchangeError } from '../core/errors.ts';
import { onSignal } from '../core/signals.ts';
import { startCredentialSource } from '../credentials/credential-source.ts';
import { isAuthFailure } from '../refresh/refresh-policy.ts';
import { startRefreshPipeline } from './refresh-pipeline.ts';

/**
 * `ek-sidecar once`: a valid JWT on disk, then exit 0. A fresh JWT already there for the same credential is reused
 * without an exchange. It waits for the budget when it must, at most one rate-limit window (plus one request
 * timeout), retrying transient failures; 401/403 and an unusable credential end it at once. Exit 1 without a JWT.
 */
export async function runOnce(config: Config, log: Logger): Promise<number> {
  const deadlineMs = config.rateLimit.windowMs + config.timeoutMs;
  const shutdown = new AbortController();
  let settle: (code: number) => void = () => undefined;
  const outcome = new Promise<number>((resolve) => { settle = resolve; });
  onSignal((signal) => {
    if (signal === 'SIGHUP') return;
    log.warn('interrupted before a JWT was obtained');
    settle(1);
  });
  const pipeline = await startRefreshPipeline(config, log, {
    defaultMetrics: false,
    signal: shutdown.signal,
    events: {
      onInstalled: () => { settle(0); },
      onFailure: (error) => {
        if (error instanceof ExchangeError && isAuthFailure(error)) settle(1);
      },
    },
  });
  const timer = setTimeout(() => {
    log.error(`no JWT within ${String(Math.round(deadlineMs / 1000))} s`);
    settle(1);
  }, deadlineMs);
  const source = await startCredentialSource({
    config,
    metrics: pipeline.metrics,
    log,
    events: {
      onCredential: (credential) => { pipeline.refresher.onCredential(credential); },
      // `once` has no later rotation to wait for: an unusable credential at start ends it.
      onProblem: () => { settle(1); },
    },
  });
  const code = await outcome;
  clearTimeout(timer);
  shutdown.abort();
  await Promise.allSettled([pipeline.refresher.settled(), pipeline.sink.close(), source.close()]);
  await pipeline.upstream.destroy().catch(() => undefined);
  if (code === 0) log.info({ jwtFile: config.jwtFile }, 'JWT written');
  return code;
}
