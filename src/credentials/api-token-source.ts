import { CredentialError } from '../core/errors.ts';
import { readApiTokenFile } from './api-token.ts';
import { parseApiToken, type TokenRead } from './api-token-text.ts';
import { apiTokenCredential, type Credential } from './credential.ts';
import type { CredentialSource, CredentialSourceDeps } from './credential-source.ts';
import { SecretDigest } from './secret-digest.ts';
import { WatchedFile, watchLostMessage, type FileRead } from './watched-file.ts';

/**
 * The API token: the followed file, or for local development EK_API_TOKEN (only when no token file was given
 * explicitly; the log then warns once).
 */
export async function startApiTokenSource(deps: CredentialSourceDeps): Promise<CredentialSource> {
  const { config, log } = deps;
  const holder = new ApiTokenHolder(deps);
  const base = { isApiToken: (presented: string) => holder.matches(presented), isProjectedToken: () => false };
  if (config.tokenFile === undefined) {
    log.warn('using the API token from EK_API_TOKEN: for local development only; mount a token file in production');
    const read = toFileRead(parseApiToken(config.apiTokenFromEnv ?? '', 'EK_API_TOKEN'));
    holder.report(read);
    return { ...base, reread: () => { holder.report(read); return Promise.resolve(); }, follow: () => Promise.resolve(), close: () => Promise.resolve() };
  }
  const path = config.tokenFile;
  const file = new WatchedFile(path, async () => toFileRead(await readApiTokenFile(path)), {
    onValue: (token) => { holder.report({ ok: true, value: token, text: token }); },
    onProblem: (problem) => { holder.report({ ok: false, problem, retryable: false }); },
    onWatchLost: (reason, rereadMs) => { log.warn({ reason }, watchLostMessage('token file', reason, rereadMs)); },
  });
  await file.start({ follow: deps.follow !== false });
  return { ...base, reread: () => file.reread({ force: true }), follow: () => file.follow(), close: () => file.close() };
}

function toFileRead(read: TokenRead): FileRead<string, CredentialError> {
  if (read.ok) return { ok: true, value: read.token.value, text: read.token.value };
  return { ok: false, problem: new CredentialError(read.problem, read.message), retryable: read.problem !== 'missing' };
}

/** The current API token (as a digest, for the constant-time check) and the reporting of every read. */
class ApiTokenHolder {
  readonly #deps: CredentialSourceDeps;
  readonly #digest = new SecretDigest();
  #current: Credential | undefined;

  constructor(deps: CredentialSourceDeps) {
    this.#deps = deps;
  }

  report(read: FileRead<string, CredentialError>): void {
    const { metrics, log, events } = this.#deps;
    if (!read.ok) {
      metrics.tokenFileReloads.inc({ result: 'invalid' });
      const keeping = this.#current === undefined ? 'no API token is loaded yet' : `keeping the last good ${this.#current.label}`;
      log.error({ problem: read.problem.code }, `${read.problem.message}; ${keeping}`);
      events.onProblem(read.problem);
      return;
    }
    metrics.tokenFileReloads.inc({ result: 'success' });
    const credential = apiTokenCredential(read.value);
    const previous = this.#current;
    if (previous?.identity !== credential.identity) {
      log.info({ auth: 'api-token', tokenFingerprint: credential.identity }, previous === undefined ? 'API token loaded' : `API token rotated (was ${previous.identity})`);
    }
    this.#current = credential;
    this.#digest.set(read.value);
    events.onCredential(credential);
  }

  matches(presented: string): boolean {
    return this.#digest.matches(presented);
  }
}
