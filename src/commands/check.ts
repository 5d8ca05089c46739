import type { Config } from '../config/config.ts';
import { DiskError } from '../core/errors.ts';
import { readJwtFile } from '../disk/jwt-file.ts';
import { fingerprint } from '../upstream/jwt-claims.ts';
import { readState, statePathFor } from '../disk/state-file.ts';

export interface CheckOutput {
  readonly code: 0 | 1;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `ek-sidecar check`: read the JWT file (either format) and say when it expires. Exit 0 when it is valid for at
 * least --min-ttl. Never prints any part of the token. A raw JWT whose `exp` does not decode takes its expiry
 * from the state file, when that describes this very JWT.
 */
export async function checkJwtFile(config: Pick<Config, 'jwtFile' | 'minTtlMs'>, nowMs: number): Promise<CheckOutput> {
  let expiresAtMs: number | undefined;
  try {
    const stored = await readJwtFile(config.jwtFile);
    expiresAtMs = stored.expiresAtMs;
    const { state } = await readState(statePathFor(config.jwtFile));
    if (state.jwtFingerprint === fingerprint(stored.jwt) && state.expiresAtMs !== undefined) {
      expiresAtMs = Math.min(expiresAtMs ?? Infinity, state.expiresAtMs);
    }
  } catch (error) {
    const message = error instanceof DiskError ? error.message : `${config.jwtFile}: unreadable`;
    return { code: 1, stdout: '', stderr: `ek-sidecar check: ${message}\n` };
  }
  if (expiresAtMs === undefined) return { code: 1, stdout: '', stderr: `ek-sidecar check: ${config.jwtFile}: the JWT's expiry is unknown\n` };
  const secondsLeft = Math.floor((expiresAtMs - nowMs) / 1000);
  const stdout = `expiresAt=${new Date(expiresAtMs).toISOString().replace(/\.\d{3}Z$/, 'Z')} secondsLeft=${secondsLeft}\n`;
  if (expiresAtMs - nowMs >= config.minTtlMs) return { code: 0, stdout, stderr: '' };
  const why = secondsLeft <= 0 ? 'the JWT has expired' : `the JWT has less than --min-ttl (${Math.round(config.minTtlMs / 1000)} s) left`;
  return { code: 1, stdout, stderr: `ek-sidecar check: ${config.jwtFile}: ${why}\n` };
}
