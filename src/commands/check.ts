import type { Config } from '../config/config.ts';
import { DiskError } from '../core/errors.ts';
import { diskFiles } from '../disk/file-access.ts';
import { readJwtFile, type StoredJwt } from '../disk/jwt-file.ts';
import { MAX_STATE_BYTES, parseState, statePathFor, type JwtEntry } from '../disk/state-file.ts';
import { judgeJwtOnDisk } from '../refresh/reuse.ts';

export interface CheckOutput {
  readonly code: 0 | 1;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `ek-sidecar check`: read the JWT file (either format) and say when it expires; exit 0 when it is valid for more
 * than --min-ttl, by the same rule as restart reuse and /readyz (refresh/reuse.ts). It runs beside the app, without
 * the credential, so it cannot verify the state entry; the entry only lends its expiry to a raw JWT whose `exp` does
 * not decode, when its fingerprint names this very JWT. Never prints any part of the token.
 */
export async function checkJwtFile(config: Pick<Config, 'jwtFile' | 'minTtlMs'>, nowMs: number): Promise<CheckOutput> {
  let stored: StoredJwt;
  try {
    stored = await readJwtFile(config.jwtFile);
  } catch (error) {
    const message = error instanceof DiskError ? error.message : `${config.jwtFile}: unreadable`;
    return { code: 1, stdout: '', stderr: `ek-sidecar check: ${message}\n` };
  }
  const verdict = judgeJwtOnDisk({ stored, entry: await readEntry(config.jwtFile) }, undefined, config.minTtlMs, nowMs);
  if (verdict.expiresAtMs === undefined) return { code: 1, stdout: '', stderr: `ek-sidecar check: ${config.jwtFile}: ${verdict.usable ? 'the JWT\'s expiry is unknown' : verdict.reason}\n` };
  const secondsLeft = Math.floor((verdict.expiresAtMs - nowMs) / 1000);
  const stdout = `expiresAt=${new Date(verdict.expiresAtMs).toISOString().replace(/\.\d{3}Z$/, 'Z')} secondsLeft=${String(secondsLeft)}\n`;
  if (verdict.usable) return { code: 0, stdout, stderr: '' };
  return { code: 1, stdout, stderr: `ek-sidecar check: ${config.jwtFile}: ${verdict.reason}\n` };
}

async function readEntry(jwtFile: string): Promise<JwtEntry | undefined> {
  const text = await diskFiles.read(statePathFor(jwtFile), MAX_STATE_BYTES).catch(() => undefined);
  return text === undefined ? undefined : parseState(text)?.jwt;
}
