import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { CredentialError } from '../core/errors.ts';
import type { Metrics } from '../observe/metrics.ts';
import { readApiTokenFile } from './api-token.ts';
import { parseApiToken, type TokenRead } from './api-token-text.ts';
import { apiTokenCredential, type Credential } from './credential.ts';
import { WatchedFile, type FileRead } from './watched-file.ts';

export interface CredentialEvents {
  /** A usable credential: at start, on a change, or the same one re-reported on SIGHUP. */
  onCredential(credential: Credential): void;
  /** The source turned unusable; the last good credential stays in use. */
  onProblem(problem: CredentialError): void;
}

/** Where the credential comes from. The only writer of `token_file_reloads_total` and of the reload log lines. */
export interface CredentialSource {
  /** Re-read at once (SIGHUP): re-reports the credential even if unchanged, so an authentication failure is retried. */
  reread(): Promise<void>;
  /** Constant-time: is `presented` the API token this sidecar exchanges? (The drop-in and the proxy's `verify`.) */
  isApiToken(presented: string): boolean;
  /** Start following the file, when started with `follow: false` (run does so once its first JWT is in). */
  follow(): Promise<void>;
  close(): Promise<void>;
}

export interface CredentialSourceDeps {
  readonly config: Pick<Config, 'tokenFile' | 'apiTokenFromEnv'>;
  readonly events: CredentialEvents;
  readonly metrics: Pick<Metrics, 'tokenFileReloads'>;
  readonly log: Logger;
  /** false: read the credential now, follow its file only when follow() is called. Default true. */
  readonly follow?: boolean;
}

/**
 * The API token: the followed file, or for local development EK_API_TOKEN (only when no token file was given
 * explicitly; the log then warns once).
 */
export async function startCredentialSource(deps: CredentialSourceDeps): Promise<CredentialSource> {
  const { config, log } = deps;
  const holder = new ApiTokenHolder(deps);
  if (config.tokenFile === undefined) {
    log.warn('using the API token from EK_API_TOKEN: for local development only; mount a token file in production');
    const read = parseApiToken(config.apiTokenFromEnv ?? '', 'EK_API_TOKEN');
    const report = (): void => { holder.report(toFileRead(read)); };
    report();
    return { reread: () => { report(); return Promise.resolve(); }, isApiToken: (presented) => holder.matches(presented), follow: () => Promise.resolve(), close: () => Promise.resolve() };
  }
  const path = config.tokenFile;
  const file = new WatchedFile(path, async () => toFileRead(await readApiTokenFile(path)), {
    onValue: (token) => { holder.report({ ok: true, value: token, text: token }); },
    onProblem: (problem) => { holder.report({ ok: false, problem, retryable: false }); },
  });
  await file.start({ follow: deps.follow !== false });
  return { reread: () => file.reread({ force: true }), isApiToken: (presented) => holder.matches(presented), follow: () => file.follow(), close: () => file.close() };
}

function toFileRead(read: TokenRead): FileRead<string, CredentialError> {
  if (read.ok) return { ok: true, value: read.token.value, text: read.token.value };
  return { ok: false, problem: new CredentialError(read.problem, read.message), retryable: read.problem !== 'missing' };
}

/** The current API token (as a digest, for the constant-time check) and the reporting of every read. */
class ApiTokenHolder {
  readonly #deps: CredentialSourceDeps;
  #current: { digest: Buffer; credential: Credential } | undefined;

  constructor(deps: CredentialSourceDeps) {
    this.#deps = deps;
  }

  report(read: FileRead<string, CredentialError>): void {
    const { metrics, log, events } = this.#deps;
    if (!read.ok) {
      metrics.tokenFileReloads.inc({ result: 'invalid' });
      const keeping = this.#current === undefined ? 'no API token is loaded yet' : `keeping the last good ${this.#current.credential.label}`;
      log.error({ problem: read.problem.code }, `${read.problem.message}; ${keeping}`);
      events.onProblem(read.problem);
      return;
    }
    metrics.tokenFileReloads.inc({ result: 'success' });
    const credential = apiTokenCredential(read.value);
    const previous = this.#current?.credential;
    if (previous?.identity !== credential.identity) {
      log.info({ tokenFingerprint: credential.identity }, previous === undefined ? 'API token loaded' : `API token rotated (was ${previous.identity})`);
    }
    this.#current = { digest: digest(read.value), credential };
    events.onCredential(credential);
  }

  matches(presented: string): boolean {
    const expected = this.#current?.digest;
    // Comparing fixed-length digests keeps the comparison constant-time whatever the candidate's length.
    return expected !== undefined && timingSafeEqual(expected, digest(presented));
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
