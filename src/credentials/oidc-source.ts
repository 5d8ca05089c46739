import { CredentialError } from '../core/errors.ts';
import { isMissing, readBoundedFile } from '../disk/bounded-read.ts';
import type { Credential } from './credential.ts';
import type { CredentialSource, CredentialSourceDeps } from './credential-source.ts';
import { oidcCredential } from './oidc-credential.ts';
import { MAX_PROJECTED_TOKEN_BYTES, parseProjectedToken, type ProjectedToken, type ProjectedTokenRead } from './projected-token.ts';
import { SecretDigest } from './secret-digest.ts';
import { WatchedFile, watchLostMessage, type FileRead } from './watched-file.ts';

/**
 * Workload identity: the pod's projected service-account token, which the kubelet rotates in its volume with the
 * same `..data` swap as a secret. It is followed like the API token file, and read afresh before every exchange.
 */
export async function startOidcSource(deps: CredentialSourceDeps): Promise<CredentialSource> {
  const { config } = deps;
  const workspace = config.workspace ?? '';
  const path = config.oidcTokenFile;
  const holder = new ProjectedTokenHolder(deps, workspace);
  const read = async (): Promise<ProjectedTokenRead> => parseProjectedToken(await readText(path), `projected token file ${path}`, Date.now());
  const file = new WatchedFile(path, async () => toFileRead(await readOrProblem(read, path)), {
    onValue: (token) => { holder.report({ ok: true, token }, async () => holder.fresh(await readOrProblem(read, path))); },
    onProblem: (problem) => { holder.problem(problem); },
    onWatchLost: (reason, rereadMs) => { deps.log.warn({ reason }, watchLostMessage('projected token file', reason, rereadMs)); },
  });
  await file.start({ follow: deps.follow !== false });
  return {
    reread: () => file.reread({ force: true }),
    follow: () => file.follow(),
    isApiToken: () => false,
    isProjectedToken: (token, presentedWorkspace) => holder.matches(token) && presentedWorkspace === workspace,
    close: () => file.close(),
  };
}

async function readText(path: string): Promise<string> {
  return (await readBoundedFile(path, MAX_PROJECTED_TOKEN_BYTES, { followLinks: true })).toString('utf8');
}

/** A read that never throws: a missing or unreadable file is a problem like a malformed one. */
async function readOrProblem(read: () => Promise<ProjectedTokenRead>, path: string): Promise<ProjectedTokenRead> {
  try {
    return await read();
  } catch (error) {
    const missing = isMissing(error);
    return { ok: false, problem: missing ? 'missing' : 'unreadable', message: `projected token file ${path} ${missing ? 'does not exist' : 'is unreadable'}` };
  }
}

function toFileRead(read: ProjectedTokenRead): FileRead<ProjectedToken, CredentialError> {
  if (read.ok) return { ok: true, value: read.token, text: read.token.text };
  return { ok: false, problem: new CredentialError(read.problem, read.message), retryable: read.problem !== 'missing' && read.problem !== 'expired' };
}

/** The current projected token (as a digest, for the drop-in's check) and the reporting of every read. */
class ProjectedTokenHolder {
  readonly #deps: CredentialSourceDeps;
  readonly #workspace: string;
  readonly #digest = new SecretDigest();
  #current: Credential | undefined;
  #sub: string | undefined;

  constructor(deps: CredentialSourceDeps, workspace: string) {
    this.#deps = deps;
    this.#workspace = workspace;
  }

  report(read: { ok: true; token: ProjectedToken }, current: () => Promise<ProjectedToken>): void {
    const { metrics, log, events } = this.#deps;
    const { token } = read;
    metrics.tokenFileReloads.inc({ result: 'success' });
    const credential = oidcCredential(token, this.#workspace, current);
    const previous = this.#current;
    if (previous?.identity !== credential.identity) {
      log.info({ auth: 'oidc', sub: token.sub, workspace: this.#workspace, identity: credential.identity }, previous === undefined ? 'workload identity loaded' : `workload identity changed (was ${previous.identity})`);
    } else {
      log.debug({ auth: 'oidc', sub: token.sub, expiresAt: new Date(token.expiresAtMs).toISOString() }, 'the kubelet rotated the projected token; same identity, no exchange needed');
    }
    this.#current = credential;
    this.#sub = token.sub;
    this.#digest.set(token.text);
    events.onCredential(credential);
  }

  /** The token to send now: the file as it is, if it is usable and still names our identity. */
  fresh(read: ProjectedTokenRead): ProjectedToken {
    if (!read.ok) {
      const problem = new CredentialError(read.problem, read.message);
      this.problem(problem);
      throw problem;
    }
    if (read.token.sub !== this.#sub) {
      // The watcher reports the new identity in a moment; until then nothing is sent for the old one.
      throw new CredentialError('malformed', `the projected token now names another service account (${read.token.sub}); waiting for it to be reloaded`);
    }
    return read.token;
  }

  problem(problem: CredentialError): void {
    const { metrics, log, events } = this.#deps;
    metrics.tokenFileReloads.inc({ result: 'invalid' });
    const keeping = this.#current === undefined ? 'no workload identity is loaded yet' : `keeping the last good ${this.#current.label} and the JWT held`;
    log.error({ auth: 'oidc', problem: problem.code }, `${problem.message}; ${keeping}`);
    events.onProblem(problem);
  }

  matches(token: string): boolean {
    return this.#digest.matches(token);
  }
}
