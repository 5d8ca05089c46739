import type { Logger } from 'pino';
import { parseApiToken, TokenFileWatcher, type TokenFileEvents } from './api-token.ts';
import type { Config } from '../config/config.ts';

export interface TokenSource {
  /** Re-read at once (SIGHUP): re-reports the token even if unchanged, so an authentication failure is retried. */
  reread(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where the API token comes from: the followed file, or for local development EK_API_TOKEN (only when no token
 * file was given explicitly; the log then warns once).
 */
export async function startTokenSource(config: Pick<Config, 'tokenFile' | 'apiTokenFromEnv'>, events: TokenFileEvents, log: Logger): Promise<TokenSource> {
  if (config.tokenFile === undefined) {
    const read = parseApiToken(config.apiTokenFromEnv ?? '', 'EK_API_TOKEN');
    log.warn('using the API token from EK_API_TOKEN: for local development only; mount a token file in production');
    if (read.ok) events.onToken(read.token);
    else events.onInvalid(read);
    return {
      reread: () => {
        if (read.ok) events.onToken(read.token);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  }
  const watcher = new TokenFileWatcher(config.tokenFile, events);
  await watcher.start();
  return { reread: () => watcher.reread({ force: true }), close: () => watcher.close() };
}
