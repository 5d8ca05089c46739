import type { Logger } from 'pino';
import { parseApiToken, readApiTokenFile, type TokenRead } from '../credentials/api-token.ts';
import type { Config } from '../config/config.ts';
import { isAuthFailure } from '../refresh/refresh-policy.ts';
import { startCore } from './start-core.ts';

/**
 * `ek-sidecar once`: a valid JWT on disk, then exit 0. A fresh JWT already there for the same token is reused
 * without an exchange. It waits for the budget when it must, at most one rate-limit window (plus one request
 * timeout), retrying transient failures; 401/403 end it at once. Exit 1 when it has no JWT.
 */
export async function runOnce(config: Config, log: Logger): Promise<number> {
  const read: TokenRead = config.tokenFile === undefined ? parseApiToken(config.apiTokenFromEnv ?? '', 'EK_API_TOKEN') : await readApiTokenFile(config.tokenFile);
  if (!read.ok) {
    log.error({ problem: read.problem }, read.message);
    return 1;
  }
  const deadlineMs = config.rateLimit.windowMs + config.timeoutMs;
  let settle: (code: number) => void = () => undefined;
  const outcome = new Promise<number>((resolve) => { settle = resolve; });
  const core = await startCore(config, log, {
    defaultMetrics: false,
    events: {
      onWritten: () => { settle(0); },
      onFailure: (error) => {
        if (isAuthFailure(error)) settle(1);
      },
    },
  });
  const timer = setTimeout(() => {
    log.error(`no JWT within ${Math.round(deadlineMs / 1000)} s`);
    settle(1);
  }, deadlineMs);
  const stop = (): void => {
    log.warn('interrupted before a JWT was obtained');
    settle(1);
  };
  // Persistent listeners: see daemon.ts on signal-exit.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  core.refresher.onToken(read.token);
  const code = await outcome;
  clearTimeout(timer);
  await core.refresher.stop();
  await core.client.close().catch(() => undefined);
  if (code === 0) log.info({ jwtFile: config.jwtFile }, 'JWT written');
  return code;
}
