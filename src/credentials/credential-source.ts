import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { CredentialError } from '../core/errors.ts';
import type { Metrics } from '../observe/metrics.ts';
import { startApiTokenSource } from './api-token-source.ts';
import type { Credential } from './credential.ts';
import { startOidcSource } from './oidc-source.ts';

export interface CredentialEvents {
  /** A usable credential: at start, on a change, or the same one re-reported on SIGHUP. */
  onCredential(credential: Credential): void;
  /** The source turned unusable; the last good credential stays in use. */
  onProblem(problem: CredentialError): void;
}

/**
 * Where the credential comes from. The only writer of `token_file_reloads_total` and of the reload log lines, and
 * the only holder of the secret the drop-in endpoints compare with.
 */
export interface CredentialSource {
  /** Re-read at once (SIGHUP): re-reports the credential even if unchanged, so an authentication failure is retried. */
  reread(): Promise<void>;
  /** Constant-time: is `presented` the API token this sidecar exchanges? Always false with workload identity. */
  isApiToken(presented: string): boolean;
  /** Constant-time: is `token` the pod's current projected token, and `workspace` ours? Always false with an API token. */
  isProjectedToken(token: string, workspace: string): boolean;
  /** Start following the file, when started with `follow: false` (run does so once its first JWT is in). */
  follow(): Promise<void>;
  close(): Promise<void>;
}

export interface CredentialSourceDeps {
  readonly config: Pick<Config, 'auth' | 'tokenFile' | 'apiTokenFromEnv' | 'oidcTokenFile' | 'workspace'>;
  readonly events: CredentialEvents;
  readonly metrics: Pick<Metrics, 'tokenFileReloads'>;
  readonly log: Logger;
  /** false: read the credential now, follow its file only when follow() is called. Default true. */
  readonly follow?: boolean;
}

export function startCredentialSource(deps: CredentialSourceDeps): Promise<CredentialSource> {
  return deps.config.auth === 'oidc' ? startOidcSource(deps) : startApiTokenSource(deps);
}
