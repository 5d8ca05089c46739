import type { Config } from '../config/config.ts';
import { writeFileAtomically } from './atomic-write.ts';
import { readJwtFile } from './jwt-file.ts';
import { renderJwt } from './jwt-format.ts';
import { merge } from '../refresh/rate-limit.ts';
import type { JwtStore } from '../refresh/refresher.ts';
import { readState, statePathFor, writeState, type SidecarState } from './state-file.ts';
import type { HeldJwt } from '../refresh/served-jwt.ts';

/** The production JwtStore: the JWT file in the configured format and mode, and the state file beside it. */
export function createFileStore(config: Pick<Config, 'jwtFile' | 'jwtFileMode' | 'jwtFormat'>): JwtStore {
  const statePath = statePathFor(config.jwtFile);
  return {
    async writeJwt(held, nowMs) {
      await writeFileAtomically(config.jwtFile, renderJwt(held, config.jwtFormat, nowMs), config.jwtFileMode);
    },
    async writeState(state) {
      // Another process on the same volume (an init container's `once`, a restarted copy) may have spent budget
      // too: keep its exchange records as well as ours.
      const onDisk = await readState(statePath);
      await writeState(statePath, { ...state, exchanges: merge(state.exchanges, onDisk.state.exchanges) });
    },
  };
}

/** What a start finds on disk: the state (for the budget) and the JWT it describes, if it is still there. */
export async function loadFromDisk(jwtFile: string): Promise<{ state: SidecarState; jwt: HeldJwt | undefined; problems: string[] }> {
  const { state, problem } = await readState(statePathFor(jwtFile));
  const problems = problem === undefined ? [] : [problem];
  if (state.tokenFingerprint === undefined) return { state, jwt: undefined, problems };
  try {
    const stored = await readJwtFile(jwtFile);
    const expiresAtMs = Math.min(stored.expiresAtMs ?? Infinity, state.expiresAtMs ?? Infinity);
    if (!Number.isFinite(expiresAtMs)) return { state, jwt: undefined, problems };
    return { state, jwt: { jwt: stored.jwt, tokenType: stored.tokenType, expiresAtMs }, problems };
  } catch {
    return { state, jwt: undefined, problems };
  }
}
